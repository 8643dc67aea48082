"""SQLite store: WAL, every change kept as a revision, idempotent saves."""

import pytest

from kb.errors import NotFound
from kb.models import Article
from kb.store import Store


@pytest.fixture
def store(tmp_path):
    st = Store(tmp_path / "kb.db")
    yield st
    st.close()


def test_wal_mode(store):
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


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
    store.delete("a1", by="carol")
    with pytest.raises(NotFound):
        store.get("a1")
    assert store.revisions("a1")[0]["action"] == "delete"


def test_save_many_reports_each_outcome(store):
    arts = [Article(id=f"x{i}", title=f"标题{i}", category="product") for i in range(3)]
    assert store.save_many(arts) == ["added"] * 3
    arts[1].title = "新标题"
    assert store.save_many(arts) == ["unchanged", "changed", "unchanged"]
    assert store.count() == 3


def test_search_log_is_parameterised(store):
    hostile = "'); DROP TABLE articles; --"
    store.log_searches(
        [
            {
                "at": "t",
                "q": hostile,
                "category": "",
                "tag": "",
                "hits": 0,
                "took_ms": 1.0,
                "via": "test",
            }
        ]
    )
    assert store.top_queries()[0]["q"] == hostile
    assert "articles" in store.db.table_names()
