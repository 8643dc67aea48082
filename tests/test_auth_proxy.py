"""Issue 10 item 9: trusted-proxy setting (ProxyFix), Secure cookies, security headers."""

import pytest
import sqlalchemy as sa

from kb.accounts import LOGIN_MAX_FAILURES_PER_ADDRESS
from storage import schema

from .conftest import PASSWORD, csrf_token


@pytest.fixture
def make_app(kb, users):
    from web import create_app

    def make(**config):
        return create_app({"INSTANCE": str(kb.root), "TESTING": True, **config})

    return make


def post_login(client, username, password, forwarded_for=None, proto=None):
    headers = {}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    if proto:
        headers["X-Forwarded-Proto"] = proto
    token = csrf_token(client)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        headers=headers,
    )


def failure_keys(kb):
    with kb.database.read() as conn:
        return set(conn.execute(sa.select(schema.login_failures.c.key)).scalars())


def test_without_trusted_proxies_forwarded_for_is_ignored(make_app, kb, users):
    c = make_app().test_client()
    assert post_login(c, "ghost", "wrong-password", forwarded_for="203.0.113.7").status_code == 401
    assert "ip:127.0.0.1" in failure_keys(kb)
    assert "ip:203.0.113.7" not in failure_keys(kb)


def test_with_a_trusted_proxy_each_client_is_throttled_on_its_own(make_app, kb, users):
    app = make_app(TRUSTED_PROXIES=1)
    c = app.test_client()
    # one client behind the proxy fails often enough to lock its own address ...
    for i in range(LOGIN_MAX_FAILURES_PER_ADDRESS):
        resp = post_login(c, f"ghost{i % 4}", "wrong-password", forwarded_for="203.0.113.1")
        assert resp.status_code == 401
    assert "ip:203.0.113.1" in failure_keys(kb)
    assert "ip:127.0.0.1" not in failure_keys(kb)  # not the proxy's address
    assert post_login(c, users["admin"], PASSWORD, forwarded_for="203.0.113.1").status_code == 429
    # ... and another client, through the same proxy, still logs in
    other = app.test_client()
    assert (
        post_login(other, users["admin"], PASSWORD, forwarded_for="203.0.113.2").status_code == 302
    )


def test_proxy_hops_take_the_right_address(make_app, kb, users):
    c = make_app(TRUSTED_PROXIES=1).test_client()
    # a client-supplied X-Forwarded-For value is prepended; the proxy appends the real one
    post_login(c, "ghost", "wrong-password", forwarded_for="6.6.6.6, 198.51.100.9")
    assert "ip:198.51.100.9" in failure_keys(kb)
    assert "ip:6.6.6.6" not in failure_keys(kb)


def test_secure_cookie_setting(make_app, users):
    c = make_app(SESSION_COOKIE_SECURE=True).test_client()
    resp = post_login(c, users["agent"], PASSWORD)
    assert resp.status_code == 302
    assert "Secure" in resp.headers["Set-Cookie"]


def test_secure_cookie_when_a_trusted_proxy_says_https(make_app, users):
    c = make_app(TRUSTED_PROXIES=1).test_client()
    resp = post_login(c, users["agent"], PASSWORD, proto="https")
    assert "Secure" in resp.headers["Set-Cookie"]
    untrusted = make_app().test_client()
    resp = post_login(untrusted, users["agent"], PASSWORD, proto="https")
    assert resp.status_code == 302 and "Secure" not in resp.headers["Set-Cookie"]


@pytest.mark.parametrize("path", ["/login", "/healthz", "/no-such-page", "/api/v1/search?q=x"])
def test_security_headers_on_every_response(app, path):
    resp = app.test_client().get(path, headers={"Accept": "text/html"})
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "same-origin"


def test_a_post_with_a_bad_token_or_no_login_is_401_not_a_csrf_error(app, users):
    """A walkthrough got 'CSRF 校验失败' for a POST with a wrong or revoked token."""
    anon = app.test_client()
    body = {"text": "好的"}
    resp = anon.post(
        "/api/v1/coach/check-reply", json=body, headers={"Authorization": "Bearer wrong"}
    )
    assert resp.status_code == 401 and "令牌" in resp.get_json()["error"]
    resp = anon.post("/api/v1/coach/check-reply", json=body)
    assert resp.status_code == 401 and resp.get_json()["error"] == "请先登录"
    # the login form itself still needs its token
    resp = anon.post("/login", data={"username": "agent1", "password": "x"})
    assert resp.status_code == 400
