"""Pinned answers: a trainer pins an article to a query and its variants."""

import threading
import time
from types import SimpleNamespace

import pytest

from kb import pins
from kb.accounts import Accounts
from kb.errors import NotFound, ValidationError
from kb.store import Store
from storage import Database
from storage import pins as repo
from storage.database import sqlite_url

from .conftest import csrf_token, login

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def pinned_kb(kb):
    pins.attach(kb)
    return kb


def ids(kb, q, **kw):
    return [(h.id, h.pinned) for h in kb.search(q, log=False, **kw).hits]


def refresh(kb):
    kb.engine.pins.invalidate()


@pytest.mark.parametrize(
    "variant", ["发票怎么开", "怎么开发票", "發票怎麼開", "发票 怎么开？", "怎么开 发票"]
)
def test_a_pin_matches_the_query_and_its_variants(pinned_kb, variant):
    pins.add_pin(pinned_kb.store, "发票怎么开", "product-refund", actor="trainer1")
    refresh(pinned_kb)
    assert ids(pinned_kb, variant)[0] == ("product-refund", True)


def test_pinned_first_then_the_ranked_hits_unmarked(pinned_kb):
    before = ids(pinned_kb, "发票怎么开")
    assert before[0] == ("product-invoice", False)
    pins.add_pin(pinned_kb.store, "发票怎么开", "product-refund", actor="trainer1")
    refresh(pinned_kb)
    result = pinned_kb.search("发票怎么开", log=False)
    assert [(h.id, h.pinned) for h in result.hits] == [
        ("product-refund", True),
        ("product-invoice", False),
    ]
    assert result.total == 2
    # An article both pinned and found appears once, first.
    pins.add_pin(pinned_kb.store, "发票怎么开", "product-invoice", actor="trainer1")
    refresh(pinned_kb)
    assert ids(pinned_kb, "发票怎么开") == [("product-refund", True), ("product-invoice", True)]
    assert ids(pinned_kb, "发票怎么开", limit=1) == [("product-refund", True)]


def test_other_queries_are_not_affected(pinned_kb):
    pins.add_pin(pinned_kb.store, "发票怎么开", "product-refund", actor="trainer1")
    refresh(pinned_kb)
    assert ids(pinned_kb, "发票") == [("product-invoice", False)]
    assert ids(pinned_kb, "发票怎么开具")[0] == ("product-invoice", False)


def test_filters_and_drafts_still_apply_to_pins(pinned_kb):
    from kb.errors import ValidationError

    with pytest.raises(ValidationError, match="尚未发布"):  # it could never show
        pins.add_pin(pinned_kb.store, "发票怎么开", "phrasing-draft", actor="trainer1")
    pins.add_pin(pinned_kb.store, "发票怎么开", "norm-greeting", actor="trainer1")
    refresh(pinned_kb)
    assert ids(pinned_kb, "发票怎么开")[0] == ("norm-greeting", True)
    assert ("phrasing-draft", True) not in ids(pinned_kb, "发票怎么开")
    assert ids(pinned_kb, "发票怎么开", category="product") == [("product-invoice", False)]


def test_pins_reach_other_processes_through_the_version_counter(pinned_kb, monkeypatch):
    assert ids(pinned_kb, "退钱")[0] == ("product-refund", False)
    pins.add_pin(pinned_kb.store, "退钱", "norm-greeting", actor="trainer1")  # no invalidate()
    deadline = time.monotonic() + 3
    while ids(pinned_kb, "退钱")[0][0] != "norm-greeting" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ids(pinned_kb, "退钱")[0] == ("norm-greeting", True)


def test_library_validation_and_audit(pinned_kb):
    store = pinned_kb.store
    with pytest.raises(NotFound):
        pins.add_pin(store, "发票怎么开", "no-such-article")
    with pytest.raises(ValidationError):
        pins.add_pin(store, "   ", "product-invoice")
    with pytest.raises(ValidationError):
        pins.add_pin(store, "的了吗？", "product-invoice")  # stop words only
    first = pins.add_pin(store, "发票怎么开", "product-invoice", actor="trainer1")
    again = pins.add_pin(store, "怎么开发票", "product-invoice", actor="trainer1")
    assert first["created"] and not again["created"] and again["id"] == first["id"]
    pins.remove_pin(store, first["id"], actor="trainer1")
    with pytest.raises(NotFound):
        pins.remove_pin(store, first["id"])
    actions = [(e["action"], e["actor"]) for e in Accounts(store).audit_entries()]
    assert actions[:2] == [("pin.remove", "trainer1"), ("pin.add", "trainer1")]


def trainer(app, users):
    c = app.test_client()
    assert login(c, users["trainer"]).status_code == 302
    return c, {"X-CSRFToken": csrf_token(c, "/")}


