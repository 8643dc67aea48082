"""The storage layer: one schema and one migration history on SQLite and PostgreSQL,
and an instance made by release 0.1 upgraded in place without losing a row."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storage import Database, schema
from storage.database import sqlite_url

from .conftest import FIXTURES, run_cli

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
LEGACY = FIXTURES / "legacy" / "release-0.1.sql"
# rows per table in the release-0.1 fixture (tests/fixtures/legacy/README.md)
LEGACY_COUNTS = {
    "articles": 4,
    "revisions": 4,
    "search_log": 2,
    "meta": 2,
    "changes": 5,
    "runs": 2,
    "users": 4,
    "sessions": 3,
    "tokens": 1,
    "login_failures": 1,
    "audit_log": 9,
    "pins": 1,
    "script_usage": 1,
    "personal_scripts": 1,
    "qa_runs": 1,
    "qa_items": 2,
    "qa_errors": 1,
    "qa_appeals": 1,
    "qa_findings": 8,
    "rule_packs": 1,
}


@pytest.fixture
def database(tmp_path, database_url):
    db = Database(database_url or sqlite_url(tmp_path))
    yield db
    db.dispose()


def schema_diff(db: Database) -> list:
    with db.engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), schema.metadata)


@BOTH
def test_a_new_database_is_migrated_to_head_and_matches_the_schema(database):
    assert database.current() == database.head()
    assert set(schema.metadata.tables) <= set(database.table_names())
    assert schema_diff(database) == []
    assert database.migrate() == (database.head(), database.head())  # nothing to do twice


@BOTH
def test_the_audit_log_is_append_only(database):
    with database.begin() as conn:
        conn.execute(sa.insert(schema.audit_log).values(actor="a", action="x"))
    for stmt in (sa.update(schema.audit_log).values(actor="b"), sa.delete(schema.audit_log)):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with database.begin() as conn:
                conn.execute(stmt)
    assert database.counts()["audit_log"] == 1


@BOTH
def test_an_inner_transaction_joins_the_outer_one(database):
    with pytest.raises(RuntimeError):
        with database.begin() as outer:
            outer.execute(sa.insert(schema.meta).values(key="a", value="1"))
            with database.begin() as inner:
                assert inner is outer
                inner.execute(sa.insert(schema.meta).values(key="b", value="2"))
            raise RuntimeError("roll back both")
    assert database.counts()["meta"] == 0


def test_concurrent_starters_migrate_once(tmp_path):
    url = sqlite_url(tmp_path)
    errors: list[BaseException] = []

    def start():
        try:
            Database(url).dispose()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    db = Database(url)
    assert db.current() == db.head()


def legacy_instance(tmp_path):
    """An instance folder whose database was made by release 0.1's code."""
    root = tmp_path / "legacy"
    root.mkdir()
    conn = sqlite3.connect(root / "kbcoach.db")
    conn.executescript(LEGACY.read_text(encoding="utf-8"))
    conn.close()
    return root


def test_a_release_0_1_instance_upgrades_in_place(tmp_path):
    root = legacy_instance(tmp_path)
    db = Database(sqlite_url(root))
    assert db.current() == db.head()
    assert {k: v for k, v in db.counts().items() if k in LEGACY_COUNTS} == LEGACY_COUNTS
    # same tables, columns and indexes as a new database (SQLite reports its legacy
    # non-INTEGER primary keys as nullable and REAL for Float: nothing to migrate)
    for table in schema.metadata.sorted_tables:
        with db.engine.connect() as conn:
            inspector = sa.inspect(conn)
            assert [c["name"] for c in inspector.get_columns(table.name)] == [
                c.name for c in table.columns
            ]
            assert {ix["name"] for ix in inspector.get_indexes(table.name)} == {
                ix.name for ix in table.indexes
            }
    # new rows continue the old numbering, and changes never reuse a number
    with db.begin() as conn:
        seq = conn.execute(
            sa.insert(schema.changes)
            .values(kind="article", doc_id="x", op="save", at="2026-01-01")
            .returning(schema.changes.c.seq)
        ).scalar_one()
    assert seq == LEGACY_COUNTS["changes"] + 1


