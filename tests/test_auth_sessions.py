"""Issue 10 item 6: server-side sessions end on logout, password change, disabling,
"sign out everywhere"; the CSRF token is renewed at login."""

from kb.accounts import Accounts

from .conftest import PASSWORD, csrf_token, login, run_cli, signed_in

SEARCH = "/api/v1/search?q=发票"


def copy_of(app, client):
    """A second client holding a copy of `client`'s session cookie (a stolen cookie)."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def test_the_cookie_carries_only_a_session_id_stored_hashed(app, kb, users):
    c = signed_in(app, users["agent"])
    rows = kb.store.db.execute("SELECT sid_hash, user_id FROM sessions").fetchall()
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
    run_cli("user", "passwd", users["agent"], "--password", "new-password-42",
            instance=kb.root, check=True)  # fmt: skip
    assert stolen.get(SEARCH).status_code == 401
    assert c.get(SEARCH).status_code == 401


def test_copied_cookie_refused_after_disable_and_enable(app, kb, users):
    c = signed_in(app, users["trainer"])
    stolen = copy_of(app, c)
    run_cli("user", "disable", users["trainer"], instance=kb.root, check=True)
    run_cli("user", "disable", users["trainer"], "--enable", instance=kb.root, check=True)
    assert stolen.get(SEARCH).status_code == 401
    # the user can log in again afresh
    assert signed_in(app, users["trainer"]).get(SEARCH).status_code == 200


def test_cli_logout_all_ends_every_session_of_one_user_only(app, kb, users):
    a1 = signed_in(app, users["agent"])
    a2 = signed_in(app, users["agent"])
    other = signed_in(app, users["admin"])
    proc = run_cli("user", "logout-all", users["agent"], instance=kb.root, check=True)
    assert "2" in proc.stdout
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
    kb.store.db.execute("UPDATE sessions SET expires_at = 0")
    kb.store.db.conn.commit()
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
    assert kb.store.db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0
