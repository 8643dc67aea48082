"""Audit runs across processes and nodes: batches of a run are claimed in the database
(PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: one writer at a time), a claim whose
worker is gone expires or is dropped, and whatever the workers, every conversation is
checked into exactly one result equal to a single worker's run."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from coach.audits import HOST, AuditStore, new_claimer
from coach.checker import Checker
from coach.transcripts import load_path
from kb.store import Store
from storage import Database, schema
from storage import audits as repo
from storage.database import close_all, sqlite_url

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
N = 240  # conversations of a run


@pytest.fixture(scope="module")
def checker():
    return Checker()


@pytest.fixture(scope="module")
def conversations(chat_sample):
    convs, errors = load_path(chat_sample)
    assert not errors
    return convs[:N]


@pytest.fixture
def url(tmp_path, database_url):
    url = database_url or sqlite_url(tmp_path / "instance")
    yield url
    close_all(url)


def audit_store(url) -> AuditStore:
    return AuditStore(Store(Database.open(url)))


class Counting:
    """A checker that counts how often each conversation is checked."""

    def __init__(self, checker, delay: float = 0.0):
        self.checker, self.delay = checker, delay
        self.pack = checker.pack
        self.seen: Counter = Counter()
        self._lock = threading.Lock()

    def check_conversation(self, conv):
        with self._lock:
            self.seen[conv.id] += 1
        if self.delay:
            time.sleep(self.delay)
        return self.checker.check_conversation(conv)


def results(audits: AuditStore, run_id: int) -> dict:
    """conv_id → (status, score, findings) of a run, and its findings-table rows."""
    items = schema.qa_items
    with audits.database.read() as conn:
        rows = conn.execute(
            sa.select(items.c.conv_id, items.c.status, items.c.score, items.c.findings).where(
                items.c.run_id == run_id
            )
        ).all()
        table = conn.execute(
            sa.select(schema.qa_findings.c.item_id, schema.qa_findings.c.idx).where(
                schema.qa_findings.c.run_id == run_id
            )
        ).all()
    assert len(table) == len(set(table))  # no finding written twice
    total = sum(len(json.loads(r.findings)) for r in rows)
    assert len(table) == total  # and none lost
    return {r.conv_id: (r.status, r.score, r.findings) for r in rows}


def claimers(audits: AuditStore, run_id: int) -> Counter:
    items = schema.qa_items
    with audits.database.read() as conn:
        return Counter(
            conn.execute(sa.select(items.c.claimed_by).where(items.c.run_id == run_id)).scalars()
        )


@BOTH
def test_two_workers_check_every_item_of_a_run_exactly_once(url, conversations, checker):
    audits = audit_store(url)
    alone = audits.create_run("one worker", conversations, [], by="t")
    assert audits.claim(alone)
    audits.check(alone, checker, batch=7)
    want = results(audits, alone)

    run_id = audits.create_run("two workers", conversations, [], by="t", reaudit=True)
    assert audits.claim(run_id)  # running: any worker may claim its batches
    counting = Counting(checker, delay=0.002)
    errors = []

    def worker() -> None:
        mine = audit_store(url)  # as another process would
        claimer = new_claimer()
        try:
            while mine.run(run_id)["status"] == "running":
                if not mine.work(lambda version: counting, claimer=claimer, batch=7):
                    time.sleep(0.01)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors
    run = audits.run(run_id)
    assert (run["status"], run["checked"], run["total"]) == ("done", N, N)
    assert run["finished_at"]
    assert sorted(counting.seen.values()) == [1] * N  # every conversation checked once
    got = results(audits, run_id)
    assert got == want  # equal to the single worker's run
    by_worker = claimers(audits, run_id)
    assert len(by_worker) == 2 and sum(by_worker.values()) == N  # both took batches


@BOTH
def test_a_claim_whose_lease_expired_is_taken_over(url, conversations, checker):
    audits = audit_store(url)
    run_id = audits.create_run("lease", conversations[:30], [], by="t")
    audits.claim(run_id)
    now = time.time()
    slow = repo.claim_batch(audits.database, "elsewhere:1:1", 10, 0.5, now=now)
    assert [r["run_id"] for r in slow] == [run_id] * 10
    other = repo.claim_batch(audits.database, "elsewhere:2:1", 10, 60, now=now)
    assert not {r["id"] for r in other} & {r["id"] for r in slow}  # held: passed over
    taken = repo.claim_batch(audits.database, "elsewhere:2:1", 10, 60, now=now + 1)
    assert {r["id"] for r in taken} == {r["id"] for r in slow}  # expired: taken over
    rest = repo.claim_batch(audits.database, "elsewhere:2:1", 10, 60, now=now + 1)
    assert len(rest) == 10 and not {r["id"] for r in rest} & {r["id"] for r in other + slow}
    # the slow worker comes back: what it checked is no longer its to save
    counting = Counting(checker)
    assert audits._check_batch(slow, counting, "elsewhere:1:1", 0.5) == 0
    assert audits.run(run_id)["checked"] == 0
    for batch in (other, taken, rest):
        assert audits._check_batch(batch, counting, "elsewhere:2:1", 60) == len(batch)
    run = audits.run(run_id)
    assert (run["status"], run["checked"]) == ("done", 30)
    assert all(status == "done" for status, _, _ in results(audits, run_id).values())


@BOTH
def test_a_run_whose_workers_are_gone_is_interrupted_and_resumed_at_once(
    url, conversations, checker
):
    audits = audit_store(url)
    run_id = audits.create_run("gone", conversations[:30], [], by="t")
    audits.claim(run_id)
    dead = f"{HOST}:999999999:1"  # a worker of this machine whose process is gone
    held = repo.claim_batch(audits.database, dead, 10, 60, now=time.time())
    assert len(held) == 10
    assert audits.mark_interrupted() == [run_id]
    assert audits.run(run_id)["status"] == "interrupted"
    assert audits.claim(run_id)  # resume: the dead worker's claims were dropped
    counting = Counting(checker)
    run = audits.check(run_id, counting, batch=10)
    assert (run["status"], run["checked"]) == ("done", 30)
    assert sorted(counting.seen.values()) == [1] * 30


@BOTH
def test_a_run_held_on_another_node_stays_running_until_its_lease_expires(url, conversations):
    audits = audit_store(url)
    run_id = audits.create_run("remote", conversations[:5], [], by="t")
    audits.claim(run_id)
    now = time.time()
    repo.claim_batch(audits.database, "other-node:1234:1", 5, 60, now=now)
    # the starting process is gone, the other node still works on it
    with audits.database.begin() as conn:
        conn.execute(
            sa.update(schema.qa_runs)
            .where(schema.qa_runs.c.id == run_id)
            .values(claimed_by=f"{HOST}:999999999:0")
        )
    assert audits.mark_interrupted() == []
    with audits.database.begin() as conn:  # ... until its claims expire
        conn.execute(
            sa.update(schema.qa_items)
            .where(schema.qa_items.c.run_id == run_id)
            .values(claimed_until=now - 1)
        )
    assert audits.mark_interrupted() == [run_id]


@BOTH
def test_a_failing_worker_fails_the_run_and_leaves_its_items_to_a_resume(url, conversations):
    audits = audit_store(url)
    run_id = audits.create_run("boom", conversations[:20], [], by="t")
    audits.claim(run_id)

    class Broken:
        def check_conversation(self, conv):
            raise RuntimeError("规则出错")

    with pytest.raises(RuntimeError):
        audits.check(run_id, Broken(), batch=10)
    run = audits.run(run_id)
    assert run["status"] == "failed" and "规则出错" in run["message"]
    assert audits.claim(run_id)
    assert audits.check(run_id, Checker(), batch=10)["checked"] == 20  # nothing waits


@BOTH
def test_a_run_of_unreadable_records_only_is_done_at_once(url):
    from coach.transcripts import ImportIssue

    audits = audit_store(url)
    run_id = audits.create_run("errors", [], [ImportIssue("a.jsonl", 1, "坏")], by="t")
    audits.claim(run_id)
    assert audits.check(run_id, Checker())["status"] == "done"
    assert audits.work(lambda version: Checker()) == 0  # nothing to claim anywhere


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgresql_passes_over_rows_another_worker_is_claiming(url, conversations):
    """A claim in progress (rows locked, not yet committed) is skipped, not waited for."""
    audits = audit_store(url)
    run_id = audits.create_run("locks", conversations[:20], [], by="t")
    audits.claim(run_id)
    with audits.database.engine.connect() as other, other.begin():
        locked = set(other.execute(repo._claimable(run_id, 10, time.time())).scalars())
        assert len(locked) == 10
        started = time.monotonic()
        got = repo.claim_batch(audits.database, "b:1:1", 10, 60, now=time.time())
        assert time.monotonic() - started < 5
        assert len(got) == 10 and not {r["id"] for r in got} & locked


@BOTH
def test_revision_0002_fills_the_findings_table_of_an_instance_made_before_it(url):
    """An instance whose qa_findings table the baseline created empty gets the rows of
    its checked conversations' findings (waived ones marked) when migrated to 0002."""
    db = Database(url, migrate=False)
    db.migrate("0001")
    findings = [
        {"rule": "filler-bare", "category": "filler", "match": "哦", "turn": 1},
        {"rule": "no-closing", "category": "no_closing", "turn": 3, "waived": True},
    ]
    with db.begin() as conn:
        conn.execute(sa.text("INSERT INTO qa_runs (id, status) VALUES (1, 'done')"))
        conn.execute(
            sa.text(
                "INSERT INTO qa_items (id, run_id, agent, status, findings) VALUES "
                "(1, 1, 'agent1', 'done', :f), (2, 1, 'bob', 'done', '[]'), "
                "(3, 1, 'bob', 'pending', '[]')"
            ),
            {"f": json.dumps(findings, ensure_ascii=False)},
        )
    db.migrate()
    with db.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT run_id, item_id, agent, idx, rule, category, match, waived "
                "FROM qa_findings ORDER BY idx"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        (1, 1, "agent1", 0, "filler-bare", "filler", "哦", 0),
        (1, 1, "agent1", 1, "no-closing", "no_closing", "", 1),
    ]
    db.dispose()