def test_kbcoach_migrate_upgrades_a_release_0_1_instance_once(tmp_path):
    root = legacy_instance(tmp_path)
    first = run_cli("migrate", instance=root, check=True).stdout
    head = Database(sqlite_url(root), migrate=False).head()  # the newest revision
    assert f"（无版本记录） 升级到 {head}" in first
    again = run_cli("migrate", instance=root, check=True).stdout
    assert "已是最新结构" in again


def test_copy_instance_to_postgresql_keeps_ids_and_is_safe_to_rerun(tmp_path, pg_url):
    root = legacy_instance(tmp_path)
    out = run_cli("copy-instance", "--to", pg_url, instance=root, check=True).stdout
    assert "各表与源一致" in out and "users\t源 4 行\t新增 4 行" in out
    again = run_cli("copy-instance", "--to", pg_url, instance=root, check=True).stdout
    assert "users\t源 4 行\t新增 0 行" in again
    target = Database(pg_url)
    copied = {k: v for k, v in target.counts().items() if k in LEGACY_COUNTS}
    assert copied == {**LEGACY_COUNTS, "meta": 3}  # + which instance it copies
    with target.read() as conn:
        names = conn.execute(sa.select(schema.users.c.id, schema.users.c.username)).all()
    with sqlite3.connect(root / "kbcoach.db") as src:
        assert sorted(names) == sorted(src.execute("SELECT id, username FROM users").fetchall())
    # an edit and a deletion made on the old node before the final copy reach the target
    with sqlite3.connect(root / "kbcoach.db") as src:
        src.execute("UPDATE articles SET title = '最后一刻的修改' WHERE id = 'product-refund'")
        src.execute("DELETE FROM pins")
    final = run_cli("copy-instance", "--to", pg_url, instance=root, check=True).stdout
    assert "pins\t源 0 行\t新增 0 行\t删除 1 行" in final
    with target.read() as conn:
        title = conn.execute(
            sa.select(schema.articles.c.title).where(schema.articles.c.id == "product-refund")
        ).scalar()
    assert title == "最后一刻的修改" and target.counts()["pins"] == 0
    with target.begin() as conn:  # the next id follows the copied ones
        new_id = conn.execute(
            sa.insert(schema.users).values(username="new").returning(schema.users.c.id)
        ).scalar_one()
    assert new_id == max(i for i, _ in names) + 1


def test_copy_instance_refuses_a_target_holding_another_instance(tmp_path, pg_url):
    other = tmp_path / "other"
    run_cli("--database-url", pg_url, "import", str(FIXTURES / "articles"), instance=other,
            check=True)  # fmt: skip
    root = legacy_instance(tmp_path)
    out = run_cli("copy-instance", "--to", pg_url, instance=root)
    assert out.returncode == 1 and "已有另一个实例的数据" in out.stderr
    assert Database(pg_url).counts()["users"] == 0  # nothing was copied


def test_copy_instance_refuses_a_bad_or_same_target(tmp_path):
    root = legacy_instance(tmp_path)
    bad = run_cli("copy-instance", "--to", "mysql://x@y/z", instance=root)
    assert bad.returncode == 2 and "不支持的数据库" in bad.stderr
    garbled = run_cli("copy-instance", "--to", "foo", instance=root)
    assert garbled.returncode == 2 and "无法识别的数据库地址" in garbled.stderr
    same = run_cli("copy-instance", "--to", sqlite_url(root), instance=root)
    assert same.returncode == 2 and "就是当前数据库" in same.stderr


