"""Shared fixtures: real instance folders, a real HTTP server, a real browser."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
KBCOACH = [sys.executable, str(REPO / "cli.py")]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def pg_server():
    """One real PostgreSQL server (tests/pg.py) for the whole session, started on first use."""
    from .pg import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server) -> Iterator[str]:
    """The SQLAlchemy URL of a fresh, empty PostgreSQL database, dropped after the test."""
    name = pg_server.new_database()  # t_<counter>_<pid>
    url = pg_server.url(name)
    yield url
    from storage.database import close_all

    close_all(url)  # this process's pooled connections to it
    pg_server.drop_database(name)


@pytest.fixture
def backend(request) -> str:
    """The store backend: sqlite unless parametrised with parametrize(..., indirect=True)."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def database_url(request, backend) -> str | None:
    """None for sqlite (the instance's own file); a fresh PostgreSQL database's URL otherwise."""
    if backend == "sqlite":
        return None
    if backend == "postgresql":
        return request.getfixturevalue("pg_url")  # lazily: sqlite-only runs start no server
    raise ValueError(f"unknown backend {backend!r}")


@pytest.fixture(scope="session")
def chat_sample(tmp_path_factory) -> Path:
    """500 generated conversations as JSONL (tests/chatgen.py), written once per session."""
    from .chatgen import write_jsonl

    return write_jsonl(tmp_path_factory.mktemp("chats") / "sample.jsonl", 500)


def run_cli(
    *args: str, instance: Path | None = None, input: str | None = None, check: bool = False
) -> subprocess.CompletedProcess:
    """Run the real `kbcoach` entry point in a subprocess."""
    cmd = [*KBCOACH]
    if instance is not None:
        cmd += ["--instance", str(instance)]
    cmd += list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, input=input, cwd=REPO, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}: {proc.stderr}")
    return proc


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    return tmp_path / "instance"


@pytest.fixture
def kb(instance: Path, database_url):
    """A knowledge base with the small fixture articles imported and indexed."""
    from kb.service import KnowledgeBase

    base = KnowledgeBase(instance, database_url=database_url)
    report = base.import_dir(FIXTURES / "articles")
    assert report.failed == 0, report.errors
    yield base
    base.close()


PASSWORD = "correct-horse-42"
ROLE_USERS = {"agent": "agent1", "trainer": "trainer1", "supervisor": "super1", "admin": "admin1"}


@pytest.fixture
def users(kb):
    """One account per role, all with PASSWORD."""
    from kb.accounts import Accounts

    acc = Accounts(kb.store)
    for role, name in ROLE_USERS.items():
        acc.add(name, PASSWORD, [role])
    return ROLE_USERS


@pytest.fixture
def app(kb, users):
    from web import create_app

    app = create_app(
        {"INSTANCE": str(kb.root), "TESTING": True, "DATABASE_URL": kb.database_url or ""}
    )
    yield app
    for name in ("kb", "services"):  # background threads end before their database goes
        ext = app.extensions.get(name)
        for stop in ("stop_sync", "stop_worker"):
            if hasattr(ext, stop):
                getattr(ext, stop)()


def csrf_token(client, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page) or re.search(
        r'name="csrf-token" content="([^"]+)"', page
    )
    assert match, page[:500]
    return match.group(1)


def login(client, username: str, password: str = PASSWORD):
    token = csrf_token(client)
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )


def signed_in(app, username: str):
    """A test client logged in as `username` that sends its CSRF token on every request."""
    c = app.test_client()
    assert login(c, username).status_code == 302
    c.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(c, "/")
    return c


@pytest.fixture
def anon(app):
    return app.test_client()


@pytest.fixture
def client(app, users):
    """A test client logged in as an agent."""
    c = app.test_client()
    resp = login(c, users["agent"])
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(
    url: str, proc: subprocess.Popen, timeout: float = 60, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = log.read_text(errors="replace") if log else ""
            if proc.stdout:
                out += proc.stdout.read()
            raise RuntimeError(f"server exited: {out}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(url)


class Server:
    """A real `kbcoach serve` process; its output goes to a log file (a pipe nobody
    reads fills up at 64 KB and then blocks the server mid-request)."""

    def __init__(self, instance: Path, *args: str, port: int | None = None, env=None):
        self.instance = Path(instance)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.instance.parent / f"server-{self.instance.name}-{self.port}.log"
        self.instance.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [*KBCOACH, "--instance", str(self.instance), *args, "--port", str(self.port)],
            cwd=REPO,
            stdout=self.log.open("w"),  # noqa: SIM115 - closed with the process
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        try:
            wait_http(self.url + "/healthz", self.proc, log=self.log)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL, as a machine that dies."""
        self.proc.kill()
        self.proc.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class LiveServer:
    url: str
    instance: Path


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """`kbcoach serve` on a free loopback port, first start importing the fixture articles."""
    inst = tmp_path_factory.mktemp("live") / "instance"
    port = free_port()
    subprocess.run(
        [
            *KBCOACH,
            "--instance",
            str(inst),
            "user",
            "add",
            "agent1",
            "--role",
            "agent",
            "--password",
            PASSWORD,
        ],
        check=True,
        cwd=REPO,
        capture_output=True,
    )
    # the request log goes to a file: a pipe nobody reads fills up (64 KB) and then
    # blocks the server mid-request
    log = inst.parent / "server.log"
    proc = subprocess.Popen(
        [
            *KBCOACH,
            "--instance",
            str(inst),
            "serve",
            "--port",
            str(port),
            "--articles",
            str(FIXTURES / "articles"),
        ],
        cwd=REPO,
        stdout=log.open("w"),  # noqa: SIM115 - closed with the process
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz", proc, log=log)
        yield LiveServer(base, inst)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


def add_user(instance: Path, username: str, role: str) -> None:
    """Create an account with PASSWORD through the real CLI."""
    run_cli("user", "add", username, "--role", role, "--password", PASSWORD, instance=instance,
            check=True)  # fmt: skip


def open_logged_in(browser, base: str, username: str):
    """A new browser context and page, logged in through the real login form."""
    ctx = browser.new_context(locale="zh-CN")
    pg = ctx.new_page()
    pg.goto(base + "/login")
    pg.fill("input[name=username]", username)
    pg.fill("input[name=password]", PASSWORD)
    pg.click("button[type=submit]")
    pg.wait_for_url(base + "/")
    return ctx, pg


@pytest.fixture
def page(browser, live_server):
    """A browser page logged in as agent1 through the real login form."""
    ctx, pg = open_logged_in(browser, live_server.url, "agent1")
    yield pg
    ctx.close()


@pytest.fixture
def audits(tmp_path, database_url):
    """An AuditStore alone on the backend's database (no articles, no index)."""
    from coach.audits import AuditStore
    from kb.store import Store
    from storage import Database
    from storage.database import close_all, sqlite_url

    url = database_url or sqlite_url(tmp_path / "instance")
    store = AuditStore(Store(Database.open(url)))
    yield store
    store.store.close()
    close_all(url)
