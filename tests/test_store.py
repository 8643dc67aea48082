"""The store: every change kept as a revision, idempotent saves, the change sequence every
node's index follows, on SQLite and PostgreSQL alike; backup and restore (SQLite)."""

import sqlite3
import threading
import time

import pytest

from kb.errors import NotFound
from kb.models import Article
from kb.store import EPOCH_KEY, Store
from storage import Database
from storage.articles import ID_CHUNK, PAGE
from storage.backup import BackupUnsupported, backup, restore

from .conftest import FIXTURES

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
LEGACY = FIXTURES / "legacy" / "release-0.1.sql"


@pytest.fixture
def store(tmp_path, database_url):
    st = Store(Database.open(database_url) if database_url else tmp_path / "kb.db")
    yield st
    st.close()


def test_wal_mode(store):
    with store.database.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


@BOTH
def test_save_keeps_every_revision_with_who_and_what(store):
    art = Article(id="a1", title="发票", category="product", body="v1")
    assert store.save(art, by="alice") == "added"
    assert store.save(art, by="alice") == "unchanged"
    art.body = "v2"
    art.tags = ["发票"]
    assert store.save(art, by="bob") == "changed"
    revs = store.revisions("a1")
    assert [(r["version"], r["by"], r["action"]) for r in revs] == [
        (2, "bob", "update"),
        (1, "alice", "create"),
    ]
    assert revs[0]["changed"] == "body,tags"
    assert store.get("a1").body == "v2"
    assert store.get("a1").tags == ["发票"]
    meta = store.get_meta_row("a1")
    assert (meta["version"], meta["updated_by"]) == (2, "bob")
    assert store.revision_count("a1") == 2
    assert [r["version"] for r in store.revisions("a1", 1, 1)] == [1]
    store.delete("a1", by="carol")
    with pytest.raises(NotFound):
        store.get("a1")
    with pytest.raises(NotFound):
        store.get_meta_row("a1")
    with pytest.raises(NotFound):
        store.delete("a1")
    assert store.revisions("a1")[0]["action"] == "delete"
    assert [r["version"] for r in store.revisions("a1")] == [3, 2, 1]


@BOTH
def test_save_many_reports_each_outcome(store):
    arts = [Article(id=f"x{i}", title=f"标题{i}", category="product") for i in range(3)]
    assert store.save_many(arts) == ["added"] * 3
    arts[1].title = "新标题"
    assert store.save_many(arts) == ["unchanged", "changed", "unchanged"]
    assert store.count() == 3
    assert store.save_many([]) == []


@BOTH
def test_an_id_twice_in_one_batch_keeps_the_last(store):
    first = Article(id="dup", title="第一版", category="product")
    second = Article(id="dup", title="第二版", category="product")
    assert store.save_many([first, second]) == ["added", "changed"]
    assert store.get("dup").title == "第二版"
    assert [r["version"] for r in store.revisions("dup")] == [2, 1]
    assert store.count() == 1


@BOTH
def test_large_batches_and_reads_span_chunks_and_pages(store):
    n = max(PAGE, ID_CHUNK) * 2 + 7
    arts = [Article(id=f"bulk-{i:05d}", title=f"批量 {i}", category="product") for i in range(n)]
    before = store.last_change()
    assert store.save_many(arts, by="import") == ["added"] * n
    assert store.count() == n
    assert store.last_change() - before == n  # one change per article, one transaction
    assert [a.id for a in store.iter_articles()] == [a.id for a in arts]
    wanted = [a.id for a in arts[::3]] + ["missing", arts[0].id]
    got = store.get_many(wanted)
    assert set(got) == {a.id for a in arts[::3]}
    assert got["bulk-00003"].title == "批量 3"
    assert store.save_many(arts) == ["unchanged"] * n
    assert store.last_change() - before == n


@BOTH
def test_iter_articles_since(store):
    store.save(Article(id="old", title="旧", category="product"))
    time.sleep(0.01)
    store.save(Article(id="new", title="新", category="product"))
    since = store.get_meta_row("new")["updated_at"]
    assert [a.id for a in store.iter_articles(since=since)] == ["new"]
    assert [a.id for a in store.iter_articles()] == ["new", "old"]


