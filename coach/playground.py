"""The rules playground: run a draft rule pack (not saved) and the saved one on a
pasted conversation and show both side by side, so a rule change is tried on a real
chat before it is saved.

The paste is read like an upload (JSONL, chat-log text, CSV …: coach/transcripts.py);
when no format reads it, lines such as `客服: 您好` / `顾客: 在吗`, the form of a rule's
examples, are one conversation.  Each pack checks each conversation within the
checker's own time limit (rules not finished are listed as not checked).
"""

from __future__ import annotations

import time

from kb.errors import KbError

from .checker import Checker, ConversationReport, example_conversation
from .transcripts import Conversation, load_text, no_agent_reason, over_limit

MAX_PASTE_CHARS = 100_000
MAX_CONVERSATIONS = 10
SOURCE = "粘贴的会话"
FORMATS_HINT = "可粘贴 JSONL、聊天记录文本（时间 发送人: 内容），或每行一句「客服: …」「顾客: …」"


class PlaygroundError(KbError):
    """Pasted text the playground cannot check (the message says why, in Chinese)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _simple(text: str) -> Conversation | None:
    """`客服: …` / `顾客: …` lines (a rule example's form) as one conversation, or None."""
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        conv = example_conversation(lines)
    except ValueError:
        return None
    conv.id, conv.source = "粘贴", SOURCE
    return conv


def parse_pasted(text: str, load: dict | None = None) -> tuple[list[Conversation], list[str]]:
    """The conversations of the pasted text (at most MAX_CONVERSATIONS) and notes
    about what was left out; PlaygroundError when nothing can be checked. `load`: the
    loader's options (the team's agent names and aliases, as for an upload)."""
    if not text or not text.strip():
        raise PlaygroundError("请粘贴要试运行的会话")
    if len(text) > MAX_PASTE_CHARS:
        raise PlaygroundError(f"粘贴的会话过长（最多 {MAX_PASTE_CHARS:,} 个字）", 413)
    convs, issues = load_text(text, SOURCE, **(load or {}))
    notes = [f"第{i.line}行：{i.reason}" if i.line else i.reason for i in issues]
    if not convs:
        simple = _simple(text)
        if simple is not None:
            reason = no_agent_reason(simple) or over_limit(simple)
            if reason:
                raise PlaygroundError(reason)
            return [simple], []
        first = "；".join(notes[:3]) or "没有找到会话"
        raise PlaygroundError(f"无法读取粘贴的会话：{first}。{FORMATS_HINT}")
    if len(convs) > MAX_CONVERSATIONS:
        notes.append(f"只试运行前 {MAX_CONVERSATIONS} 个会话（共 {len(convs)} 个）")
        convs = convs[:MAX_CONVERSATIONS]
    return convs, notes[:20]


def _key(f: dict) -> tuple:
    return (f["rule"], f["turn"], tuple(f["span"]))


def _side(report: ConversationReport, other: set[tuple], mark: str) -> dict:
    findings = [{**f, "change": mark if _key(f) not in other else ""} for f in report.findings]
    return {
        "score": report.score,
        "findings": findings,
        "not_checkable": report.not_checkable,
    }


def compare(
    saved: Checker, draft: Checker, convs: list[Conversation], budget: float | None = None
) -> tuple[list[dict], int]:
    """Each conversation checked by both packs: its turns, each side's score,
    findings (marked "removed" on the saved side when the draft no longer finds them,
    "added" on the draft side when it is new) and rules not checked; and how many
    conversations were left untried because `budget` seconds had passed (the first
    one is always tried; each pack keeps its own per-conversation time limit)."""
    out: list[dict] = []
    started = time.monotonic()
    for n, conv in enumerate(convs):
        if n and budget is not None and time.monotonic() - started > budget:
            return out, len(convs) - n
        before = saved.check_conversation(conv)
        after = draft.check_conversation(conv)
        keys_before = {_key(f) for f in before.findings}
        keys_after = {_key(f) for f in after.findings}
        out.append(
            {
                "id": conv.id,
                "agent": conv.agent,
                "turns": [
                    {"n": n, "role": t.role, "speaker": t.speaker, "text": t.text}
                    for n, t in enumerate(conv.turns)
                ],
                "saved": _side(before, keys_after, "removed"),
                "draft": _side(after, keys_before, "added"),
                "added": len(keys_after - keys_before),
                "removed": len(keys_before - keys_after),
            }
        )
    return out, 0
