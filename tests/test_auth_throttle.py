"""Issue 10 item 7: login throttling holds under concurrency; unknown and known
user names take the same path (one password-hash verification each).

Issue 11: on PostgreSQL too, and across processes and nodes sharing the database."""

import http.cookiejar
import multiprocessing
import os
import re
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest
import sqlalchemy as sa

from kb import accounts as accounts_mod
from kb.accounts import (
    LOGIN_MAX_FAILURES,
    LOGIN_MAX_FAILURES_PER_ADDRESS,
    LOGIN_MAX_FAILURES_PER_NAME,
    Accounts,
    AuthError,
    Throttled,
)
from kb.store import Store
from storage import Database, schema

from .conftest import KBCOACH, PASSWORD, REPO, ROLE_USERS, free_port, login, run_cli, wait_http

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


def _url(instance, database_url) -> str:
    return Database.for_instance(instance, database_url).url


@pytest.fixture
def acc(instance, database_url):
    """Accounts alone on the backend's database (no articles, no index), one user per role."""
    store = Store(Database.for_instance(instance, database_url))
    accounts = Accounts(store)
    for role, name in ROLE_USERS.items():
        accounts.add(name, PASSWORD, [role])
    yield accounts
    store.close()


def failures(database, key: str) -> int:
    t = schema.login_failures
    with database.read() as conn:
        return conn.execute(sa.select(sa.func.count()).where(t.c.key == key)).scalar_one()


@BOTH
def test_unknown_and_known_names_each_cost_one_hash_verification(acc):
    users = ROLE_USERS
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


@BOTH
def test_unknown_names_are_throttled_like_known_ones(acc):
    users = ROLE_USERS
    for name in ("ghost", users["agent"]):
        for _ in range(LOGIN_MAX_FAILURES):
            with pytest.raises(AuthError) as err:
                acc.authenticate(name, "wrong-password", "10.0.0.2")
            assert not isinstance(err.value, Throttled)
        before = accounts_mod.hash_checks
        with pytest.raises(Throttled):
            acc.authenticate(name, "wrong-password", "10.0.0.2")
        assert accounts_mod.hash_checks == before  # refused without checking a password


@BOTH
def test_success_does_not_count_against_the_address(acc):
    for _ in range(LOGIN_MAX_FAILURES * 4 + 2):
        acc.authenticate(ROLE_USERS["agent"], PASSWORD, "10.0.0.3")
    assert not acc.throttled("someone", "10.0.0.3")
    assert failures(acc.store.database, "ip:10.0.0.3") == 0


@BOTH
def test_success_clears_the_names_failures_but_not_the_addresss(acc):
    name = ROLE_USERS["agent"]
    for _ in range(LOGIN_MAX_FAILURES - 1):
        with pytest.raises(AuthError):
            acc.authenticate(name, "wrong-password", "10.0.0.4")
    assert acc.authenticate(name, PASSWORD, "10.0.0.4").username == name
    assert failures(acc.store.database, f"u:{name}") == 0
    assert failures(acc.store.database, "ip:10.0.0.4") == LOGIN_MAX_FAILURES - 1


@BOTH
def test_the_address_limit_holds_across_names(acc):
    for i in range(LOGIN_MAX_FAILURES_PER_ADDRESS):
        with pytest.raises(AuthError) as err:
            acc.authenticate(f"ghost{i}", "wrong-password", "10.0.0.5")
        assert not isinstance(err.value, Throttled)
    assert acc.throttled("anyone", "10.0.0.5")
    with pytest.raises(Throttled):
        acc.authenticate(ROLE_USERS["admin"], PASSWORD, "10.0.0.5")
    assert acc.authenticate(ROLE_USERS["admin"], PASSWORD, "10.0.0.6")  # another address


@BOTH
def test_guesses_from_one_address_do_not_lock_the_name_out_elsewhere(acc):
    """Knowing a user's name is not enough to lock them out: five wrong guesses lock
    that name from the guessing address only."""
    name = ROLE_USERS["agent"]
    for _ in range(LOGIN_MAX_FAILURES):
        with pytest.raises(AuthError):
            acc.authenticate(name, "wrong-password", "10.9.0.1")
    with pytest.raises(Throttled):
        acc.authenticate(name, PASSWORD, "10.9.0.1")
    assert acc.authenticate(name, PASSWORD, "10.9.0.2").username == name
    # the user's success does not unlock the guesser's address
    assert acc.throttled(name, "10.9.0.1")


