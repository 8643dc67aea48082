"""Two nodes, one PostgreSQL: two `kbcoach serve` processes with their own instance
folders (and so their own search indexes) on one shared database."""

from __future__ import annotations

import http.cookiejar
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from kb.accounts import LOGIN_MAX_FAILURES
from storage import Database, schema

from .chatgen import conversations, write_jsonl
from .conftest import FIXTURES, PASSWORD, Server, run_cli

pytestmark = pytest.mark.slow


class Browser:
    """A cookie jar and the CSRF token of the last form: what a browser keeps."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, url: str) -> tuple[int, str]:
        try:
            with self.opener.open(url, timeout=30) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def login(self, base: str, username: str, password: str) -> int:
        _, page = self.get(base + "/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        data = urllib.parse.urlencode(
            {"username": username, "password": password, "csrf_token": token}
        ).encode()
        try:
            with self.opener.open(base + "/login", data=data, timeout=60) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code


def api(base: str, token: str, method: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body, ensure_ascii=False).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


@pytest.fixture
def nodes(tmp_path, pg_url):
    """Node A (first start: imports the fixture articles) and node B, one database."""
    shared = ("--database-url", pg_url)
    a_dir, b_dir = tmp_path / "node-a", tmp_path / "node-b"
    for name, role in (("trainer1", "trainer"), ("agent1", "agent"), ("super1", "supervisor")):
        run_cli(*shared, "user", "add", name, "--role", role, "--password", PASSWORD,
                instance=a_dir, check=True)  # fmt: skip
    tokens = {
        name: run_cli(*shared, "token", "create", name, instance=a_dir, check=True)
        .stdout.strip()
        .splitlines()[-1]
        .strip()
        for name in ("trainer1", "super1")
    }
    # short leases, so a dead node's audit batches pass on within seconds
    env = {"KBCOACH_AUDIT_LEASE_SECONDS": "3", "KBCOACH_AUDIT_WORKER_SECONDS": "0.2"}
    a = Server(a_dir, *shared, "serve", "--articles", str(FIXTURES / "articles"), env=env)
    try:
        b = Server(b_dir, *shared, "serve", "--articles", "/nonexistent", env=env)
        try:
            yield Nodes(a, b, tokens["trainer1"], tokens["super1"], pg_url)
        finally:
            b.stop()
    finally:
        a.stop()


@dataclass
class Nodes:
    a: Server
    b: Server
    trainer: str  # API tokens
    supervisor: str
    url: str  # the shared database

    def __iter__(self):  # a, b, trainer token
        return iter((self.a, self.b, self.trainer))


def search_ids(base: str, token: str, q: str) -> list[str]:
    body = api(base, token, "GET", "/api/v1/search?q=" + urllib.parse.quote(q))
    return [h["id"] for h in body["hits"]]


def test_an_article_published_on_a_is_found_on_b(nodes):
    a, b, token = nodes
    assert "product-refund" in search_ids(b.url, token, "退款")  # B built its index from the db
    article = {
        "title": "跨节点测试文章",
        "category": "product",
        "body": "只在这篇文章里出现的词：琥珀蜂鸟套餐。",
        "status": "published",
    }
    api(a.url, token, "PUT", "/api/v1/articles/two-node-probe", article)
    start = time.monotonic()
    while "two-node-probe" not in search_ids(b.url, token, "琥珀蜂鸟"):
        assert time.monotonic() - start < 10, b.output()[-2000:]
        time.sleep(0.05)
    # and B's own index has it: B was never told, it followed the change sequence
    assert "two-node-probe" not in search_ids(b.url, token, "完全无关的词汇")


def test_a_login_on_a_is_valid_on_b_and_logout_ends_it_on_both(nodes):
    a, b, _ = nodes
    browser = Browser()
    assert browser.login(a.url, "agent1", PASSWORD) == 200  # followed the redirect
    status, page = browser.get(b.url + "/")
    assert status == 200 and "agent1" in page and "退出" in page
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    req = urllib.request.Request(
        b.url + "/logout", data=urllib.parse.urlencode({"csrf_token": token}).encode()
    )
    browser.opener.open(req, timeout=30).read()
    status, page = browser.get(a.url + "/")
    assert "登录" in page and "agent1" not in page


def test_failed_logins_count_across_both_nodes(nodes):
    a, b, _ = nodes
    codes = [
        Browser().login(node.url, "agent1", "wrong-password")
        for node in [a, b] * LOGIN_MAX_FAILURES
    ]
    assert codes[:LOGIN_MAX_FAILURES] == [401] * LOGIN_MAX_FAILURES
    assert set(codes[LOGIN_MAX_FAILURES:]) == {429}


def results(db: Database, run_id: int) -> dict[str, tuple]:
    """conv_id -> (status, score, findings) of a run, from the database."""
    items = schema.qa_items
    with db.read() as conn:
        rows = conn.execute(
            sa.select(items.c.conv_id, items.c.status, items.c.score, items.c.findings).where(
                items.c.run_id == run_id
            )
        ).all()
    # 知识库中可能有答案 links depend on each instance's articles (the nodes share the
    # fixtures', the single instance has the starter articles): scoring is compared
    out = {}
    for r in rows:
        findings = json.loads(r.findings or "[]")
        for f in findings:
            f.pop("kb_answer", None)
        out[r.conv_id] = (r.status, r.score, findings)
    return out


def test_an_audit_run_survives_the_death_of_the_node_it_was_uploaded_to(nodes, tmp_path):
    convs = conversations(800, seed=11)
    # the reference: the same conversations audited on one node, embedded SQLite
    single = tmp_path / "single"
    chats = write_jsonl(tmp_path / "chats.jsonl", 800, seed=11)
    run_cli("audit", "run", str(chats), instance=single, check=True)
    expected = results(Database(f"sqlite:///{single / 'kbcoach.db'}"), 1)
    assert len(expected) == 800

    body = api(nodes.a.url, nodes.supervisor, "POST", "/api/v1/audits",
               {"name": "两节点", "conversations": convs})  # fmt: skip
    run_id = body["run_id"]
    db = Database(nodes.url)
    run = schema.qa_runs
    deadline = time.monotonic() + 120
    while True:  # both nodes at work, then node A dies mid-run
        with db.read() as conn:
            claimers = set(
                conn.execute(
                    sa.select(schema.qa_items.c.claimed_by).where(
                        schema.qa_items.c.run_id == run_id,
                        schema.qa_items.c.claimed_by.is_not(None),
                    )
                ).scalars()
            )
            checked = conn.execute(sa.select(run.c.checked).where(run.c.id == run_id)).scalar()
        pids = {c.split(":")[1] for c in claimers}
        if {str(nodes.a.proc.pid), str(nodes.b.proc.pid)} <= pids and checked < 700:
            break
        assert checked < 800 and time.monotonic() < deadline, (checked, pids)
        time.sleep(0.02)
    nodes.a.kill()
    while True:
        status = api(nodes.b.url, nodes.supervisor, "GET", f"/api/v1/audits/{run_id}")["run"]
        if status["status"] != "running":
            break
        assert time.monotonic() < deadline, nodes.b.output()[-3000:]
        time.sleep(0.2)
    assert (status["status"], status["checked"]) == ("done", 800)
    got = results(db, run_id)
    assert got == expected  # every conversation once, as one node would have scored it
