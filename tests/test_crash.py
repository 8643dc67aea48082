"""Crash safety: SIGKILL in the middle of an import loses nothing committed, leaves no
corrupt database or index, marks the run interrupted, and a re-run resumes."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import time

import sqlalchemy as sa

from storage import schema

from .conftest import FIXTURES, KBCOACH, REPO, run_cli

N = 12000


def test_killed_import_is_marked_interrupted_and_resumes(tmp_path):
    inst = tmp_path / "instance"
    run_cli("import", str(FIXTURES / "articles"), instance=inst, check=True)  # index exists
    src = tmp_path / "big.jsonl"
    with open(src, "w", encoding="utf-8") as fh:
        for i in range(N):
            fh.write(
                json.dumps(
                    {"id": f"k{i}", "title": f"断点续传测试 编号 zq{i}", "body": "内容" * 50},
                    ensure_ascii=False,
                )
                + "\n"
            )
    proc = subprocess.Popen(
        [*KBCOACH, "--instance", str(inst), "import-jsonl", str(src)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = proc.stderr.readline()
    assert first.startswith("已处理 2000"), first
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)

    db = sqlite3.connect(inst / "kbcoach.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    committed = db.execute("SELECT count(*) FROM articles").fetchone()[0]
    committed -= 4  # the fixture articles
    assert 2000 <= committed < N  # whole batches only, nothing half-written
    db.close()

    listing = run_cli("runs", instance=inst)
    assert "import-jsonl\tinterrupted" in listing.stdout

    again = run_cli("import-jsonl", str(src), "--json", instance=inst)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["unchanged"] == committed and report["added"] == N - committed
    out = json.loads(run_cli("search", "zq11999", "--json", instance=inst).stdout)
    assert out["hits"][0]["id"] == "k11999"
    out = json.loads(run_cli("search", "zq5", "--json", instance=inst).stdout)
    assert out["hits"][0]["id"] == "k5"


def test_index_left_behind_by_a_killed_job_is_repaired(kb):
    from kb.models import Article

    # what a job killed between the database commit and the index update leaves behind:
    # the row and its change are committed (one transaction), the index never saw them
    kb.store.save(Article(id="product-orphan", title="孤儿文章在索引外", category="product"))
    run_id = kb.runs.start("import", "x")
    with kb.database.begin() as conn:  # its process is gone
        conn.execute(sa.update(schema.runs).where(schema.runs.c.id == run_id).values(pid=999999999))
    assert kb.search("孤儿文章").hits == []
    assert kb.ensure_index() is None  # caught up incrementally, no rebuild
    assert kb.indexes.applied()["seq"] == kb.store.last_change()
    time.sleep(0.6)  # search views refresh at most every 0.5 s
    assert [h.id for h in kb.search("孤儿文章").hits] == ["product-orphan"]
    kb.runs.mark_interrupted()
    assert kb.runs.recent(1)[0]["status"] == "interrupted"


def test_killed_audit_run_is_marked_interrupted_and_resumes(tmp_path):
    """SIGKILL in the middle of `kbcoach audit run`: the checked batches stay, the run
    shows as interrupted, `audit resume` checks only the rest, and the result equals
    an uninterrupted run of the same file."""
    from .chatgen import write_jsonl

    total = 2000
    src = write_jsonl(tmp_path / "chats.jsonl", total)
    inst = tmp_path / "instance"
    proc = subprocess.Popen(
        [*KBCOACH, "--instance", str(inst), "audit", "run", str(src)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stderr.readline()
    stored = re.match(r"质检批次 1：(\d+) 个会话", line)
    assert stored, line
    # the generator may repeat a chat by chance: a repeat in one upload is checked once
    assert total - 10 <= int(stored[1]) <= total, line
    total = int(stored[1])
    while not line.startswith("已检查 500/"):
        line = proc.stderr.readline()
        assert line, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)

    db = sqlite3.connect(inst / "kbcoach.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    done = db.execute("SELECT count(*) FROM qa_items WHERE status = 'done'").fetchone()[0]
    checked = db.execute("SELECT checked FROM qa_runs WHERE id = 1").fetchone()[0]
    assert 500 <= done == checked < total  # whole batches, progress in step with them
    assert db.execute("SELECT count(*) FROM qa_items").fetchone()[0] == total  # input kept
    db.close()

    assert run_cli("audit", "list", instance=inst).stdout.startswith(f"1\t已中断\t{done}/")
    resumed = run_cli("audit", "resume", "1", "--json", instance=inst)
    assert resumed.returncode == 0, resumed.stderr
    assert f"已检查 {done + 100}/" in resumed.stderr  # started where the kill left off
    result = json.loads(resumed.stdout)
    assert (result["run"]["status"], result["run"]["checked"]) == ("done", total)

    fresh = tmp_path / "fresh"
    assert run_cli("audit", "run", str(src), instance=fresh).returncode == 0

    def scores(path):
        con = sqlite3.connect(path / "kbcoach.db")
        rows = con.execute("SELECT conv_id, score, findings FROM qa_items ORDER BY seq").fetchall()
        con.close()
        return rows

    assert scores(inst) == scores(fresh)