@BOTH
def test_guesses_spread_over_addresses_meet_the_names_ceiling(acc):
    name = ROLE_USERS["trainer"]
    addresses = [f"10.8.{i}.1" for i in range(LOGIN_MAX_FAILURES_PER_NAME // LOGIN_MAX_FAILURES)]
    for remote in addresses:
        for _ in range(LOGIN_MAX_FAILURES):
            with pytest.raises(AuthError) as err:
                acc.authenticate(name, "wrong-password", remote)
            assert not isinstance(err.value, Throttled)
    assert failures(acc.store.database, f"u:{name}") == LOGIN_MAX_FAILURES_PER_NAME
    with pytest.raises(Throttled):  # a fresh address, the right password: still refused
        acc.authenticate(name, PASSWORD, "10.7.0.1")
    # a new password set by an admin unlocks the name everywhere
    acc.set_password(name, "another-password-9")
    assert acc.authenticate(name, "another-password-9", addresses[0]).username == name
    for remote in addresses:
        assert failures(acc.store.database, f"u:{name}@{remote}") == 0


def _outcome(acc: Accounts, name: str, remote: str) -> str:
    try:
        acc.authenticate(name, "wrong-password", remote)
    except Throttled:
        return "throttled"
    except AuthError:
        return "checked"  # got past the reservation: its password was verified
    return "ok"


@BOTH
def test_concurrent_wrong_passwords_in_threads(instance, database_url, acc):
    """Threads of one process, each with its own connection, guess at the same moment."""
    threads = 24
    database = acc.store.database
    start = threading.Barrier(threads)
    outcomes: list[str] = []

    def guess(i: int):
        mine = Accounts(Store(database))
        start.wait()
        outcomes.append(_outcome(mine, ROLE_USERS["agent"], f"10.1.0.{i % 2}"))

    workers = [threading.Thread(target=guess, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    # one name guessed from two addresses: five password checks from each
    assert outcomes.count("checked") == 2 * LOGIN_MAX_FAILURES, outcomes
    assert outcomes.count("throttled") == threads - 2 * LOGIN_MAX_FAILURES
    name = ROLE_USERS["agent"]
    assert failures(database, f"u:{name}") == 2 * LOGIN_MAX_FAILURES
    assert failures(database, f"u:{name}@10.1.0.0") == LOGIN_MAX_FAILURES


def _guess_in_process(url: str, who: int, start, out) -> None:
    """A process of its own (another node): its own engine and connections.  First one
    name from one address, then a new name each time from another address."""
    acc = Accounts(Store(Database.open(url)))
    start.wait()
    first = [_outcome(acc, ROLE_USERS["agent"], "10.2.0.1") for _ in range(ROUNDS)]
    start.wait()
    second = [_outcome(acc, f"ghost{who}-{i}", "10.2.0.2") for i in range(ROUNDS)]
    out.put((first, second))


PROCS, ROUNDS = 4, 6  # 24 guesses each time: more than either limit


@BOTH
def test_concurrent_wrong_passwords_across_processes(instance, database_url, acc):
    """Processes guessing at the same moment (on PostgreSQL, as several nodes would):
    the per-name and the per-address limits both hold."""
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing shared
    start, out = ctx.Barrier(PROCS), ctx.Queue()
    url = _url(instance, database_url)
    workers = [
        ctx.Process(target=_guess_in_process, args=(url, i, start, out)) for i in range(PROCS)
    ]
    for p in workers:
        p.start()
    results = [out.get(timeout=300) for _ in workers]
    for p in workers:
        p.join(timeout=60)
        assert p.exitcode == 0
    first = [o for r in results for o in r[0]]
    second = [o for r in results for o in r[1]]
    assert first.count("checked") == LOGIN_MAX_FAILURES, first
    assert first.count("throttled") == PROCS * ROUNDS - LOGIN_MAX_FAILURES
    assert second.count("checked") == LOGIN_MAX_FAILURES_PER_ADDRESS, second
    assert second.count("throttled") == PROCS * ROUNDS - LOGIN_MAX_FAILURES_PER_ADDRESS
    assert failures(acc.store.database, "ip:10.2.0.2") == LOGIN_MAX_FAILURES_PER_ADDRESS


@BOTH
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


def _serve(inst, *extra: str, env: dict | None = None):
    port = free_port()
    proc = subprocess.Popen(
        [*KBCOACH, "--instance", str(inst), "serve", "--port", str(port),
         "--articles", "/nonexistent", *extra],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/healthz", proc)
    return proc, base


@pytest.mark.parametrize(
    "serve_args",
    [(), ("--prod", "--workers", "2", "--threads", "4")],
    ids=["dev-server", "gunicorn-2-workers"],
)
def test_concurrent_wrong_passwords_against_a_real_server(tmp_path, serve_args):  # SQLite
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


def test_concurrent_wrong_passwords_against_two_nodes_on_postgresql(tmp_path, pg_url):
    """Two `kbcoach serve` nodes, each with its own instance folder, on one PostgreSQL
    database: guesses at the same moment, half to each node, are throttled as one."""
    threads = 20
    Accounts(Store(Database.open(pg_url))).add("victim", PASSWORD, ["agent"])
    env = {"KBCOACH_DATABASE_URL": pg_url}
    nodes = [_serve(tmp_path / f"node{i}", env=env) for i in range(2)]
    try:
        attempts = [(_attempt_opener(nodes[i % 2][1]), nodes[i % 2][1]) for i in range(threads)]
        start = threading.Barrier(threads)
        codes: list[int] = []

        def guess(opener_token, base):
            start.wait()
            codes.append(_post_login(*opener_token, base, "victim", "wrong-password"))

        workers = [threading.Thread(target=guess, args=a) for a in attempts]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        assert codes.count(401) == LOGIN_MAX_FAILURES, codes
        assert codes.count(429) == threads - LOGIN_MAX_FAILURES
        for _proc, base in nodes:  # locked on both nodes, even with the right password
            assert _post_login(*_attempt_opener(base), base, "victim", PASSWORD) == 429
    finally:
        for proc, _base in nodes:
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
