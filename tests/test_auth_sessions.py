"""Issue 10 item 6: server-side sessions end on logout, password change, disabling,
"sign out everywhere"; the CSRF token is renewed at login.

Issue 11: on PostgreSQL too, where a session ended on one node is ended on all."""

import pytest
import sqlalchemy as sa

from kb import accounts as accounts_mod
from kb.accounts import Accounts
from kb.store import Store
from storage import Database, schema

from .conftest import PASSWORD, ROLE_USERS, csrf_token, login, run_cli, signed_in

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

SEARCH = "/api/v1/search?q=发票"


def session_rows(kb) -> list[tuple]:
    t = schema.sessions
    with kb.database.read() as conn:
        return [tuple(r) for r in conn.execute(sa.select(t.c.sid_hash, t.c.user_id))]


def elsewhere(kb, *cli_args: str) -> str:
    """Change an account with the real CLI, in a process of its own; returns its output.
    On PostgreSQL it is another node: its own instance folder, the shared database."""
    if kb.database_url is None:
        return run_cli(*cli_args, instance=kb.root, check=True).stdout
    node = kb.root.parent / "cli-node"
    return run_cli("--database-url", kb.database_url, *cli_args, instance=node, check=True).stdout


def copy_of(app, client):
    """A second client holding a copy of `client`'s session cookie (a stolen cookie)."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def test_the_cookie_carries_only_a_session_id_stored_hashed(app, kb, users):
    c = signed_in(app, users["agent"])
    rows = session_rows(kb)
    assert len(rows) == 1
    cookie = c.get_cookie("session").value
    assert rows[0][0] not in cookie  # the hash is not what the browser holds
    from flask.sessions import SecureCookieSessionInterface

    data = SecureCookieSessionInterface().get_signing_serializer(app).loads(cookie)
    assert set(data) <= {"_user_id", "_fresh", "_id", "csrf_token"}
    assert not data["_user_id"].isdigit()  # not the user's id: a random session id


def test_copied_cookie_refused_after_logout(app, users):
    c = signed_in(app, users["agent"])
    stolen = copy_of(app, c)
    assert stolen.get(SEARCH).status_code == 200
    assert c.post("/logout").status_code == 302
    assert stolen.get(SEARCH).status_code == 401
    assert c.get(SEARCH).status_code == 401


def test_copied_cookie_refused_after_cli_passwd(app, kb, users):
    c = signed_in(app, users["agent"])
    stolen = copy_of(app, c)
    elsewhere(kb, "user", "passwd", users["agent"], "--password", "new-password-42")
    assert stolen.get(SEARCH).status_code == 401
    assert c.get(SEARCH).status_code == 401


def test_copied_cookie_refused_after_disable_and_enable(app, kb, users):
    c = signed_in(app, users["trainer"])
    stolen = copy_of(app, c)
    elsewhere(kb, "user", "disable", users["trainer"])
    elsewhere(kb, "user", "disable", users["trainer"], "--enable")
    assert stolen.get(SEARCH).status_code == 401
    # the user can log in again afresh
    assert signed_in(app, users["trainer"]).get(SEARCH).status_code == 200


def test_cli_logout_all_ends_every_session_of_one_user_only(app, kb, users):
    a1 = signed_in(app, users["agent"])
    a2 = signed_in(app, users["agent"])
    other = signed_in(app, users["admin"])
    out = elsewhere(kb, "user", "logout-all", users["agent"])
    assert "2" in out
    assert a1.get(SEARCH).status_code == 401
    assert a2.get(SEARCH).status_code == 401
    assert other.get(SEARCH).status_code == 200
    actions = [e["action"] for e in Accounts(kb.store).audit_entries()]
    assert "user.logout_all" in actions


def test_web_sign_out_everywhere(app, users):
    a1 = signed_in(app, users["agent"])
    a2 = signed_in(app, users["agent"])
    assert a2.post("/logout/all").status_code == 302
    assert a1.get(SEARCH).status_code == 401
    assert a2.get(SEARCH).status_code == 401


def test_expired_session_is_refused(app, kb, users):
    c = signed_in(app, users["agent"])
    with kb.database.begin() as conn:
        conn.execute(sa.update(schema.sessions).values(expires_at=0))
    assert c.get(SEARCH).status_code == 401


def test_pre_login_csrf_token_refused_after_login(app, users):
    c = app.test_client()
    before = csrf_token(c)
    assert login(c, users["agent"]).status_code == 302
    # the token an attacker might have planted or read before login no longer works
    resp = c.post("/logout", data={"csrf_token": before})
    assert resp.status_code == 400
    assert c.get(SEARCH).status_code == 200  # still logged in
    after = csrf_token(c, "/")
    assert after != before
    assert c.post("/logout", data={"csrf_token": after}).status_code == 302


def test_csrf_token_renewed_at_logout(app, users):
    c = signed_in(app, users["agent"])
    old = c.environ_base.pop("HTTP_X_CSRFTOKEN")
    assert c.post("/logout", data={"csrf_token": old}).status_code == 302
    resp = c.post("/login", data={"username": users["agent"], "password": PASSWORD,
                                  "csrf_token": old})  # fmt: skip
    assert resp.status_code == 400


def test_bearer_tokens_unaffected(app, kb, users):
    tok = Accounts(kb.store).create_token(users["agent"])
    c = app.test_client()
    auth = {"Authorization": f"Bearer {tok}"}
    assert c.get(SEARCH, headers=auth).status_code == 200
    Accounts(kb.store).end_all_sessions(users["agent"])
    assert c.get(SEARCH, headers=auth).status_code == 200
    assert session_rows(kb) == []


def test_a_session_holds_on_every_node_and_ends_on_every_node(app, kb, users, tmp_path):
    """Two nodes (apps with their own instance folder on PostgreSQL, sharing the database,
    which holds the cookie key too): the session lives in the database, not in either
    process."""
    other = create_node(app, kb, tmp_path)
    c = signed_in(app, users["agent"])
    on_other = other.test_client()
    on_other.set_cookie("session", c.get_cookie("session").value)
    assert on_other.get(SEARCH).status_code == 200
    on_other.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(on_other, "/")
    assert on_other.post("/logout").status_code == 302  # ended on the other node ...
    assert c.get(SEARCH).status_code == 401  # ... so refused on this one


def create_node(app, kb, tmp_path):
    from web import create_app

    return create_app(
        {
            "INSTANCE": str(tmp_path / "node2") if kb.database_url else str(kb.root),
            "TESTING": True,
            "DATABASE_URL": kb.database_url or "",
        }
    )


# -- the library alone (no articles, no web app) -----------------------------------------


@pytest.fixture
def acc(instance, database_url):
    store = Store(Database.for_instance(instance, database_url))
    accounts = Accounts(store)
    for role, name in ROLE_USERS.items():
        accounts.add(name, PASSWORD, [role])
    yield accounts
    store.close()


def test_session_lifecycle(acc):
    agent = acc.by_name(ROLE_USERS["agent"])
    sid = acc.create_session(agent)
    assert acc.session_user(sid) == agent
    assert acc.session_user("") is None and acc.session_user("nope") is None
    (row,) = acc.sessions(agent.username)
    assert set(row) == {"id", "created_at", "last_seen", "expires_at"}
    # another process (a node of its own) sees it, and ends it
    other = Accounts(Store(Database.open(acc.store.database.url)))
    assert other.session_user(sid) == agent
    other.end_session(sid)
    assert acc.session_user(sid) is None
    assert acc.sessions(agent.username) == []


def test_expired_sessions_are_refused_and_pruned(acc):
    agent = acc.by_name(ROLE_USERS["agent"])
    old = acc.create_session(agent, lifetime_s=-1)
    assert acc.session_user(old) is None
    live = acc.create_session(agent)  # a new login deletes the expired ones
    assert len(acc.sessions(agent.username)) == 1
    assert acc.session_user(live) == agent


def test_last_seen_is_written_at_most_once_a_minute(acc, monkeypatch):
    agent = acc.by_name(ROLE_USERS["agent"])
    sid = acc.create_session(agent)
    (before,) = acc.sessions(agent.username)
    acc.session_user(sid)
    assert acc.sessions(agent.username) == [before]  # not written on every request
    later = before["last_seen"] + accounts_mod.SESSION_TOUCH_S + 1
    monkeypatch.setattr(accounts_mod, "_now", lambda: later)
    assert acc.session_user(sid) == agent
    (after,) = acc.sessions(agent.username)
    assert after["last_seen"] == later


def test_disable_password_and_logout_all_end_sessions(acc):
    names = ROLE_USERS
    for change in (
        lambda: acc.set_disabled(names["agent"], True),
        lambda: acc.set_password(names["agent"], "another-password-1"),
        lambda: acc.end_all_sessions(names["agent"]),
    ):
        acc.set_disabled(names["agent"], False)
        sids = [acc.create_session(acc.by_name(names["agent"])) for _ in range(2)]
        kept = acc.create_session(acc.by_name(names["admin"]))
        change()
        assert [acc.session_user(s) for s in sids] == [None, None]
        assert acc.session_user(kept).username == names["admin"]
    actions = [e["action"] for e in acc.audit_entries()]
    assert actions[:3] == ["user.logout_all", "user.enable", "user.passwd"]
    assert '"sessions": 2' in acc.audit_entries(1)[0]["detail"]
