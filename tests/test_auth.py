"""Accounts and roles: every route × role, login throttling, CSRF, tokens, audit log."""

import pytest
import sqlalchemy as sa

from kb.accounts import Accounts
from storage import schema
from web.auth import PERMISSIONS, PUBLIC

from .conftest import PASSWORD, login

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

SAMPLE_ARGS = {
    "article_id": "product-invoice",
    "script_id": "greeting-standard-1",
    "filename": "app.css",
    "run_id": "1",
    "username": "agent1",
    "personal_id": "1",
    "pin_id": "1",
    "item_id": "1",
    "appeal_id": "1",
    "token_id": "1",
    "sample_id": "1",
    "seq": "1",
    "miss_id": "1",
}


def routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            url = rule.build({a: SAMPLE_ARGS.get(a, "x") for a in rule.arguments})[1]
            yield rule.endpoint, method, url, getattr(view, "permission", None)


def test_every_route_declares_a_permission(app):
    missing = [(e, m) for e, m, _, perm in routes(app) if perm is None]
    assert missing == []


@pytest.mark.parametrize("role", ["anonymous", "agent", "trainer", "supervisor", "admin"])
def test_route_role_matrix(app, users, role):
    client = app.test_client()
    if role != "anonymous":
        assert login(client, users[role]).status_code == 302
    token = None
    checked = 0
    for endpoint, method, url, perm in routes(app):
        if endpoint in ("auth.logout", "auth.logout_all", "auth.login"):
            continue  # public, and they change the session: covered by their own tests
        headers = {"Accept": "application/json"}
        if method != "GET":
            if token is None:
                from .conftest import csrf_token

                token = csrf_token(client, "/login")
            headers["X-CSRFToken"] = token
        resp = client.open(url, method=method, headers=headers, json={})
        allowed = perm == PUBLIC or (role != "anonymous" and role in PERMISSIONS[perm])
        where = f"{method} {url} as {role} ({perm})"
        if allowed:
            assert resp.status_code not in (401, 403), where
        elif role == "anonymous":
            assert resp.status_code == 401, where
            assert resp.get_json()["status"] == 401
        else:
            assert resp.status_code == 403, where
            assert resp.get_json() == {"ok": False, "error": "没有权限执行此操作", "status": 403}
        checked += 1
    assert checked >= 4


def test_pages_redirect_anonymous_users_to_login(anon):
    resp = anon.get("/?q=发票", headers={"Accept": "text/html"})
    assert resp.status_code == 302 and resp.location.startswith("/login?next=")


def test_login_sets_safe_cookie_and_refuses_open_redirect(app, users):
    c = app.test_client()
    from .conftest import csrf_token

    tok = csrf_token(c)
    resp = c.post(
        "/login",
        data={
            "username": users["agent"],
            "password": PASSWORD,
            "csrf_token": tok,
            "next": "https://evil.example/",
        },
    )
    assert resp.status_code == 302 and resp.location == "/"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_login_without_csrf_token_is_refused(app, users):
    c = app.test_client()
    resp = c.post("/login", data={"username": users["agent"], "password": PASSWORD})
    assert resp.status_code == 400
    assert "CSRF" in resp.get_data(as_text=True)


def test_repeated_failures_are_rate_limited(app, users):
    c = app.test_client()
    for _ in range(5):
        assert login(c, users["agent"], "wrong-password").status_code == 401
    assert login(c, users["agent"], PASSWORD).status_code == 429


def test_logout_needs_csrf_and_ends_the_session(client):
    assert client.post("/logout").status_code == 400
    from .conftest import csrf_token

    tok = csrf_token(client, "/")
    assert client.post("/logout", data={"csrf_token": tok}).status_code == 302
    assert client.get("/api/v1/search?q=发票").status_code == 401


def test_bearer_tokens_scoped_by_role_and_revocable(app, kb, users):
    acc = Accounts(kb.store)
    tok = acc.create_token(users["agent"], "chat console")
    c = app.test_client()
    auth = {"Authorization": f"Bearer {tok}"}
    assert c.get("/api/v1/search?q=发票", headers=auth).status_code == 200
    assert (
        c.get("/api/v1/search?q=发票", headers={"Authorization": "Bearer nope"}).status_code == 401
    )
    acc.revoke_token(tok)
    assert c.get("/api/v1/search?q=发票", headers=auth).status_code == 401
    tok2 = acc.create_token(users["agent"])
    acc.set_disabled(users["agent"], True)
    assert (
        c.get("/api/v1/search?q=发票", headers={"Authorization": f"Bearer {tok2}"}).status_code
        == 401
    )


def test_disabled_user_cannot_log_in(app, kb, users):
    Accounts(kb.store).set_disabled(users["trainer"], True)
    assert login(app.test_client(), users["trainer"]).status_code == 401


# -- the library alone (no articles, no web app) -----------------------------------------


@pytest.fixture
def acc(instance, database_url):
    from kb.store import Store
    from storage import Database

    store = Store(Database.for_instance(instance, database_url))
    yield Accounts(store)
    store.close()


