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
from collections import defaultdict
from collections.abc import Callable

from kb.errors import KbError
from kb.runs import process_alive
from kb.store import Store, now_iso

from .checker import Checker
from .scoring import UNKNOWN_AGENT, score_conversation
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
MAX_ERROR_TEXT = 200  # stored excerpt of an input error's path and reason
PAGE_TURN_CHARS = 2000  # of one turn's text on a conversation page
MAX_PAGE_FINDINGS = 1000  # findings read for one page of turns (a rule gives 3 a turn)


class AuditError(KbError, ValueError):
    """A request the audit store refuses (Chinese message, HTTP-like status)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _clip(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _conversation(data: dict) -> Conversation:
    return Conversation(
        id=data["id"],
        turns=[Turn(**t) for t in data["turns"]],
        agent=data.get("agent", ""),
        channel=data.get("channel", ""),
        started_at=data.get("started_at"),
        source=data.get("source", ""),
    )


TOP_HABITS = 5
FINDING_INSERT = (
    "INSERT INTO qa_findings (run_id, item_id, agent, idx, rule, category, match, waived) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _finding_rows(run_id: int, item_id: int, agent: str, findings) -> list[tuple]:
    """Rows of the findings table for one checked conversation (JSON text or a list)."""
    if isinstance(findings, str):
        findings = json.loads(findings or "[]")
    return [
        (
            run_id,
            item_id,
            agent or "",
            n,
            f["rule"],
            f["category"],
            (f.get("match") or "")[:100],
            int(bool(f.get("waived"))),
        )
        for n, f in enumerate(findings)
    ]


class AuditStore:
    """Runs, their conversations and findings, input errors and appeals."""

    def __init__(self, store: Store, log: Callable[[str, str, str, dict], None] | None = None):
        self.store = store
        self.db = store.db
        self.log = log or (lambda actor, action, target, detail: None)
        if "qa_runs" not in self.db.table_names():
            self._create()
        elif "qa_errors_run" not in {i.name for i in self.db["qa_errors"].indexes}:
            with self.db.conn:  # instances made before the run page paged its errors
                self.db["qa_errors"].create_index(
                    ["run_id", "id"], index_name="qa_errors_run", if_not_exists=True
                )
        if "qa_findings" not in self.db.table_names():
            self._create_findings()

    def _create_findings(self) -> None:
        """One row per finding (item, rule, category, matched words, waived), so a run's
        per-agent figures are SQL aggregates: a run page no longer parses every finding
        of every conversation of the agents it shows (one agent with 58,000
        conversations made each view 5 s). Instances made before are filled in once."""
        db = self.db
        with db.conn:
            db["qa_findings"].create(
                {
                    "id": int,
                    "run_id": int,
                    "item_id": int,
                    "agent": str,
                    "idx": int,
                    "rule": str,
                    "category": str,
                    "match": str,
                    "waived": int,
                },
                pk="id",
                if_not_exists=True,
            )
            db["qa_findings"].create_index(["run_id", "agent", "rule"], if_not_exists=True)
            db["qa_findings"].create_index(["item_id", "idx"], if_not_exists=True)
            rows = db.execute(
                "SELECT id, run_id, agent, findings FROM qa_items WHERE status = 'done'"
            )
            for item_id, run_id, agent, findings in rows:
                db.conn.executemany(FINDING_INSERT, _finding_rows(run_id, item_id, agent, findings))

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
            db["qa_errors"].create_index(
                ["run_id", "id"], index_name="qa_errors_run", if_not_exists=True
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
            # plain executemany: an upload of 400,000 broken lines is 400,000 rows, and
            # sqlite-utils' insert_all builds a dict and a statement per batch for each
            self.db.conn.executemany(
                "INSERT INTO qa_errors (run_id, path, line, reason) VALUES (?, ?, ?, ?)",
                ((run_id, _clip(e.path), e.line, _clip(e.reason)) for e in errors),
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
                        "SELECT id, agent, conversation FROM qa_items "
                        "WHERE run_id = ? AND status = 'pending' ORDER BY seq LIMIT ?",
                        [run_id, batch],
                    )
                )
                if not rows:
                    break
                done, found = [], []
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
                    found += _finding_rows(run_id, row["id"], row["agent"], report.findings)
                with self.db.conn:
                    self.db.conn.executemany(
                        "UPDATE qa_items SET status = 'done', score = ?, findings = ?, "
                        "unchecked = ? WHERE id = ?",
                        done,
                    )
                    self.db.conn.executemany(FINDING_INSERT, found)
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

    def runs(self, limit: int = 50, offset: int = 0) -> list[dict]:
        self.mark_interrupted()
        out = list(
            self.db.query(
                "SELECT r.*, (SELECT round(avg(score), 1) FROM qa_items i "
                "WHERE i.run_id = r.id AND i.status = 'done') AS mean_score "
                "FROM qa_runs r ORDER BY r.id DESC LIMIT ? OFFSET ?",
                [limit, offset],
            )
        )
        for r in out:
            r["label"] = RUN_LABELS.get(r["status"], r["status"])
        return out

    def run_count(self) -> int:
        return self._count("SELECT count(*) FROM qa_runs", [])

    def errors(self, run_id: int, *, limit: int = 50, offset: int = 0) -> list[dict]:
        """A page of a run's unreadable records, in upload order."""
        return list(
            self.db.query(
                "SELECT path, line, reason FROM qa_errors WHERE run_id = ? "
                "ORDER BY id LIMIT ? OFFSET ?",
                [run_id, limit, offset],
            )
        )

    def error_count(self, run_id: int) -> int:
        return self._count("SELECT count(*) FROM qa_errors WHERE run_id = ?", [run_id])

    def _count(self, sql: str, params: list) -> int:
        return int(self.db.execute(sql, params).fetchone()[0])

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

    def item_count(self, run_id: int, *, agent: str | None = None) -> int:
        if agent is None:
            return self._count("SELECT count(*) FROM qa_items WHERE run_id = ?", [run_id])
        return self._count(
            "SELECT count(*) FROM qa_items WHERE run_id = ? AND agent = ?", [run_id, agent]
        )

    def item(self, item_id: int) -> dict:
        rows = list(self.db.query("SELECT * FROM qa_items WHERE id = ?", [item_id]))
        if not rows:
            raise AuditError("会话不存在", 404)
        row = rows[0]
        row["findings"] = json.loads(row["findings"])
        row["unchecked"] = json.loads(row.get("unchecked") or "[]")
        row["conversation"] = json.loads(row["conversation"])
        appeals = self.appeals(item_id=item_id, limit=-1)  # all: appeal/decide check them
        by_finding: dict[int, list[dict]] = {}
        for a in appeals:
            by_finding.setdefault(a["finding"], []).append(a)
        for n, f in enumerate(row["findings"]):
            f["index"] = n
            f["appeals"] = by_finding.get(n, [])
        row["appeals"] = appeals
        return row

    def item_page(self, item_id: int, *, limit: int = 50, offset: int = 0) -> dict:
        """A conversation as its page shows it, read in SQL a page of turns at a time:
        the item's columns, `turns` (n, role, speaker, ts, text clipped to
        PAGE_TURN_CHARS, clipped), the findings of those turns and the whole-
        conversation ones (`general`), each with its index and appeals."""
        rows = list(
            self.db.query(
                "SELECT id, run_id, seq, conv_id, agent, source, status, score, turns, "
                "agent_turns, unchecked, (SELECT count(*) FROM json_each(findings) "
                "WHERE json_extract(value, '$.waived') IS NULL) AS nfindings "
                "FROM qa_items WHERE id = ?",
                [item_id],
            )
        )
        if not rows:
            raise AuditError("会话不存在", 404)
        row = rows[0]
        row["unchecked"] = json.loads(row.get("unchecked") or "[]")
        row["turn_list"] = [
            {
                "n": t["n"],
                "role": t["role"],
                "speaker": t["speaker"] or "",
                "ts": t["ts"],
                "text": t["text"] or "",
                "clipped": t["size"] - PAGE_TURN_CHARS if t["size"] > PAGE_TURN_CHARS else 0,
            }
            for t in self.db.query(
                "SELECT j.key AS n, json_extract(j.value, '$.role') AS role, "
                "substr(json_extract(j.value, '$.speaker'), 1, 200) AS speaker, "
                "json_extract(j.value, '$.ts') AS ts, "
                "substr(json_extract(j.value, '$.text'), 1, ?) AS text, "
                "length(json_extract(j.value, '$.text')) AS size "
                "FROM qa_items, json_each(qa_items.conversation, '$.turns') AS j "
                "WHERE qa_items.id = ? ORDER BY j.key LIMIT ? OFFSET ?",
                [PAGE_TURN_CHARS, item_id, limit, offset],
            )
        ]
        first, last = offset, offset + max(len(row["turn_list"]), 1) - 1

        def findings(cond: str, params: list) -> list[dict]:
            out = []
            sql = (
                "SELECT j.key AS n, j.value AS f FROM qa_items, json_each(qa_items.findings) "
                "AS j WHERE qa_items.id = ? AND "
            )
            sql += cond + " ORDER BY j.key LIMIT ?"
            for f in self.db.query(sql, [item_id, *params, MAX_PAGE_FINDINGS]):
                finding = json.loads(f["f"])
                finding["index"] = f["n"]
                out.append(finding)
            return out

        turn = "json_extract(j.value, '$.turn')"
        row["page_findings"] = findings(f"{turn} BETWEEN ? AND ?", [first, last])
        row["general"] = findings(f"{turn} >= ?", [row["turns"]])
        shown = [f["index"] for f in row["page_findings"] + row["general"]]
        by_finding: dict[int, list[dict]] = {}
        if shown:
            for a in self.appeals(item_id=item_id, findings=shown, limit=-1):
                by_finding.setdefault(a["finding"], []).append(a)
        for f in row["page_findings"] + row["general"]:
            f["appeals"] = by_finding.get(f["index"], [])
        return row

    def finding_turn(self, item_id: int, finding: int) -> int | None:
        """The turn a finding of a conversation points at (to open its page)."""
        row = self.db.execute(
            "SELECT json_extract(findings, ?) FROM qa_items WHERE id = ?",
            [f"$[{int(finding)}].turn", item_id],
        ).fetchone()
        return row[0] if row and isinstance(row[0], int) else None

    def items_of_agent(self, agent: str, limit: int = 200, offset: int = 0) -> list[dict]:
        """An agent's checked conversations across runs, newest run first."""
        return list(
            self.db.query(
                "SELECT i.id, i.run_id, i.conv_id, i.score, i.turns, r.name AS run_name, "
                "r.created_at, (SELECT count(*) FROM json_each(i.findings) "
                "WHERE json_extract(value, '$.waived') IS NULL) AS nfindings "
                "FROM qa_items i JOIN qa_runs r ON r.id = i.run_id "
                "WHERE i.agent = ? AND i.status = 'done' ORDER BY i.run_id DESC, i.score, i.id "
                "LIMIT ? OFFSET ?",
                [agent, limit, offset],
            )
        )

    def items_of_agent_count(self, agent: str) -> int:
        return self._count(
            "SELECT count(*) FROM qa_items WHERE agent = ? AND status = 'done'", [agent]
        )

    def agent_count(self, run_id: int) -> int:
        return self._count(
            "SELECT count(DISTINCT agent) FROM qa_items WHERE run_id = ? AND status = 'done'",
            [run_id],
        )

    def agents(self, run_id: int, *, limit: int | None = None, offset: int = 0) -> list[dict]:
        """Per-agent aggregates of a run (waived findings no longer count), lowest mean
        score first; `limit` pages the agents in SQL (None: all of them). Aggregated in
        SQL over conversations and the findings table: the cost follows the agents
        shown, not how many conversations they had."""
        page = " LIMIT ? OFFSET ?" if limit is not None else ""
        params: list = [run_id] + ([limit, offset] if limit is not None else [])
        rows = self.db.execute(
            "SELECT agent, count(*), round(avg(score), 1), sum(agent_turns) FROM qa_items "  # noqa: S608 - constant text
            "WHERE run_id = ? AND status = 'done' GROUP BY agent "
            "ORDER BY round(avg(score), 1), agent" + page,
            params,
        ).fetchall()
        if not rows:
            return []
        names = [r[0] for r in rows]
        marks = ", ".join("?" * len(names))
        by_rule: dict[str, list] = defaultdict(list)
        for agent, rule, category, n in self.db.execute(
            "SELECT agent, rule, category, count(*) FROM qa_findings "  # noqa: S608 - marks only
            f"WHERE run_id = ? AND waived = 0 AND agent IN ({marks}) "
            "GROUP BY agent, rule ORDER BY agent, count(*) DESC, min(id)",
            [run_id, *names],
        ):
            by_rule[agent].append((rule, category, n))
        matches: dict[tuple[str, str], list[str]] = defaultdict(list)
        for agent, rule, match in self.db.execute(
            "SELECT agent, rule, match FROM qa_findings "  # noqa: S608 - marks only
            f"WHERE run_id = ? AND waived = 0 AND match != '' AND agent IN ({marks}) "
            "GROUP BY agent, rule, match ORDER BY agent, rule, count(*) DESC, min(id)",
            [run_id, *names],
        ):
            if len(matches[(agent, rule)]) < 3:
                matches[(agent, rule)].append(match)
        out = []
        for agent, n, mean, turns in rows:
            rules = by_rule.get(agent, [])
            nfind = sum(c for _, _, c in rules)
            out.append(
                {
                    "agent": agent or UNKNOWN_AGENT,
                    "conversations": n,
                    "agent_turns": turns,
                    "mean_score": mean,
                    "findings": nfind,
                    "findings_per_100_turns": round(100.0 * nfind / turns, 1) if turns else 0.0,
                    "top_habits": [
                        {
                            "rule": rule,
                            "category": category,
                            "count": c,
                            "matches": matches.get((agent, rule), []),
                        }
                        for rule, category, c in rules[:TOP_HABITS]
                    ],
                }
            )
        return out

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
                self.db.execute(
                    "UPDATE qa_findings SET waived = 1 WHERE item_id = ? AND idx = ?",
                    [item["id"], appeal["finding"]],
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

    @staticmethod
    def _appeal_filter(item_id, status, by, findings=None) -> tuple[str, list]:
        sql, params = "", []
        for column, value in (("item_id", item_id), ("status", status), ("by", by)):
            if value is not None:
                sql += " AND a." + column + " = ?"  # column: one of the three above
                params.append(value)
        if findings is not None:
            sql += " AND a.finding IN (" + ", ".join("?" * len(findings)) + ")"
            params += list(findings)
        return sql, params

    def appeals(
        self,
        *,
        item_id: int | None = None,
        status: str | None = None,
        by: str | None = None,
        findings: list[int] | None = None,
        limit: int = 500,
        offset: int = 0,
    ) -> list[dict]:
        """Appeals, newest first, filtered by conversation (and its findings), state or
        author; `limit`/`offset` page them."""
        where, params = self._appeal_filter(item_id, status, by, findings)
        sql = (
            "SELECT a.*, i.run_id, i.conv_id, i.agent FROM qa_appeals a "
            "JOIN qa_items i ON i.id = a.item_id WHERE 1 = 1"
        )
        sql += where + " ORDER BY a.id DESC LIMIT ? OFFSET ?"
        out = list(self.db.query(sql, [*params, limit, offset]))
        for a in out:
            a["label"] = APPEAL_LABELS.get(a["status"], a["status"])
        return out

    def appeal_count(self, *, status: str | None = None, by: str | None = None) -> int:
        where, params = self._appeal_filter(None, status, by)
        sql = "SELECT count(*) FROM qa_appeals a WHERE 1 = 1"
        return self._count(sql + where, params)