def test_pin_api_round_trip(app, users, client):
    c, headers = trainer(app, users)
    resp = c.post(
        "/api/v1/pins",
        json={"query": "发票怎么开", "article_id": "product-refund"},
        headers=headers,
    )
    assert resp.status_code == 201, resp.get_json()
    pin = resp.get_json()["pin"]
    assert pin["article_id"] == "product-refund" and pin["title"] == "退款多久到账"
    assert pin["created_by"] == users["trainer"]
    listed = c.get("/api/v1/pins").get_json()
    assert listed["ok"] and [p["id"] for p in listed["pins"]] == [pin["id"]]

    hits = client.get("/api/v1/search?q=怎么开发票").get_json()["hits"]  # the agent's search
    assert (hits[0]["id"], hits[0]["pinned"]) == ("product-refund", True)
    assert all(h["pinned"] is False for h in hits[1:])
    page = client.get("/?q=發票怎麼開").get_data(as_text=True)
    refund, badge = page.index('data-id="product-refund"'), page.index('class="badge pinned"')
    assert refund < badge < page.index('data-id="product-invoice"')

    again = c.post(
        "/api/v1/pins",
        json={"query": "发票 怎么开", "article_id": "product-refund"},
        headers=headers,
    )
    assert again.status_code == 200 and again.get_json()["pin"]["id"] == pin["id"]
    assert c.delete(f"/api/v1/pins/{pin['id']}", headers=headers).get_json()["ok"] is True
    assert c.delete(f"/api/v1/pins/{pin['id']}", headers=headers).status_code == 404
    hits = client.get("/api/v1/search?q=怎么开发票").get_json()["hits"]
    assert not any(h["pinned"] for h in hits)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"article_id": "product-refund"}, "query"),
        ({"query": "", "article_id": "product-refund"}, "query"),
        ({"query": 5, "article_id": "product-refund"}, "query"),
        ({"query": "发票怎么开"}, "article_id"),
        ({"query": "发票怎么开", "article_id": ["x"]}, "article_id"),
        ({"query": "发票怎么开", "article_id": "product-refund", "why": 1}, "why"),
    ],
)
def test_pin_api_names_the_bad_field(app, users, body, field):
    c, headers = trainer(app, users)
    resp = c.post("/api/v1/pins", json=body, headers=headers)
    assert resp.status_code == 400
    err = resp.get_json()
    assert err["ok"] is False and err["status"] == 400 and field in err["error"]


def test_pin_api_errors(app, users):
    c, headers = trainer(app, users)
    resp = c.post(
        "/api/v1/pins", json={"query": "发票怎么开", "article_id": "nope"}, headers=headers
    )
    assert resp.status_code == 404 and resp.get_json()["status"] == 404
    resp = c.post("/api/v1/pins", data="{", headers={**headers, "Content-Type": "application/json"})
    assert resp.status_code == 400
    # A cookie session without the CSRF header is refused.
    resp = c.post("/api/v1/pins", json={"query": "发票怎么开", "article_id": "product-refund"})
    assert resp.status_code == 400 and "CSRF" in resp.get_json()["error"]


def test_agents_may_not_pin(client):
    headers = {"X-CSRFToken": csrf_token(client, "/")}
    body = {"query": "发票怎么开", "article_id": "product-refund"}
    resp = client.post("/api/v1/pins", json=body, headers=headers)
    assert resp.status_code == 403
    assert client.get("/api/v1/pins").status_code == 403
    assert client.delete("/api/v1/pins/1", headers=headers).status_code == 403


# -- the repository alone (no articles needed) ------------------------------------------


@pytest.fixture
def database(tmp_path, database_url):
    db = Database(database_url or sqlite_url(tmp_path))
    yield db
    db.dispose()


def test_every_pin_change_moves_the_version_the_map_follows(database):
    pin_map = pins.PinMap(SimpleNamespace(store=Store(database)))
    assert repo.current_version(database) == "0" and pin_map.lookup("发票怎么开") == []
    key = pins.pin_key("发票怎么开")
    first, created = repo.add_pin(database, "发票怎么开", key, "a1", "t", "trainer1")
    assert created and repo.current_version(database) == "1"
    assert repo.add_pin(database, "怎么开发票", key, "a1", "t", "trainer1") == (first, False)
    assert repo.current_version(database) == "1"  # nothing changed
    second, _ = repo.add_pin(database, "发票怎么开", key, "a2", "t", "trainer1")
    pin_map.invalidate()
    assert pin_map.lookup("發票怎麼開") == ["a1", "a2"]
    assert repo.remove_pin(database, first) and not repo.remove_pin(database, first)
    assert repo.current_version(database) == "3"
    pin_map.invalidate()
    assert pin_map.lookup("发票怎么开") == ["a2"]
    listed = repo.list_pins(database)
    assert [(p["id"], p["title"]) for p in listed] == [(second, "")]  # no such article
    assert repo.list_pins(database, 1, 1) == [] and repo.pin_count(database) == 1


def test_concurrent_pin_changes_never_share_a_version(database):
    """Every writer raises the counter in its own transaction (on PostgreSQL the
    upsert waits for the row lock): N changes leave version N, and the same pin added
    by several writers at once is stored once."""
    errors: list[BaseException] = []
    results: list[tuple[int, bool]] = []

    def add(n: int) -> None:
        try:
            for i in range(5):
                results.append(repo.add_pin(database, "q", f"k{i}", "same", "t", f"w{n}"))
                repo.add_pin(database, "q", f"k{n}-{i}", f"a{n}", "t", f"w{n}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(created for _, created in results) == 5  # k0..k4 -> "same", once each
    assert repo.pin_count(database) == 5 + 4 * 5
    assert repo.current_version(database) == str(5 + 4 * 5)