@BOTH
def test_export_sqlite_writes_a_standalone_file_without_secrets(kb, users, tmp_path):
    import sqlite_utils

    from kb.accounts import Accounts

    Accounts(kb.store).create_token(users["agent"], "desk")
    kb.store.setting_once("web.secret_key", "ab" * 32)
    dest = tmp_path / "export.db"
    out = run_cli(*(["--database-url", kb.database_url] if kb.database_url else []),
                  "export-sqlite", str(dest), instance=kb.root, check=True)  # fmt: skip
    assert "已导出到" in out.stdout
    db = sqlite_utils.Database(dest)
    assert {"sessions", "tokens", "login_failures"}.isdisjoint(db.table_names())
    assert "password_hash" not in db["users"].columns_dict
    assert sorted(r["username"] for r in db["users"].rows) == sorted(users.values())
    assert db["articles"].count == kb.store.count()
    assert "web.secret_key" not in {r["key"] for r in db["meta"].rows}
    again = run_cli(*(["--database-url", kb.database_url] if kb.database_url else []),
                    "export-sqlite", str(dest), instance=kb.root)  # fmt: skip
    assert again.returncode == 2 and "--force" in again.stderr
    if not kb.database_url:
        live = run_cli("export-sqlite", str(kb.root / "kbcoach.db"), "--force", instance=kb.root)
        assert live.returncode == 2 and "正在使用的数据库" in live.stderr
    assert ("item_id", "qa_items") in {
        (fk.column, fk.other_table) for fk in db["qa_findings"].foreign_keys
    }


def test_a_node_whose_database_is_gone_answers_503_and_recovers(tmp_path, pg_server):
    """503 (so a proxy tries another node) with the one error shape, never a 500."""
    from web import create_app

    name = pg_server.new_database()
    url = pg_server.url(name)
    app = create_app(
        {"INSTANCE": str(tmp_path / "node"), "TESTING": True, "DATABASE_URL": url,
         "INDEX_SYNC_SECONDS": 0, "AUDIT_WORKER_SECONDS": 0}
    )  # fmt: skip
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    pg_server.drop_database(name)  # every connection of the node is cut
    down = client.get("/healthz")
    assert down.status_code == 503 and down.get_json()["ok"] is False
    api = client.get("/api/v1/search?q=x", headers={"Authorization": "Bearer kbc_x"})
    assert api.status_code == 503 and "数据库暂时无法连接" in api.get_json()["error"]
    pg_server.create_database(name)
    Database(url)  # migrated again, as a restored database would be
    assert client.get("/healthz").status_code == 200


def test_database_errors_are_chinese_and_name_the_problem(tmp_path, pg_server):
    root = tmp_path / "inst"
    cases = [
        ("foo", "无法识别的数据库地址"),
        ("mysql://a@b/c", "不支持的数据库"),
        (pg_server.url("no_such_db"), "无法连接数据库"),
        ("sqlite:////nonexistent-dir/sub/x.db", "数据库所在目录不存在"),
    ]
    for url, message in cases:
        out = run_cli("--database-url", url, "migrate", instance=root)
        assert out.returncode == 1 and message in out.stderr, (url, out.stderr)
        assert "Traceback" not in out.stderr and "内部错误" not in out.stderr
    assert not Path("/nonexistent-dir").exists()


def test_a_database_from_a_newer_release_is_refused_clearly(tmp_path):
    db = Database(sqlite_url(tmp_path))
    with db.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
    db.dispose()
    out = run_cli("migrate", instance=tmp_path)
    assert out.returncode == 1 and "0099 比本程序新" in out.stderr


def test_the_cli_uses_the_database_of_the_instance_config(tmp_path, pg_url):
    """DATABASE_URL in instance/config.py (read by the server) is the CLI's too."""
    root = tmp_path / "node"
    root.mkdir()
    (root / "config.py").write_text(f"DATABASE_URL = {pg_url!r}\n", encoding="utf-8")
    run_cli("user", "add", "agent9", "--role", "agent", "--password", "pw-123456789",
            instance=root, check=True)  # fmt: skip
    assert not (root / "kbcoach.db").exists()
    with Database(pg_url).read() as conn:
        assert conn.execute(sa.select(schema.users.c.username)).scalars().all() == ["agent9"]
