"""Run a rule pack over conversations (or a draft reply) and collect findings.

A finding is a plain dict:
`{"turn", "category", "rule", "level", "span": [start, end], "match", "message",
"suggestion", "deduction"}` (plus `"script"` when the rule names one). `span`
is in code points of that turn's original text, and `text[start:end] == match`.
Conversation-level findings (no greeting / no closing / timing) point at the
relevant agent turn with an empty span where the missing wording belongs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .calls import channel_kind
from .checks import MAX_PER_RULE_TURN, ConvContext, Hit, NotCheckable
from .limits import CHECK_SECONDS
from .rules import LEVELS, Rule, RulePack, load_rules
from .scoring import score_conversation
from .transcripts import Conversation, Turn

_EXAMPLE_TURN = re.compile(
    r"^\s*(?:@(?P<ts>-?\d+(?:\.\d+)?)\s+)?(?P<role>[^:：]{1,8})[:：]\s?(?P<text>.*)$", re.S
)
_EXAMPLE_ROLES = {
    "客服": "agent",
    "agent": "agent",
    "客户": "customer",
    "顾客": "customer",
    "customer": "customer",
    "系统": "system",
    "system": "system",
}


@dataclass
class ConversationReport:
    """Findings, score and breakdown of one conversation."""

    id: str
    agent: str
    channel: str
    score: float
    findings: list[dict]
    not_checkable: list[dict]
    breakdown: dict
    turns: int
    agent_turns: int
    source: str = ""
    conversation: Conversation | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return {
            "id": self.id,
            "agent": self.agent,
            "channel": self.channel,
            "score": self.score,
            "findings": self.findings,
            "not_checkable": self.not_checkable,
            "breakdown": self.breakdown,
            "turns": self.turns,
            "agent_turns": self.agent_turns,
            "source": self.source,
        }


def example_conversation(example: str | list[str]) -> Conversation:
    """A rule example as a conversation: a string is one agent turn; a list holds
    lines `[@秒 ]角色: 内容` (角色 = 客服 / 客户 / 系统)."""
    if isinstance(example, str):
        return Conversation(id="example", turns=[Turn("agent", example)])
    turns = []
    for line in example:
        m = _EXAMPLE_TURN.match(line)
        role = _EXAMPLE_ROLES.get(m.group("role").strip().lower()) if m else None
        if role is None:
            raise ValueError(f"行 {line!r} 应为「客服: …」或「@秒 客户: …」")
        ts = float(m.group("ts")) if m.group("ts") is not None else None
        turns.append(Turn(role, m.group("text"), ts))
    return Conversation(id="example", turns=turns)


def run_rule(
    pack: RulePack, rule: Rule, conv: Conversation, ctx: ConvContext | None = None
) -> tuple[list[Hit], str | None]:
    """Hits of one rule on one conversation, and the not-checkable reason if any.
    Past the context's deadline the rule is skipped, or its hits so far are kept and
    the reason names the first turn left unchecked (`ctx.stopped_at` is then set)."""
    ctx = ctx or ConvContext(conv, segmenter=pack.segmenter)
    ctx.stopped_at = None
    if ctx.expired():
        ctx.stopped_at = 0
        return [], f"未检查：本会话的检查已超过时限（{ctx.seconds:g} 秒）"
    try:
        hits = pack.check_for(rule).run(ctx)
    except NotCheckable as exc:
        return [], str(exc)
    if ctx.stopped_at is not None:
        n = ctx.stopped_at + 1
        return hits, f"未检查完：超过时限（{ctx.seconds:g} 秒），第{n}句及之后未检查"
    return hits, None


# Where a draft reply stands in the chat → the edge check it gets (greeting for the
# first agent turn, closing for the last); a draft mid-chat gets neither.
EDGE_CHECKS = ("greeting", "closing")
REPLY_POSITIONS = {"opening": "greeting", "middle": None, "closing": "closing"}


class Checker:
    """Applies a rule pack; build once, reuse for many conversations."""

    def __init__(
        self,
        rules: RulePack | None = None,
        *,
        scripts: bool = True,
        seconds: float | None = CHECK_SECONDS,
    ) -> None:
        """`seconds`: CPU-time budget of one conversation (None: unlimited); rules not
        finished in it are listed under not_checkable with the turn they reached."""
        self.pack = rules if rules is not None else load_rules()
        self.seconds = seconds
        self.rules = self.pack.enabled()
        self._by_kind: dict[str, list[Rule]] = {}  # channel kind → the rules for it
        self.link_scripts = scripts
        self._links: dict[tuple[str, str], dict | None] = {}

    def _script_link(self, rule: Rule, match: str) -> dict | None:
        """The standard script that replaces this finding (id + rendered text), cached."""
        key = (rule.id, match)
        if key not in self._links:
            from scripts_lib.coachlink import default_library, suggestion_for

            link = None
            if rule.script:
                lib = default_library()
                if rule.script in lib:
                    from scripts_lib.render import render, to_plain

                    script = lib.get(rule.script)
                    link = {"script_id": script.id, "text": to_plain(render(script))}
            if link is None:
                link = suggestion_for(rule.category, match)
            self._links[key] = link
        return self._links[key]

    def _finding(self, rule: Rule, conv: Conversation, hit: Hit) -> dict:
        text = conv.turns[hit.turn].text
        if not hit.note:
            message = rule.message
        elif rule.check == "timing" or rule.check == "hold_silence":
            message = f"{rule.message}（实际用时{hit.note}）"
        else:
            message = f"{rule.message}（{hit.note}）"
        f = {
            "turn": hit.turn,
            "category": rule.category,
            "rule": rule.id,
            "level": rule.level,
            "span": [hit.start, hit.end],
            "match": text[hit.start : hit.end],
            "message": message,
            "suggestion": rule.suggestion,
            "deduction": 0,
        }
        if rule.norm:
            f["norm"] = rule.norm
        if self.link_scripts:
            link = self._script_link(rule, f["match"])
            if link:
                f["script"] = link
        return f

    def _run(self, conv: Conversation, ctx: ConvContext) -> tuple[list[dict], list[dict]]:
        findings: list[dict] = []
        not_checkable: list[dict] = []
        found = []
        kind = channel_kind(conv.channel)
        rules = self._by_kind.get(kind)
        if rules is None:
            rules = self._by_kind[kind] = [r for r in self.rules if r.applies_to(kind)]
        for rule in rules:  # the checks first: the time limit is theirs alone
            hits, reason = run_rule(self.pack, rule, conv, ctx)
            if reason:
                not_checkable.append({"rule": rule.id, "category": rule.category, "reason": reason})
            found.append((rule, hits))
        for rule, hits in found:
            findings.extend(self._finding(rule, conv, h) for h in _capped(hits))
        findings.sort(key=lambda f: (f["turn"], f["span"][0], LEVELS.index(f["level"])))
        return findings, not_checkable

    def check_conversation(self, conv: Conversation) -> ConversationReport:
        """Findings, score and breakdown for one conversation."""
        findings, not_checkable = self._run(
            conv, ConvContext(conv, self.seconds, self.pack.segmenter)
        )
        score, breakdown = score_conversation(findings, self.pack)
        return ConversationReport(
            id=conv.id,
            agent=conv.agent,
            channel=conv.channel,
            score=score,
            findings=findings,
            not_checkable=not_checkable,
            breakdown=breakdown,
            turns=len(conv.turns),
            agent_turns=sum(1 for t in conv.turns if t.role == "agent"),
            source=conv.source,
            conversation=conv,
        )

    def check_reply(
        self,
        text: str,
        context: list | None = None,
        position: str = "middle",
        unfinished: list | None = None,
    ) -> list[dict]:
        """Findings for a draft agent reply, given the conversation so far (optional).

        `context` is a list of Turn objects or dicts `{"role", "text", "ts"?}`. Only
        findings on the draft itself are returned; their `turn` is the draft's index
        after the context. `position` says where the draft stands in the chat:
        "middle" (default: no greeting or closing check), "opening" (greeting rules
        too, when it is the first agent turn) or "closing" (closing rules too).
        Rules cut short by the time limit are appended to `unfinished` (if given) as
        {rule, category, reason}.
        """
        if position not in REPLY_POSITIONS:
            raise ValueError("position 应为 opening、middle 或 closing")
        edge = REPLY_POSITIONS[position]
        turns = [_as_turn(t) for t in context or []]
        turns.append(Turn("agent", text))
        conv = Conversation(id="draft", turns=turns)
        ctx = ConvContext(conv, self.seconds, self.pack.segmenter)
        ctx.target = len(turns) - 1
        found = []
        timed = any(t.ts is not None for t in turns)
        for rule in self.rules:
            if rule.check in EDGE_CHECKS and rule.check != edge:
                continue
            if not rule.applies_to("chat"):
                continue  # a draft reply is a chat message
            if rule.check == "timing" and not timed:
                continue  # nothing to time: never "unfinished" either
            hits, reason = run_rule(self.pack, rule, conv, ctx)
            if reason and unfinished is not None and ctx.stopped_at is not None:
                unfinished.append({"rule": rule.id, "category": rule.category, "reason": reason})
            found.append((rule, [h for h in hits if h.turn == ctx.target]))
        findings = []
        for rule, mine in found:
            findings.extend(self._finding(rule, conv, h) for h in _capped(mine))
        score_conversation(findings, self.pack)
        return findings


def _capped(hits: list) -> list:
    """At most MAX_PER_RULE_TURN hits per turn (one rule's hits, in text order): a
    turn of 可能 × 50,000 is three findings, not 50,000 (the score was capped already;
    the report, the pages and the database were not)."""
    out, seen = [], {}
    for h in hits:
        n = seen.get(h.turn, 0)
        if n < MAX_PER_RULE_TURN:
            seen[h.turn] = n + 1
            out.append(h)
    return out


def _as_turn(t) -> Turn:
    if isinstance(t, Turn):
        return t
    if isinstance(t, dict):
        from .importers import parse_ts, role_of

        role = role_of(t.get("role")) or "customer"
        return Turn(
            role, str(t.get("text") or ""), parse_ts(t.get("ts")), str(t.get("speaker") or "")
        )
    raise TypeError("context 中的每一项应为 Turn 或 {role, text} 字典")