def test_audit_log_is_append_only(acc):
    acc.add("bob", PASSWORD, ["agent"])
    acc.audit("bob", "article.edit", "product-invoice", {"版本": 2})
    assert acc.audit_count() == 2
    for stmt in (sa.delete(schema.audit_log), sa.update(schema.audit_log).values(actor="x")):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with acc.store.database.begin() as conn:
                conn.execute(stmt)
    assert acc.audit_count() == 2
    assert acc.audit_entries(1)[0]["detail"] == '{"版本": 2}'


def test_passwords_are_hashed_not_stored(acc):
    acc.add("bob", PASSWORD, ["agent"])
    with acc.store.database.read() as conn:
        stored = conn.execute(
            sa.select(schema.users.c.password_hash).where(schema.users.c.username == "bob")
        ).scalar_one()
    assert PASSWORD not in stored and stored.startswith(("scrypt:", "pbkdf2:"))
    assert acc.authenticate("bob", PASSWORD).username == "bob"


def test_users_roles_and_validation(acc):
    from kb.errors import NotFound, ValidationError

    assert acc.count() == 0 and acc.list() == []
    b = acc.add("bob", PASSWORD, ["agent", "agent"], actor="tester")
    a = acc.add("阿明", PASSWORD, ["trainer", "admin"])
    acc.add("Zed", PASSWORD, ["agent"])
    assert b.roles == ("agent",) and a.roles == ("trainer", "admin")
    assert [u.username for u in acc.list()] == ["Zed", "bob", "阿明"]  # the same on both
    assert acc.get(b.id) == b and acc.get(10**6) is None
    assert acc.by_name("bob") == b
    with pytest.raises(NotFound):
        acc.by_name("Bob")  # names are case-sensitive, on both backends
    with pytest.raises(ValidationError, match="已存在"):
        acc.add("bob", PASSWORD, ["agent"])
    with pytest.raises(ValidationError, match="角色无效"):
        acc.add("carol", PASSWORD, ["boss"])
    with pytest.raises(ValidationError, match="密码至少"):
        acc.add("carol", "short", ["agent"])
    acc.set_roles("bob", ["supervisor", "agent"])
    assert acc.by_name("bob").has("supervisor")
    acc.set_disabled("bob", True)
    assert acc.by_name("bob").disabled and acc.count() == 3
    entries = acc.audit_entries()
    assert [e["action"] for e in entries] == ["user.disable", "user.roles"] + ["user.add"] * 3
    assert entries[-1]["actor"] == "tester" and entries[-1]["target"] == "bob"
    assert set(entries[0]) == {"id", "at", "actor", "action", "target", "detail"}
    assert [e["action"] for e in acc.audit_entries(2, 1)] == ["user.roles", "user.add"]


def test_tokens_lookup_revoke_and_disable(acc):
    from kb.errors import NotFound, ValidationError

    acc.add("bob", PASSWORD, ["agent"])
    tok1 = acc.create_token("bob", "console")
    tok2 = acc.create_token("bob")
    assert acc.user_for_token(tok1).username == "bob"
    assert acc.user_for_token("kbc_nope") is None
    listed = acc.tokens("bob")
    assert [t["name"] for t in listed] == ["console", ""]
    assert set(listed[0]) == {"id", "name", "created_at", "revoked_at", "last_used_at"}
    acc.revoke_token(str(listed[0]["id"]))
    assert acc.user_for_token(tok1) is None and acc.user_for_token(tok2).username == "bob"
    for unknown in ("999999", "9" * 30):
        with pytest.raises(NotFound):
            acc.revoke_token(unknown)
    with pytest.raises(NotFound):
        acc.revoke_token("kbc_not-a-token")
    acc.set_disabled("bob", True)  # revokes every token
    assert all(t["revoked_at"] for t in acc.tokens("bob"))
    acc.set_disabled("bob", False)
    assert acc.user_for_token(tok2) is None
    with pytest.raises(ValidationError):
        acc.set_disabled("bob", True) or acc.create_token("bob")
    revoked = [e for e in acc.audit_entries() if e["action"] == "token.revoke"]
    assert [e["target"] for e in revoked] == [str(listed[0]["id"])]


def test_per_request_lookups_are_one_query_each(acc):
    """Accounts is made once per request without any query (no schema look-up); the
    session and bearer-token look-ups done on every request are one query each."""
    from kb.store import Store

    acc.add("bob", PASSWORD, ["agent"])
    user = acc.by_name("bob")
    sid, tok = acc.create_session(user), acc.create_token("bob")
    acc.user_for_token(tok)  # its first use writes last_used_at; then at most once a minute
    database = acc.store.database
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        if not statement.startswith("BEGIN"):  # SQLite's explicit BEGIN (storage/database.py)
            seen.append(statement)

    sa.event.listen(database.engine, "before_cursor_execute", record)
    try:
        fresh = Accounts(Store(database))
        assert seen == []
        assert fresh.session_user(sid) == user
        assert len(seen) == 1
        assert fresh.user_for_token(tok) == user
        assert len(seen) == 2
    finally:
        sa.event.remove(database.engine, "before_cursor_execute", record)
