"""Accounts and roles: every route × role, login throttling, CSRF, tokens, audit log."""

import sqlite3

import pytest

from kb.accounts import Accounts
from web.auth import PERMISSIONS, PUBLIC

from .conftest import PASSWORD, login

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


def test_audit_log_is_append_only(kb, users):
    acc = Accounts(kb.store)
    actions = [e["action"] for e in acc.audit_entries()]
    assert actions.count("user.add") == 4
    with pytest.raises(sqlite3.IntegrityError):
        kb.store.db.execute("DELETE FROM audit_log")
    with pytest.raises(sqlite3.IntegrityError):
        kb.store.db.execute("UPDATE audit_log SET actor = 'x'")


def test_passwords_are_hashed_not_stored(kb, users):
    row = kb.store.db.execute(
        "SELECT password_hash FROM users WHERE username = ?", [users["admin"]]
    ).fetchone()
    assert PASSWORD not in row[0] and row[0].startswith(("scrypt:", "pbkdf2:"))
