"""Audit runs kept in the instance database: the supervisor's workspace.

A run is created in one transaction that stores every conversation of the upload
(as `pending` items) and every input error (file, line, reason).  Checking then
works through the pending items in batches, each committed with the run's
progress, so a process killed mid-run loses nothing: the next look at the runs
finds it `interrupted` (its process is gone) and `resume` checks only what is
still pending.  Appeals let an agent contest one finding; a supervisor accepts
(the finding no longer counts and the score is recomputed) or rejects it.  Every
state change goes to the append-only audit log through `log`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from types import SimpleNamespace

from kb.errors import KbError
from kb.runs import process_alive
from kb.store import Store, now_iso

from .checker import Checker
from .scoring import UNKNOWN_AGENT, aggregate_agents, score_conversation
from .transcripts import Conversation, ImportIssue, Turn

BATCH = 100
RUN_STATUSES = ("queued", "running", "done", "interrupted", "failed")
RUN_LABELS = {
    "queued": "排队中",
    "running": "检查中",
    "done": "已完成",
    "interrupted": "已中断",
    "failed": "失败",
}
APPEAL_LABELS = {"open": "待处理", "accepted": "已采纳", "rejected": "已驳回"}
MAX_REASON = 1000


class AuditError(KbError, ValueError):
    """A request the audit store refuses (Chinese message, HTTP-like status)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _conversation(data: dict) -> Conversation:
    return Conversation(
        id=data["id"],
        turns=[Turn(**t) for t in data["turns"]],
        agent=data.get("agent", ""),
        channel=data.get("channel", ""),
        started_at=data.get("started_at"),
        source=data.get("source", ""),
    )