@BOTH
def test_id_taken_ignores_case_and_prefers_the_exact_id(store):
    assert store.id_taken("Product-X") is None
    store.save(Article(id="Product-X", title="一", category="product"))
    assert store.id_taken("product-x") == "Product-X"
    assert store.id_taken("PRODUCT-X") == "Product-X"
    store.save(Article(id="product-x", title="二", category="product"))
    assert store.id_taken("product-x") == "product-x"
    assert store.id_taken("Product-X") == "Product-X"
    assert store.id_taken("product-y") is None


@BOTH
def test_the_change_sequence(store):
    assert (store.last_change(), store.first_change()) == (0, 0)
    assert store.changes_after(0, 10) == []
    store.save_many([Article(id=f"c{i}", title=f"{i}", category="product") for i in range(3)])
    seq = store.record_change("source", "scripts", "sync")
    store.delete("c1")
    store.save(Article(id="c0", title="0", category="product"))  # unchanged: no change
    changes = store.changes_after(0, 100)
    assert [c[1:] for c in changes] == [
        ("article", "c0", "save"),
        ("article", "c1", "save"),
        ("article", "c2", "save"),
        ("source", "scripts", "sync"),
        ("article", "c1", "delete"),
    ]
    numbers = [c[0] for c in changes]
    assert numbers == sorted(numbers) and numbers[3] == seq
    assert store.first_change() == numbers[0] and store.last_change() == numbers[-1]
    assert store.changes_after(numbers[1], 2) == changes[2:4]


@BOTH
def test_the_change_epoch_is_made_once_and_kept(store):
    epoch = store.change_epoch()
    assert epoch and store.change_epoch() == epoch
    assert Store(store.database).change_epoch() == epoch
    assert store.get_setting(EPOCH_KEY) == epoch


@BOTH
def test_settings(store):
    assert store.get_setting("k") is None
    assert store.get_setting("k", "d") == "d"
    store.set_setting("k", "1")
    store.set_setting("k", "2")
    assert store.get_setting("k") == "2"


@BOTH
def test_search_log_is_parameterised(store):
    hostile = "'); DROP TABLE articles; --"
    entry = {"at": "t", "q": hostile, "category": "", "tag": "", "took_ms": 1.0, "via": "test"}
    store.log_searches([{**entry, "hits": 1}, {**entry, "hits": 2}])
    store.log_searches([{**entry, "q": "其他", "hits": 0}])
    store.log_searches([])
    top = store.top_queries()
    assert top[0] == {"q": hostile, "n": 2, "avg_hits": 1.5}
    assert top[1] == {"q": "其他", "n": 1, "avg_hits": 0.0}
    assert "articles" in store.database.table_names()


