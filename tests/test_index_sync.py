"""Every committed change reaches the search index without a manual rebuild: the
change sequence (kb/store.py) is applied at start, on a timer and by the writer."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from kb.models import Article
from kb.service import KnowledgeBase

from .conftest import FIXTURES, KBCOACH, REPO, free_port, run_cli, wait_http

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
WRITERS = 4  # concurrent PUT loops, one article each: commits queue behind the index
KILL_AFTER = 40  # acknowledged saves before the SIGKILL
READY_BOUND = 2.0  # seconds from "restart ready" to every acknowledged save searchable


def word(article: int, n: int) -> str:
    """A distinct searchable token per save (fixed width: none is a prefix of another)."""
    return f"zq{article}x{n:05d}"


def start_server(inst: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [*KBCOACH, "--instance", str(inst), "serve", "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    return proc


def call(base: str, token: str, method: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body, ensure_ascii=False).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_saves_acknowledged_before_a_sigkill_are_searchable_after_restart(tmp_path):
    inst = tmp_path / "instance"
    run_cli("import", str(FIXTURES / "articles"), instance=inst, check=True)
    run_cli("user", "add", "trainer1", "--role", "trainer", "--password", "sync-pass-12",
            instance=inst, check=True)  # fmt: skip
    token = run_cli("token", "create", "trainer1", "--name", "sync", instance=inst, check=True)
    token = token.stdout.strip()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(inst, port)

    acked: dict[int, int] = {}  # article -> last acknowledged save number
    lock = threading.Lock()
    enough = threading.Event()

    def loop(article: int) -> None:
        for n in range(1, 100_000):
            body = {"title": f"同步测试文章 {article}", "category": "product",
                    "body": f"第 {n} 次保存 {word(article, n)}"}  # fmt: skip
            try:
                out = call(base, token, "PUT", f"/api/v1/articles/sync-{article}", body)
            except (OSError, urllib.error.HTTPError):
                return  # the server is gone
            assert out["ok"] and out["outcome"] in ("added", "changed")
            with lock:
                acked[article] = n
                if sum(acked.values()) >= KILL_AFTER:
                    enough.set()

    threads = [threading.Thread(target=loop, args=(a,)) for a in range(WRITERS)]
    for t in threads:
        t.start()
    try:
        assert enough.wait(120), "the saves did not get going"
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
    for t in threads:
        t.join(timeout=60)
    last_acked = dict(acked)
    assert len(last_acked) == WRITERS

    # what the database holds: the last acknowledged save, or one committed after it
    db = sqlite3.connect(inst / "kbcoach.db")
    held = {}
    for article in range(WRITERS):
        body = db.execute("SELECT body FROM articles WHERE id = ?", [f"sync-{article}"])
        n = int(body.fetchone()[0].split()[1])
        assert n >= last_acked[article]
        held[article] = n
    db.close()

    server = start_server(inst, port)
    ready = time.monotonic()
    try:
        missing = set(range(WRITERS))
        while missing and time.monotonic() - ready < READY_BOUND:
            for article in sorted(missing):
                q = urllib.parse.quote(word(article, held[article]))
                hits = call(base, token, "GET", f"/api/v1/search?q={q}")["hits"]
                if f"sync-{article}" in [h["id"] for h in hits]:
                    missing.discard(article)
            time.sleep(0.05)
        assert not missing, f"not searchable {READY_BOUND} s after the restart: {missing}"
    finally:
        server.terminate()
        server.wait(timeout=20)

    for article in range(WRITERS):
        out = run_cli("search", word(article, held[article]), "--json", instance=inst)
        assert f"sync-{article}" in [h["id"] for h in json.loads(out.stdout)["hits"]]


SAVE_THEN_DIE = """
import os, signal, sys
sys.path.insert(0, sys.argv[2])
from kb.models import Article
from kb.store import Store
from storage import Database
store = Store(Database.open(sys.argv[1]))
store.save(Article(id="product-late", title="断电前保存的退款说明", category="product"))
os.kill(os.getpid(), signal.SIGKILL)  # after the commit, before any index update
"""


def save_and_die(kb: KnowledgeBase) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SAVE_THEN_DIE, kb.database.url, str(REPO)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def hit_ids(kb: KnowledgeBase, q: str) -> list[str]:
    time.sleep(0.6)  # search views refresh at most every 0.5 s
    return [h.id for h in kb.search(q, log=False).hits]


@BOTH
def test_a_save_killed_before_its_index_update_is_applied_at_start(kb):
    save_and_die(kb)
    assert "product-late" not in hit_ids(kb, "断电前保存")
    seq = kb.store.last_change()
    assert kb.indexes.applied()["seq"] < seq
    assert kb.ensure_index() is None  # incremental: no rebuild for one change
    assert kb.indexes.applied()["seq"] == seq
    assert hit_ids(kb, "断电前保存") == ["product-late"]


@BOTH
def test_a_save_killed_before_its_index_update_is_applied_by_the_timer(kb):
    kb.start_sync(0.2)
    try:
        save_and_die(kb)
        seq = kb.store.last_change()
        deadline = time.monotonic() + 30
        while kb.indexes.applied()["seq"] != seq and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        kb.stop_sync()
    assert kb.indexes.applied()["seq"] == seq
    assert hit_ids(kb, "断电前保存") == ["product-late"]


def wait_applied(node: KnowledgeBase, seq: int) -> None:
    deadline = time.monotonic() + 30
    while (node.indexes.applied()["seq"] or 0) < seq and time.monotonic() < deadline:
        time.sleep(0.1)
    assert node.indexes.applied()["seq"] >= seq


@BOTH
def test_two_nodes_with_their_own_index_converge(kb, tmp_path):
    other = KnowledgeBase(
        kb.root, index_dir=tmp_path / "node-b-index", database_url=kb.database_url
    )
    assert other.ensure_index() is not None  # its first index: a rebuild
    other.start_sync(0.2)
    try:
        kb.save(Article(id="product-two", title="两台服务器共享的开票说明", category="product"))
        assert hit_ids(kb, "两台服务器") == ["product-two"]  # the writer at once
        wait_applied(other, kb.store.last_change())
        assert hit_ids(other, "两台服务器") == ["product-two"]  # the other after a tick

        kb.delete("product-two")
        wait_applied(other, kb.store.last_change())
        assert hit_ids(other, "两台服务器") == []
        assert hit_ids(kb, "两台服务器") == []
    finally:
        other.stop_sync()
        other.close()
    assert kb.indexes.root != other.indexes.root


@BOTH
def test_far_behind_rebuilds_into_a_fresh_generation(kb):
    """More changed articles than an update is worth: a new generation, the old one
    serving until the swap."""
    other = KnowledgeBase(kb.root, database_url=kb.database_url)  # never touches the index
    other.store.save_many(
        Article(id=f"bulk-{i}", title=f"批量导入 编号 bq{i:04d}", category="product")
        for i in range(600)
    )
    before = kb.indexes.current_name()
    stats = kb.ensure_index()
    assert stats is not None and stats["mode"] == "rebuild"
    assert kb.indexes.current_name() != before
    assert kb.indexes.applied()["seq"] == kb.store.last_change()
    assert hit_ids(kb, "bq0599") == ["bulk-599"]
    other.close()


@BOTH
def test_an_index_ahead_of_the_database_is_rebuilt(kb):
    """A database restored from an older backup: the index's position is past the
    newest change, so it is rebuilt from what the database now holds."""
    applied = kb.indexes.applied()
    kb.indexes.set_applied({**applied, "seq": applied["seq"] + 1000})
    stats = kb.ensure_index()
    assert stats is not None and stats["mode"] == "rebuild"
    assert kb.indexes.applied()["seq"] == kb.store.last_change()


@BOTH
def test_the_sync_thread_stops_cleanly(kb):
    sync = kb.start_sync(0.05)
    assert kb.start_sync(0.05) is sync  # one per knowledge base
    time.sleep(0.2)
    kb.stop_sync()
    assert not sync.is_alive()


def test_a_restored_database_makes_every_index_rebuild(kb, tmp_path):
    """A restore starts a new numbering (epoch): an index positioned in the old one
    cannot tell which of the restored database's changes it has, so it rebuilds."""
    from storage.backup import backup, restore

    saved = backup(kb.database, tmp_path / "before.db")
    kb.save(Article(id="product-after", title="备份之后新增的文章", category="product"))
    kb.close()
    restore(saved, kb.database)
    stats = kb.ensure_index()
    assert stats is not None and stats["mode"] == "rebuild"
    assert hit_ids(kb, "备份之后新增") == []
    assert kb.indexes.applied()["epoch"] == kb.store.change_epoch()


@BOTH
def test_a_generation_swapped_in_without_the_scripts_gets_them_back_on_a_tick(kb):
    from scripts_lib.usage import register_source

    register_source(kb)
    kb.sync_source("scripts")
    assert "script:hold-apology-1" in hit_ids(kb, "稍等")
    kb.poll_changes()
    other = KnowledgeBase(kb.root, database_url=kb.database_url)  # knows no scripts
    other.rebuild_index()
    other.close()
    assert "script:hold-apology-1" not in hit_ids(kb, "稍等")
    kb.poll_changes()  # what the sync thread does every second
    assert "script:hold-apology-1" in hit_ids(kb, "稍等")
