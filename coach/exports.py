"""Exports of saved audit results: a run, an agent or a period, as XLSX or CSV.

Sheets (Chinese headers): 会话 (one row per checked conversation), 问题 (one row per
finding, with the flagged words, the turn's text, the suggested script, the points
and the appeal or waiver status) and 客服 (per agent).  Rows are read from the
database a page at a time (keyset paging on the item id) and written as they come
(coach/writers.py: openpyxl write-only, CSV in pieces), so a run of 100,000
conversations exports without being held in memory.  Exports over several runs (an
agent, a period) count a re-audited conversation once: its newest audit.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass

from kb.errors import KbError
from storage import audits as repo

from .audits import APPEAL_LABELS
from .scoring import UNKNOWN_AGENT, kpi_points
from .writers import CATEGORY_NAMES, LEVEL_NAMES, csv_chunks, write_sheets

BATCH = 200  # conversations read per page (with their findings and turns)
FORMATS = ("xlsx", "csv")
TABLES = ("findings", "conversations", "agents")
CONVERSATION_HEADER = [
    "会话ID",
    "客服",
    "得分",
    "问题数",
    "会话日期",
    "质检批次",
    "批次名称",
    "质检日期",
    "句数",
    "客服发言数",
    "来源",
]
FINDING_HEADER = [
    "会话ID",
    "客服",
    "轮次",
    "规则",
    "类别",
    "级别",
    "命中",
    "原文",
    "说明",
    "建议话术",
    "扣分",
    "申诉/豁免",
    "质检批次",
    "知识库中可能有答案",  # the article that answered the question (core/kb_answer.py)
]
AGENT_HEADER = [
    "客服",
    "会话数",
    "客服发言数",
    "平均分",
    "问题数",
    "每百句问题",
    "咨询工作标准度（5分，按平均分折算）",
]
WAIVED = "已豁免（申诉已采纳）"
TURN_TEXT_CHARS = 500  # of the flagged turn's text in a findings row


class ExportError(KbError, ValueError):
    """An export that cannot be made (bad scope or format)."""

    status = 400


@dataclass(frozen=True)
class Scope:
    """Which saved results: one run, or every run (each conversation once) narrowed
    to an agent and/or a period of run dates (since and until inclusive, YYYY-MM-DD)."""

    run_id: int | None = None
    agent: str | None = None
    since: str | None = None
    until: str | None = None

    @classmethod
    def of(cls, run_id=None, agent=None, since=None, until=None) -> Scope:
        """A checked scope (ExportError with a Chinese message if a date is bad)."""
        for name, value in (("since", since), ("until", until)):
            if value:
                try:
                    dt.date.fromisoformat(value)
                except (TypeError, ValueError):
                    raise ExportError(f"参数 {name} 应为日期，如 2026-11-01") from None
        if run_id is None and not agent and not since and not until:
            raise ExportError("请指定质检批次、客服或日期范围")
        return cls(run_id, agent or None, since or None, until or None)

    def query(self) -> dict:
        """The storage filter: run dates as ISO text, until exclusive (the next day)."""
        until = None
        if self.until:
            until = (dt.date.fromisoformat(self.until) + dt.timedelta(days=1)).isoformat()
        return {"run_id": self.run_id, "agent": self.agent, "since": self.since, "until": until}

    def filename(self, fmt: str, table: str = "") -> str:
        """An ASCII file name for the export."""
        parts = ["audit"]
        if self.run_id is not None:
            parts.append(f"run{self.run_id}")
        if self.agent:
            parts.append("agent")
        if self.since or self.until:
            parts.append(f"{self.since or ''}_{self.until or ''}")
        if fmt == "csv" and table:
            parts.append(table)
        return "-".join(parts) + f".{fmt}"


def _date(ts) -> str:
    if isinstance(ts, int | float):
        try:
            return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M")
        except (OverflowError, OSError, ValueError):
            return ""
    return ""


def _kb_answer(answer) -> str:
    """《title》 (id) of the article a finding links, "" for none."""
    if not isinstance(answer, dict) or not answer.get("id"):
        return ""
    return f"《{answer.get('title', '')}》（{answer['id']}）"


class AuditExport:
    """The rows of one export, read from the database a page at a time."""

    def __init__(self, database, scope: Scope, *, batch: int = BATCH):
        self.database = database
        self.scope = scope
        self.batch = batch

    def _pages(self, conversation: bool) -> Iterator[list[dict]]:
        after, where = -1, self.scope.query()
        while True:
            page = repo.export_items(
                self.database, where, after, self.batch, conversation=conversation
            )
            if not page:
                return
            yield page
            after = page[-1]["id"]

    def conversations(self) -> Iterator[list]:
        """会话: one row per checked conversation, in upload order."""
        for page in self._pages(conversation=True):
            for it in page:
                try:
                    started = json.loads(it["conversation"]).get("started_at")
                except (ValueError, AttributeError):
                    started = None
                yield [
                    it["conv_id"],
                    it["agent"] or UNKNOWN_AGENT,
                    it["score"],
                    it["nfindings"],
                    _date(started),
                    it["run_id"],
                    it["run_name"],
                    (it["run_at"] or "")[:10],
                    it["turns"],
                    it["agent_turns"],
                    it["source"],
                ]

    def findings(self) -> Iterator[list]:
        """问题: one row per finding, with its turn's text and appeal or waiver status."""
        for page in self._pages(conversation=True):
            status: dict[tuple[int, int], str] = {}
            for a in repo.appeals_of(self.database, [it["id"] for it in page]):
                status[(a["item_id"], a["finding"])] = a["status"]  # the newest wins
            for it in page:
                findings = json.loads(it["findings"] or "[]")
                if not findings:
                    continue
                turns = json.loads(it["conversation"]).get("turns") or []
                for n, f in enumerate(findings):
                    turn = f.get("turn")
                    inside = isinstance(turn, int) and 0 <= turn < len(turns)
                    text = (turns[turn].get("text") or "") if inside else ""
                    if f.get("waived"):
                        state = f.get("waiver_note") or WAIVED
                    elif (it["id"], n) in status:
                        state = "申诉" + APPEAL_LABELS.get(status[(it["id"], n)], "")
                    else:
                        state = ""
                    yield [
                        it["conv_id"],
                        it["agent"] or UNKNOWN_AGENT,
                        turn + 1 if inside else "整个会话",
                        f.get("rule", ""),
                        CATEGORY_NAMES.get(f.get("category"), f.get("category", "")),
                        LEVEL_NAMES.get(f.get("level"), f.get("level", "")),
                        f.get("match") or "",
                        text[:TURN_TEXT_CHARS],
                        f.get("message") or "",
                        f.get("suggestion") or "",
                        f.get("deduction", 0),
                        state,
                        it["run_id"],
                        _kb_answer(f.get("kb_answer")),
                    ]

    def agents(self) -> Iterator[list]:
        """客服: per agent, lowest mean score first."""
        for a in repo.export_agents(self.database, self.scope.query()):
            turns = a["agent_turns"]
            yield [
                a["agent"] or UNKNOWN_AGENT,
                a["conversations"],
                turns,
                a["mean_score"],
                a["findings"],
                round(100.0 * a["findings"] / turns, 1) if turns else 0.0,
                kpi_points(a["mean_score"]),
            ]

    def write_xlsx(self, output) -> None:
        """The three sheets to an XLSX file (a path or a binary file object)."""
        write_sheets(
            output,
            [
                ("会话", CONVERSATION_HEADER, self.conversations()),
                ("问题", FINDING_HEADER, self.findings()),
                ("客服", AGENT_HEADER, self.agents()),
            ],
        )

    def csv(self, table: str = "findings") -> Iterator[str]:
        """One table as CSV text (UTF-8 BOM first), in pieces."""
        if table not in TABLES:
            raise ExportError("参数 table 应为 findings、conversations 或 agents")
        header, rows = {
            "findings": (FINDING_HEADER, self.findings),
            "conversations": (CONVERSATION_HEADER, self.conversations),
            "agents": (AGENT_HEADER, self.agents),
        }[table]
        return csv_chunks(header, rows())