class AuditStore:
    """Runs, their conversations and findings, input errors and appeals."""

    def __init__(self, store: Store, log: Callable[[str, str, str, dict], None] | None = None):
        self.store = store
        self.db = store.db
        self.log = log or (lambda actor, action, target, detail: None)
        if "qa_runs" not in self.db.table_names():
            self._create()

    def _create(self) -> None:
        db = self.db
        with db.conn:
            db["qa_runs"].create(
                {
                    "id": int,
                    "name": str,
                    "created_by": str,
                    "created_at": str,
                    "finished_at": str,
                    "status": str,
                    "pid": int,
                    "total": int,
                    "checked": int,
                    "errors": int,
                    "rules_version": int,
                    "message": str,
                },
                pk="id",
                if_not_exists=True,
            )
            db["qa_items"].create(
                {
                    "id": int,
                    "run_id": int,
                    "seq": int,
                    "conv_id": str,
                    "agent": str,
                    "source": str,
                    "status": str,
                    "score": float,
                    "turns": int,
                    "agent_turns": int,
                    "findings": str,
                    "unchecked": str,
                    "conversation": str,
                },
                pk="id",
                if_not_exists=True,
            )
            db["qa_items"].create_index(["run_id", "status", "seq"], if_not_exists=True)
            db["qa_items"].create_index(["agent"], if_not_exists=True)
            db["qa_errors"].create(
                {"id": int, "run_id": int, "path": str, "line": int, "reason": str},
                pk="id",
                if_not_exists=True,
            )
            db["qa_appeals"].create(
                {
                    "id": int,
                    "item_id": int,
                    "finding": int,
                    "rule": str,
                    "by": str,
                    "reason": str,
                    "at": str,
                    "status": str,
                    "decided_by": str,
                    "decided_at": str,
                    "note": str,
                },
                pk="id",
                if_not_exists=True,
            )
            db["qa_appeals"].create_index(["item_id"], if_not_exists=True)
            db["qa_appeals"].create_index(["status"], if_not_exists=True)

    # -- runs ------------------------------------------------------------------

    def create_run(
        self,
        name: str,
        conversations: list[Conversation],
        errors: list[ImportIssue],
        *,
        by: str,
        rules_version: int = 0,
    ) -> int:
        """Store an upload as a queued run (one transaction); returns the run id."""
        if not conversations and not errors:
            raise AuditError("没有可检查的会话")
        with self.db.conn:
            run_id = (
                self.db["qa_runs"]
                .insert(
                    {
                        "name": name[:200],
                        "created_by": by,
                        "created_at": now_iso(),
                        "finished_at": "",
                        "status": "queued",
                        "pid": 0,
                        "total": len(conversations),
                        "checked": 0,
                        "errors": len(errors),
                        "rules_version": rules_version,
                        "message": "",
                    }
                )
                .last_pk
            )
            self.db["qa_items"].insert_all(
                (
                    {
                        "run_id": run_id,
                        "seq": n,
                        "conv_id": c.id,
                        "agent": c.agent,
                        "source": c.source,
                        "status": "pending",
                        "score": None,
                        "turns": len(c.turns),
                        "agent_turns": sum(1 for t in c.turns if t.role == "agent"),
                        "findings": "[]",
                        "unchecked": "[]",
                        "conversation": json.dumps(c.to_dict(), ensure_ascii=False),
                    }
                    for n, c in enumerate(conversations)
                ),
                batch_size=500,
            )
            self.db["qa_errors"].insert_all(
                {"run_id": run_id, "path": e.path, "line": e.line, "reason": e.reason}
                for e in errors
            )
        self.log(
            by,
            "audit.run",
            str(run_id),
            {"name": name[:200], "conversations": len(conversations), "errors": len(errors)},
        )
        return int(run_id)

    def mark_interrupted(self) -> list[int]:
        """Runs marked running whose process is gone become interrupted."""
        stale = [
            r["id"]
            for r in self.db.query("SELECT id, pid FROM qa_runs WHERE status = 'running'")
            if not process_alive(r["pid"])
        ]
        if stale:
            with self.db.conn:
                for rid in stale:
                    self.db.execute(
                        "UPDATE qa_runs SET status = 'interrupted' "
                        "WHERE id = ? AND status = 'running'",
                        [rid],
                    )
        return stale

    def claim(self, run_id: int) -> bool:
        """Mark a queued or interrupted run as running in this process (atomic)."""
        self.mark_interrupted()
        with self.db.conn:
            cur = self.db.execute(
                "UPDATE qa_runs SET status = 'running', pid = ?, message = '' "
                "WHERE id = ? AND status IN ('queued', 'interrupted', 'failed')",
                [os.getpid(), run_id],
            )
        return cur.rowcount == 1

    def check(
        self,
        run_id: int,
        checker: Checker,
        *,
        progress: Callable[[int, int], None] | None = None,
        batch: int = BATCH,
    ) -> dict:
        """Check every pending item of a claimed run, batch by batch; returns the run."""
        try:
            while True:
                rows = list(
                    self.db.query(
                        "SELECT id, conversation FROM qa_items "
                        "WHERE run_id = ? AND status = 'pending' ORDER BY seq LIMIT ?",
                        [run_id, batch],
                    )
                )
                if not rows:
                    break
                done = []
                for row in rows:
                    report = checker.check_conversation(
                        _conversation(json.loads(row["conversation"]))
                    )
                    done.append(
                        (
                            report.score,
                            json.dumps(report.findings, ensure_ascii=False),
                            json.dumps(report.not_checkable, ensure_ascii=False),
                            row["id"],
                        )
                    )
                with self.db.conn:
                    self.db.conn.executemany(
                        "UPDATE qa_items SET status = 'done', score = ?, findings = ?, "
                        "unchecked = ? WHERE id = ?",
                        done,
                    )
                    self.db.execute(
                        "UPDATE qa_runs SET checked = checked + ? WHERE id = ?",
                        [len(done), run_id],
                    )
                if progress is not None:
                    run = self.run(run_id)
                    progress(run["checked"], run["total"])
        except Exception as exc:
            self.fail(run_id, exc)
            raise
        with self.db.conn:
            self.db.execute(
                "UPDATE qa_runs SET status = 'done', finished_at = ? WHERE id = ?",
                [now_iso(), run_id],
            )
        return self.run(run_id)

    def fail(self, run_id: int, exc: BaseException) -> None:
        """Mark a run failed with the error (pending items stay pending)."""
        with self.db.conn:
            self.db.execute(
                "UPDATE qa_runs SET status = 'failed', finished_at = ?, message = ? WHERE id = ?",
                [now_iso(), f"{type(exc).__name__}: {exc}"[:500], run_id],
            )

    def run(self, run_id: int) -> dict:
        rows = list(self.db.query("SELECT * FROM qa_runs WHERE id = ?", [run_id]))
        if not rows:
            raise AuditError(f"质检批次 {run_id} 不存在", 404)
        row = rows[0]
        row["label"] = RUN_LABELS.get(row["status"], row["status"])
        return row

    def runs(self, limit: int = 50) -> list[dict]:
        self.mark_interrupted()
        out = list(
            self.db.query(
                "SELECT r.*, (SELECT round(avg(score), 1) FROM qa_items i "
                "WHERE i.run_id = r.id AND i.status = 'done') AS mean_score "
                "FROM qa_runs r ORDER BY r.id DESC LIMIT ?",
                [limit],
            )
        )
        for r in out:
            r["label"] = RUN_LABELS.get(r["status"], r["status"])
        return out

    def errors(self, run_id: int) -> list[dict]:
        return list(
            self.db.query(
                "SELECT path, line, reason FROM qa_errors WHERE run_id = ? ORDER BY id", [run_id]
            )
        )

    # -- items -------------------------------------------------------------------

    def items(
        self, run_id: int, *, agent: str | None = None, limit: int = 500, offset: int = 0
    ) -> list[dict]:
        """Checked conversations of a run, lowest score first."""
        sql = (
            "SELECT id, seq, conv_id, agent, source, status, score, turns, agent_turns, "
            # findings that still count: an accepted appeal waives one
            "(SELECT count(*) FROM json_each(findings) "
            "WHERE json_extract(value, '$.waived') IS NULL) AS nfindings "
            "FROM qa_items WHERE run_id = ?"
        )
        params: list = [run_id]
        if agent is not None:
            sql += " AND agent = ?"
            params.append(agent)
        sql += " ORDER BY status = 'pending', score, seq LIMIT ? OFFSET ?"
        return list(self.db.query(sql, [*params, limit, offset]))

    def item(self, item_id: int) -> dict:
        rows = list(self.db.query("SELECT * FROM qa_items WHERE id = ?", [item_id]))
        if not rows:
            raise AuditError("会话不存在", 404)
        row = rows[0]
        row["findings"] = json.loads(row["findings"])
        row["unchecked"] = json.loads(row.get("unchecked") or "[]")
        row["conversation"] = json.loads(row["conversation"])
        appeals = self.appeals(item_id=item_id)
        by_finding: dict[int, list[dict]] = {}
        for a in appeals:
            by_finding.setdefault(a["finding"], []).append(a)
        for n, f in enumerate(row["findings"]):
            f["index"] = n
            f["appeals"] = by_finding.get(n, [])
        row["appeals"] = appeals
        return row

    def items_of_agent(self, agent: str, limit: int = 200) -> list[dict]:
        """An agent's checked conversations across runs, newest run first."""
        return list(
            self.db.query(
                "SELECT i.id, i.run_id, i.conv_id, i.score, i.turns, r.name AS run_name, "
                "r.created_at, (SELECT count(*) FROM json_each(i.findings) "
                "WHERE json_extract(value, '$.waived') IS NULL) AS nfindings "
                "FROM qa_items i JOIN qa_runs r ON r.id = i.run_id "
                "WHERE i.agent = ? AND i.status = 'done' ORDER BY i.run_id DESC, i.score "
                "LIMIT ?",
                [agent, limit],
            )
        )

    def agents(self, run_id: int) -> list[dict]:
        """Per-agent aggregates of a run (waived findings no longer count)."""
        reports = []
        for row in self.db.query(
            "SELECT agent, score, agent_turns, findings FROM qa_items "
            "WHERE run_id = ? AND status = 'done'",
            [run_id],
        ):
            findings = [f for f in json.loads(row["findings"]) if not f.get("waived")]
            reports.append(
                SimpleNamespace(
                    agent=row["agent"] or UNKNOWN_AGENT,
                    score=row["score"],
                    agent_turns=row["agent_turns"],
                    findings=findings,
                )
            )
        return aggregate_agents(reports)

    # -- appeals -----------------------------------------------------------------

    def appeal(self, item_id: int, finding: int, reason: str, *, by: str) -> int:
        """An agent contests one finding of a checked conversation."""
        item = self.item(item_id)
        reason = (reason or "").strip()
        if not reason:
            raise AuditError("请填写申诉理由")
        if len(reason) > MAX_REASON:
            raise AuditError(f"申诉理由过长（最多 {MAX_REASON} 字）", 413)
        if not 0 <= finding < len(item["findings"]):
            raise AuditError("要申诉的问题不存在")
        if item["findings"][finding].get("waived"):
            raise AuditError("该问题的申诉已被采纳，不再扣分", 409)
        if any(a["status"] == "rejected" for a in item["findings"][finding]["appeals"]):
            raise AuditError("该问题的申诉已被驳回，不能再次申诉", 409)
        if any(a["status"] == "open" for a in item["findings"][finding]["appeals"]):
            raise AuditError("该问题已有待处理的申诉", 409)
        with self.db.conn:
            appeal_id = (
                self.db["qa_appeals"]
                .insert(
                    {
                        "item_id": item_id,
                        "finding": finding,
                        "rule": item["findings"][finding]["rule"],
                        "by": by,
                        "reason": reason,
                        "at": now_iso(),
                        "status": "open",
                        "decided_by": "",
                        "decided_at": "",
                        "note": "",
                    }
                )
                .last_pk
            )
        self.log(
            by,
            "appeal.create",
            str(appeal_id),
            {"item": item_id, "finding": finding, "rule": item["findings"][finding]["rule"]},
        )
        return int(appeal_id)

    def decide(self, appeal_id: int, accept: bool, note: str, *, by: str, pack) -> dict:
        """Accept (the finding is waived, the score recomputed) or reject an appeal."""
        rows = list(self.db.query("SELECT * FROM qa_appeals WHERE id = ?", [appeal_id]))
        if not rows:
            raise AuditError("申诉不存在", 404)
        appeal = rows[0]
        if appeal["status"] != "open":
            raise AuditError("该申诉已处理", 409)
        status = "accepted" if accept else "rejected"
        item = self.item(appeal["item_id"])
        with self.db.conn:
            cur = self.db.execute(
                "UPDATE qa_appeals SET status = ?, decided_by = ?, decided_at = ?, note = ? "
                "WHERE id = ? AND status = 'open'",
                [status, by, now_iso(), (note or "")[:MAX_REASON], appeal_id],
            )
            if cur.rowcount != 1:
                raise AuditError("该申诉已处理", 409)
            if accept:
                findings = item["findings"]
                for f in findings:
                    f.pop("appeals", None)
                    f.pop("index", None)
                findings[appeal["finding"]]["waived"] = True
                findings[appeal["finding"]]["deduction"] = 0
                counted = [f for f in findings if not f.get("waived")]
                score, _ = score_conversation(counted, pack)
                self.db.execute(
                    "UPDATE qa_items SET findings = ?, score = ? WHERE id = ?",
                    [json.dumps(findings, ensure_ascii=False), score, item["id"]],
                )
        self.log(
            by,
            f"appeal.{'accept' if accept else 'reject'}",
            str(appeal_id),
            {"item": item["id"], "rule": appeal["rule"], "note": (note or "")[:200]},
        )
        return self.item(item["id"])

    def get_appeal(self, appeal_id: int) -> dict:
        """One appeal with the run and conversation it belongs to."""
        rows = list(
            self.db.query(
                "SELECT a.*, i.run_id, i.conv_id, i.agent FROM qa_appeals a "
                "JOIN qa_items i ON i.id = a.item_id WHERE a.id = ?",
                [appeal_id],
            )
        )
        if not rows:
            raise AuditError("申诉不存在", 404)
        return rows[0]

    def appeals(
        self, *, item_id: int | None = None, status: str | None = None, by: str | None = None
    ) -> list[dict]:
        """Appeals, newest first (at most 500), filtered by conversation, state or author."""
        sql = (
            "SELECT a.*, i.run_id, i.conv_id, i.agent FROM qa_appeals a "
            "JOIN qa_items i ON i.id = a.item_id WHERE 1 = 1"
        )
        params: list = []
        if item_id is not None:
            sql += " AND a.item_id = ?"
            params.append(item_id)
        if status is not None:
            sql += " AND a.status = ?"
            params.append(status)
        if by is not None:
            sql += " AND a.by = ?"
            params.append(by)
        out = list(self.db.query(sql + " ORDER BY a.id DESC LIMIT 500", params))
        for a in out:
            a["label"] = APPEAL_LABELS.get(a["status"], a["status"])
        return out
