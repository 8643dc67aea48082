"""Issue 10 item 7: login throttling holds under concurrency; unknown and known
user names take the same path (one password-hash verification each)."""

import http.cookiejar
import re
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest

from kb import accounts as accounts_mod
from kb.accounts import LOGIN_MAX_FAILURES, Accounts, AuthError, Throttled

from .conftest import KBCOACH, PASSWORD, REPO, free_port, login, run_cli, wait_http


def test_unknown_and_known_names_each_cost_one_hash_verification(kb, users):
    acc = Accounts(kb.store)
    for name in (users["agent"], "nobody-here"):
        before = accounts_mod.hash_checks
        with pytest.raises(AuthError) as err:
            acc.authenticate(name, "wrong-password", "10.0.0.1")
        assert accounts_mod.hash_checks == before + 1, name
        assert str(err.value) == "用户名或密码错误，或账号已停用"
    # a disabled account is verified too, and answered the same way
    acc.set_disabled(users["trainer"], True)
    before = accounts_mod.hash_checks
    with pytest.raises(AuthError) as err:
        acc.authenticate(users["trainer"], PASSWORD, "10.0.0.1")
    assert accounts_mod.hash_checks == before + 1
    assert str(err.value) == "用户名或密码错误，或账号已停用"


def test_unknown_names_are_throttled_like_known_ones(kb, users):
    acc = Accounts(kb.store)
    for name in ("ghost", users["agent"]):
        for _ in range(LOGIN_MAX_FAILURES):
            with pytest.raises(AuthError) as err:
                acc.authenticate(name, "wrong-password", "10.0.0.2")
            assert not isinstance(err.value, Throttled)
        before = accounts_mod.hash_checks
        with pytest.raises(Throttled):
            acc.authenticate(name, "wrong-password", "10.0.0.2")
        assert accounts_mod.hash_checks == before  # refused without checking a password


def test_success_does_not_count_against_the_address(app, kb, users):
    acc = Accounts(kb.store)
    for _ in range(LOGIN_MAX_FAILURES * 4 + 2):
        acc.authenticate(users["agent"], PASSWORD, "10.0.0.3")
    assert not acc.throttled("someone", "10.0.0.3")


def test_new_password_unlocks_a_locked_name(app, kb, users):
    c = app.test_client()
    for _ in range(LOGIN_MAX_FAILURES):
        assert login(c, users["agent"], "wrong-password").status_code == 401
    assert login(c, users["agent"]).status_code == 429
    Accounts(kb.store).set_password(users["agent"], "new-password-42")
    assert login(c, users["agent"], "new-password-42").status_code == 302


def _attempt_opener(base: str):
    """An opener with its own cookie jar and the CSRF token of its login form."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with opener.open(base + "/login", timeout=30) as resp:
        token = re.search(r'name="csrf_token" value="([^"]+)"', resp.read().decode()).group(1)
    return opener, token


def _post_login(opener, token: str, base: str, username: str, password: str) -> int:
    data = urllib.parse.urlencode(
        {"username": username, "password": password, "csrf_token": token}
    ).encode()
    try:
        with opener.open(base + "/login", data=data, timeout=120) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _serve(inst, *extra: str):
    port = free_port()
    proc = subprocess.Popen(
        [*KBCOACH, "--instance", str(inst), "serve", "--port", str(port),
         "--articles", "/nonexistent", *extra],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/healthz", proc)
    return proc, base


@pytest.mark.parametrize(
    "serve_args",
    [(), ("--prod", "--workers", "2", "--threads", "4")],
    ids=["dev-server", "gunicorn-2-workers"],
)
def test_concurrent_wrong_passwords_against_a_real_server(tmp_path, serve_args):
    threads = 40 if not serve_args else 20
    inst = tmp_path / "instance"
    run_cli("user", "add", "victim", "--role", "agent", "--password", PASSWORD,
            instance=inst, check=True)  # fmt: skip
    proc, base = _serve(inst, *serve_args)
    try:
        attempts = [_attempt_opener(base) for _ in range(threads)]
        start = threading.Barrier(threads)
        codes: list[int] = []

        def guess(opener, token):
            start.wait()
            codes.append(_post_login(opener, token, base, "victim", "wrong-password"))

        workers = [threading.Thread(target=guess, args=a) for a in attempts]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        assert sorted(set(codes)) == [401, 429], codes
        assert codes.count(401) == LOGIN_MAX_FAILURES  # only these had their password checked
        assert codes.count(429) == threads - LOGIN_MAX_FAILURES
        # the right password is refused too while the name is locked
        assert _post_login(*_attempt_opener(base), base, "victim", PASSWORD) == 429
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_logout_holds_across_gunicorn_workers(tmp_path):
    """A copied cookie is refused by every worker once the session ended in one of them."""
    inst = tmp_path / "instance"
    run_cli("user", "add", "reader", "--role", "agent", "--password", PASSWORD,
            instance=inst, check=True)  # fmt: skip
    proc, base = _serve(inst, "--prod", "--workers", "2", "--threads", "2")
    try:
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        with opener.open(base + "/login", timeout=30) as resp:
            token = re.search(r'name="csrf_token" value="([^"]+)"', resp.read().decode()).group(1)
        assert _post_login(opener, token, base, "reader", PASSWORD) == 200  # after the redirect
        (cookie,) = [c for c in jar if c.name == "session"]
        stolen = {"Cookie": f"session={cookie.value}"}

        def status(headers) -> int:
            req = urllib.request.Request(base + "/api/v1/scripts", headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return resp.status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert {status(stolen) for _ in range(8)} == {200}
        with opener.open(base + "/", timeout=30) as resp:
            token = re.search(r'name="csrf-token" content="([^"]+)"', resp.read().decode()).group(1)
        opener.open(urllib.request.Request(
            base + "/logout", data=urllib.parse.urlencode({"csrf_token": token}).encode()
        ), timeout=30).close()  # fmt: skip
        assert {status(stolen) for _ in range(8)} == {401}  # 8 tries: likely both workers
    finally:
        proc.terminate()
        proc.wait(timeout=30)