@BOTH
def test_a_server_helps_with_runs_it_did_not_start(tmp_path, url, conversations):
    """The audit worker thread of a web app checks batches of a run another process
    started (here: claimed and left running); AUDIT_WORKER_SECONDS = 0 keeps it out."""
    from web import create_app

    audits = audit_store(url)
    run_id = audits.create_run("elsewhere", conversations[:30], [], by="t")
    audits.claim(run_id)
    config = {
        "INSTANCE": str(tmp_path / "instance"),
        "TESTING": True,
        "DATABASE_URL": url,
        "INDEX_SYNC_SECONDS": 0,
    }
    idle = create_app({**config, "AUDIT_WORKER_SECONDS": 0})
    assert idle.extensions["services"].audit_worker is None
    app = create_app({**config, "AUDIT_WORKER_SECONDS": 0.05})
    services = app.extensions["services"]
    worker = services.audit_worker
    try:
        deadline = time.monotonic() + 60
        while audits.run(run_id)["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        run = audits.run(run_id)
        assert (run["status"], run["checked"]) == ("done", 30)
    finally:
        services.stop_worker()
    assert not worker.is_alive()


def test_kbcoach_audit_work_helps_until_nothing_is_left(instance, conversations):
    from .conftest import run_cli

    url = sqlite_url(instance)
    audits = audit_store(url)
    run_id = audits.create_run("cli", conversations[:30], [], by="t")
    audits.claim(run_id)  # started "elsewhere"
    out = run_cli("audit", "work", "--once", instance=instance)
    assert out.returncode == 0, out.stderr
    assert "共检查 30 个会话" in out.stderr
    assert audits.run(run_id)["status"] == "done"
    close_all(url)


@BOTH
def test_a_job_of_another_machine_is_not_marked_interrupted_here(url):
    """Import and rebuild jobs (kb/runs.py): a process id is checked on its own
    machine only; this machine's dead jobs are interrupted."""
    from kb.runs import Runs

    runs = Runs(Store(Database.open(url)))
    here = runs.start("import", "a")
    there = runs.start("import", "b")
    with runs.database.begin() as conn:  # both processes gone; one ran on another node
        for job, host in ((here, None), (there, "other-node")):
            values = {"pid": 999999999} | ({"host": host} if host else {})
            conn.execute(sa.update(schema.runs).where(schema.runs.c.id == job).values(**values))
    assert [r["id"] for r in runs.mark_interrupted()] == [here]
    assert {r["id"]: r["status"] for r in runs.recent()} == {
        here: "interrupted",
        there: "running",
    }
    assert runs.any_running()


WORKER = """
import os, sys, time
from coach.audits import AuditStore, new_claimer
from coach.checker import Checker
from kb.store import Store
from storage import Database, audits as repo

url, run_id, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
audits = AuditStore(Store(Database.open(url)))
if mode == "die":  # claim a batch for 2 s, then die without a word
    got = repo.claim_batch(audits.database, new_claimer(), 10, 2, now=time.time())
    print(len(got), flush=True)
    os._exit(9)
class Slow:  # 20 ms a conversation: both workers are busy at once
    def __init__(self):
        self.checker = Checker()

    def check_conversation(self, conv):
        time.sleep(0.02)
        return self.checker.check_conversation(conv)


checker, claimer, n = Slow(), new_claimer(), 0
while audits.run(run_id)["status"] == "running":
    done = audits.work(lambda version: checker, claimer=claimer, batch=10, lease=2)
    n += done
    if not done:
        time.sleep(0.05)
print(n, flush=True)
"""


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_worker_processes_share_a_run_and_a_dead_ones_batch_is_taken_over(
    url, conversations, checker
):
    """Real processes on one PostgreSQL database: one claims a batch and dies (SIGKILL
    would do the same), two others check the run; after the dead one's claim expires
    they take its batch, and the run equals a single worker's."""
    import subprocess
    import sys

    from .conftest import REPO

    audits = audit_store(url)
    alone = audits.create_run("one", conversations[:120], [], by="t")
    audits.claim(alone)
    audits.check(alone, checker)
    want = results(audits, alone)

    run_id = audits.create_run("processes", conversations[:120], [], by="t", reaudit=True)
    audits.claim(run_id)

    def spawn(mode: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", WORKER, url, str(run_id), mode],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    dying = spawn("die")
    out, err = dying.communicate(timeout=120)
    assert dying.returncode == 9 and out.strip() == "10", err
    workers = [spawn("work") for _ in range(2)]
    counts = []
    for w in workers:
        out, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
        counts.append(int(out.strip()))
    assert sum(counts) == 120 and all(counts)  # both worked, each item saved once
    run = audits.run(run_id)
    assert (run["status"], run["checked"]) == ("done", 120)
    assert results(audits, run_id) == want
    assert len(claimers(audits, run_id)) == 2  # the dead one saved nothing


@BOTH
def test_a_runs_own_worker_waits_for_a_batch_held_elsewhere_and_takes_it_when_expired(
    url, conversations, checker
):
    audits = audit_store(url)
    run_id = audits.create_run("wait", conversations[:20], [], by="t")
    audits.claim(run_id)
    held = repo.claim_batch(audits.database, "other-node:1:1", 10, 1.5, now=time.time())
    assert len(held) == 10
    seen = []

    def progress(done, total):
        seen.append(done)
        if done == 10:  # waiting now: the run still has a live worker (this one)
            time.sleep(2)
            assert audits.mark_interrupted() == []

    run = audits.check(run_id, checker, batch=10, progress=progress)
    assert (run["status"], run["checked"]) == ("done", 20) and seen == [10, 20]