@BOTH
def test_concurrent_saves_of_one_article_never_share_a_version(store):
    """Read-diff-write runs under the write lock on both backends: eight writers, each
    saving its own body, leave versions 1..8 exactly once."""
    errors: list[BaseException] = []

    def save(n: int) -> None:
        try:
            Store(store.database).save(
                Article(id="hot", title="并发", category="product", body=f"v{n}"), by=f"w{n}"
            )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(r["version"] for r in store.revisions("hot")) == list(range(1, 9))
    assert store.get_meta_row("hot")["version"] == 8


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_poll_never_skips_a_change_committed_out_of_order(store):
    """PostgreSQL hands out sequence numbers at insert and shows them at commit.  Writer A
    inserts its change and keeps its transaction open; writer B saves meanwhile.  A
    reader polling after its position must never see B's number without A's (it would
    move past A's for good)."""
    base = Store(store.database)
    base.save(Article(id="seed", title="起点", category="product"))
    position = base.last_change()
    a_inserted, release_a = threading.Event(), threading.Event()
    b_done = threading.Event()
    errors: list[BaseException] = []

    def writer_a(title: str) -> None:
        try:
            st = Store(store.database)
            with st.database.begin():  # save() joins this transaction, held open below
                st.save(Article(id="a", title=title, category="product"))
                a_inserted.set()
                assert release_a.wait(30)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def writer_b() -> None:
        try:
            Store(store.database).save(Article(id="b", title="乙", category="product"))
            b_done.set()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    ta = threading.Thread(target=writer_a, args=("甲",))
    ta.start()
    assert a_inserted.wait(30)
    tb = threading.Thread(target=writer_b)
    tb.start()
    polls = []
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        polls.append(base.changes_after(position, 100))
        time.sleep(0.02)
    b_waited = not b_done.is_set()
    release_a.set()
    ta.join(30)
    tb.join(30)
    assert not errors, errors
    skipped = [p for p in polls if [c[2] for c in p] == ["b"]]
    assert not skipped, f"a poll saw B's change {skipped[0]} before A's"
    assert all(p == [] for p in polls), polls  # neither is visible before A commits
    assert b_waited, "B committed while A held its change uncommitted"
    final = base.changes_after(position, 100)
    assert [c[2] for c in final] == ["a", "b"]
    assert final[0][0] < final[1][0]

    # the same with a change recorded on its own (a source sync) as writer B
    position = base.last_change()
    a_inserted.clear()
    release_a.clear()
    seen: list[list] = []

    def writer_b2() -> None:
        Store(store.database).record_change("source", "scripts", "sync")

    ta = threading.Thread(target=writer_a, args=("甲二",))
    ta.start()
    assert a_inserted.wait(30)
    tb = threading.Thread(target=writer_b2)
    tb.start()
    for _ in range(20):
        seen.append(base.changes_after(position, 100))
        time.sleep(0.02)
    release_a.set()
    ta.join(30)
    tb.join(30)
    assert all(s == [] for s in seen), seen
    assert [c[2] for c in base.changes_after(position, 100)] == ["a", "scripts"]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_backup_and_restore_refuse_postgresql(store, tmp_path):
    with pytest.raises(BackupUnsupported, match="pg_dump"):
        backup(store.database, tmp_path)
    with pytest.raises(BackupUnsupported, match="pg_dump"):
        restore(tmp_path / "x.db", store.database)


def test_backup_then_restore_gives_a_new_epoch(store, tmp_path):
    store.save(Article(id="kept", title="备份前", category="product"))
    epoch = store.change_epoch()
    saved = backup(store.database, tmp_path)
    assert saved.parent == tmp_path and saved.suffix == ".db"
    store.save(Article(id="lost", title="备份后", category="product"))
    restore(saved, store.database)
    assert [a.id for a in store.iter_articles()] == ["kept"]
    assert store.change_epoch() != epoch


def test_restore_of_an_older_release_migrates_it(tmp_path):
    """A backup made by release 0.1 (no migration history) comes back at today's schema."""
    old = tmp_path / "release-0.1.db"
    conn = sqlite3.connect(old)
    conn.executescript(LEGACY.read_text(encoding="utf-8"))
    conn.close()
    st = Store(tmp_path / "instance.db")
    try:
        st.save(Article(id="newer", title="新库中的文章", category="product"))
        restore(old, st.database)
        assert st.database.current() == st.database.head()
        assert st.count() == 4 and st.id_taken("newer") is None
        assert st.change_epoch()
        st.save(Article(id="after", title="恢复后保存", category="product"))
        assert st.changes_after(st.last_change() - 1, 10)[0][2] == "after"
    finally:
        st.close()


def test_restore_rejects_what_is_not_a_backup(store, tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database" * 100)
    with pytest.raises(NotFound):
        restore(bad, store.database)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_the_backup_commands_point_a_postgresql_instance_to_pg_dump(tmp_path, database_url):
    from click.testing import CliRunner

    import cli

    ctx = cli.Context(str(tmp_path / "instance"), database_url)
    try:
        runner = CliRunner()
        out = runner.invoke(cli.backup, [str(tmp_path)], obj=ctx)
        assert out.exit_code == cli.EXIT_FINDINGS and "pg_dump" in out.output
        src = tmp_path / "x.db"
        src.write_bytes(b"")
        for args in ([str(src)], [str(src), "--yes"]):
            out = runner.invoke(cli.restore, args, obj=ctx)
            assert out.exit_code == cli.EXIT_FINDINGS and "pg_dump" in out.output
        assert list(tmp_path.glob("kbcoach-*.db")) == []
        assert not (tmp_path / "instance" / "kbcoach.db").exists()
    finally:
        ctx.services.close()
