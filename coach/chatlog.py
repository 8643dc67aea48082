"""Chat-log text: WeChat exports (MemoTrace TXT and the like) and QQ 消息管理器 text.

Lines `2016-02-02 10:00:01 客服小王: 您好…` (one-line form) or a header line
`2024-03-01 10:00:20 小王` / `2019-09-23 8:43:38 PM 名字(12345)` followed by the
message lines (two-line form, message lines until the next header). Times may be
12-hour in either locale (`下午 8:43:38`, `8:43:38 PM`). The chat-window copy puts
the name first: `名字 9/23/2019 8:43:38 PM` (or `名字 2019/9/23 20:43:38`).

Who is an agent is the `AgentTest`'s answer for the sender's name (or its QQ
number / e-mail in brackets); 系统 is system; anyone else is the customer.

Plain chat logs: conversations are split by a separator line holding 会话 (e.g.
`===== 会话 A123 =====` or `会话ID: A123`, the id is kept) or by two or more
consecutive blank lines. QQ 消息管理器 exports (recognised by their header
`消息记录（此消息记录为文本格式…）`, `====`, `消息分组:`, `消息对象:`; the English-locale
export's `Message History(…)` / `Message Record(…)`, `Message Group:`, `Message Object:`
alike) are split by `消息对象:` / `Message Object:` (its value is the conversation id); there blank lines belong to the
message (only the blank lines before the next header are dropped), headers must
carry the sender's number or e-mail in brackets, and system messages
(`系统消息(10000)`) are left out.

Every pattern is anchored and linear; names are at most 60 characters.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from .agents import AgentTest, agent_id
from .importers import _short
from .transcripts import Conversation, ImportIssue, Turn

_AMPM = r"(上午|下午|凌晨|早上|中午|晚上|AM|PM|am|pm)"
_STAMP = re.compile(
    r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})[ T]\s*(?:" + _AMPM + r"\s*)?"
    r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:\s*" + _AMPM + r"(?=\s|$))?"
)
_NAME_FIRST = re.compile(
    r"^(\S.{0,59}?)\s+(?:(\d{1,2})/(\d{1,2})/(\d{4})|(\d{4})[-/](\d{1,2})[-/](\d{1,2}))"
    r"\s+(?:" + _AMPM + r"\s*)?(\d{1,2}):(\d{2}):(\d{2})(?:\s*" + _AMPM + r")?$"
)
_SEPARATOR = re.compile(
    r"^[\s=\-#*_~]*会话(?:\s*(?:id|ID|编号))?\s*[:：#]?\s*([^\s=\-#*]*)[\s=\-#*_~]*$"
)
# the English-locale export writes the same lines in English
_QQ_OBJECT = re.compile(r"^(?:消息对象|Message Object)\s*[:：]\s*(.*)$", re.IGNORECASE)
_QQ_GROUP = re.compile(r"^(?:消息分组|Message Group)\s*[:：]", re.IGNORECASE)
_QQ_TITLE = re.compile(r"^(?:消息记录|Message (?:History|Records?))\s*(?:[（(]|$)", re.IGNORECASE)
_QQ_RULE = re.compile(r"^={20,}$")
_BRACKETED = re.compile(r"^(.*?)\s*[(（<]([^()（）<>]{1,60})[)）>]$")
_BADGE = re.compile(r"^【[^】]{0,20}】")
QQ_SYSTEM_IDS = ("10000",)
MAX_NAME = 60
PM = ("下午", "晚上", "PM", "pm")
AM = ("上午", "凌晨", "早上", "AM", "am")


def _epoch(y, mo, d, h, mi, s, marker) -> float:
    """Epoch seconds of a (naive, read as UTC) local time; 12-hour markers applied."""
    h = int(h)
    if marker in PM and h < 12:
        h += 12
    elif marker in AM and h == 12:
        h = 0
    elif marker == "中午" and h < 11:
        h += 12
    return datetime(int(y), int(mo), int(d), h, int(mi), int(s or 0), tzinfo=UTC).timestamp()


def _header(line: str) -> tuple[float, str, str | None] | None:
    """(time, name part, one-line text or None) of a header line; None if not one.
    Raises ValueError for a header whose date or time does not exist."""
    m = _STAMP.match(line)
    if m:
        y, mo, d, am1, h, mi, s, am2 = m.groups()
        rest = line[m.end() :]
        if rest[:1] not in (" ", "\t", "\u3000"):
            return None
        rest = rest.strip()
        if not rest:
            return None
        colon = min((i for i in (rest.find(":"), rest.find("：")) if i >= 0), default=-1)
        if 1 <= colon <= 40:
            return (
                _epoch(y, mo, d, h, mi, s, am1 or am2),
                rest[:colon].strip(),
                rest[colon + 1 :].removeprefix(" "),
            )
        if len(rest) > MAX_NAME:
            return None
        return _epoch(y, mo, d, h, mi, s, am1 or am2), rest, None
    if len(line) > MAX_NAME + 40 or not any(c.isdigit() for c in line[-8:]):
        return None
    m = _NAME_FIRST.match(line)
    if not m:
        return None
    name, mo, d, y, y2, mo2, d2, am1, h, mi, s, am2 = m.groups()
    if y is None:
        y, mo, d = y2, mo2, d2
    return _epoch(y, mo, d, h, mi, s, am1 or am2), name.strip(), None


def is_qq_export(text: str) -> bool:
    """Does the text start like a QQ 消息管理器 export (its title line, or a rule of =
    signs followed by 消息分组 / 消息对象)?"""
    lines = [line.strip().lstrip("\ufeff") for line in text[:5000].splitlines()]
    lines = [line for line in lines if line][:12]
    if lines and _QQ_TITLE.match(lines[0]):
        return True
    return any(
        _QQ_RULE.match(a) and (_QQ_GROUP.match(b) or _QQ_OBJECT.match(b))
        for a, b in zip(lines, lines[1:], strict=False)
    )


def parse_chatlog(
    text: str,
    path: str,
    agents: AgentTest | None = None,
    qq: bool | None = None,
) -> tuple[list[Conversation], list[ImportIssue]]:
    """Chat-export text (one-line or two-line form) split into conversations."""
    agents = agents or AgentTest()
    qq = is_qq_export(text) if qq is None else qq
    convs: list[Conversation] = []
    issues: list[ImportIssue] = []
    current: Conversation | None = None
    open_turn: Turn | None = None  # a turn still collecting message lines
    skipping = False  # the message lines of a skipped (system) message
    more: dict[int, tuple[Turn, list[str]]] = {}  # message lines of each turn
    blank_run = 0
    next_id: str | None = None
    after_rule = False  # QQ: the previous non-blank line was a rule of = signs

    def start(lineno: int) -> Conversation:
        nonlocal next_id
        conv = Conversation(id=next_id or f"{path}#{len(convs) + 1}", source=f"{path}:{lineno}")
        next_id = None
        convs.append(conv)
        return conv

    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.replace("\x00", "").rstrip().lstrip("\ufeff")
        if not line.strip():
            blank_run += 1
            if qq:
                if open_turn is not None:
                    more.setdefault(id(open_turn), (open_turn, []))[1].append("")
            elif blank_run >= 2:
                current, open_turn = None, None
            continue
        blank_run = 0
        if qq:
            # header lines only where the export puts them: a 消息分组 / 消息对象 line
            # right after a rule of = signs, 消息记录 before the first message; the same
            # words inside a message stay message text
            ruled, after_rule = after_rule, False
            if _QQ_RULE.match(line.strip()):
                after_rule = True
                continue
            obj = _QQ_OBJECT.match(line) if ruled else None
            if obj:
                current, open_turn, skipping = None, None, False
                next_id = obj.group(1).strip()[:200] or None
                continue
            if (ruled and _QQ_GROUP.match(line)) or (
                not convs and current is None and _QQ_TITLE.match(line.strip())
            ):
                continue
        else:
            sep = _SEPARATOR.match(line)
            if sep:
                current, open_turn = None, None
                next_id = sep.group(1) or None
                continue
        try:
            head = _header(line)
        except (ValueError, OverflowError):
            issues.append(ImportIssue(path, lineno, f"时间无法识别: {_short(line)}"))
            open_turn, skipping = None, False
            continue
        number = ""
        if head is not None:
            ts, name, one_line = head
            name = _BADGE.sub("", name).strip() or name
            bracket = _BRACKETED.match(name)
            if bracket:
                name, number = bracket.group(1).strip() or bracket.group(2), bracket.group(2)
            elif qq and one_line is None:
                head = None  # a QQ header always names the number or e-mail
        if head is None:
            if skipping:
                continue
            if open_turn is None:
                issues.append(
                    ImportIssue(path, lineno, f"无法识别的行（缺少时间和发送人）: {_short(line)}")
                )
                continue
            # message lines are joined once at the end: appending to the text per line
            # copied the whole turn each time (quadratic in a long message)
            more.setdefault(id(open_turn), (open_turn, []))[1].append(line)
            continue
        role = agents.role(name, number) if number else agents.role(name)
        if qq and (number in QQ_SYSTEM_IDS or role == "system"):
            open_turn, skipping = None, True
            continue
        skipping = False
        if current is None:
            current = start(lineno)
        turn = Turn(role, one_line or "", ts, name)
        current.turns.append(turn)
        if role == "agent" and not current.agent:
            current.agent = agent_id(name, agents.prefixes)
        if current.started_at is None:
            current.started_at = ts
        open_turn = turn
    for turn, lines in more.values():
        while lines and not lines[-1]:
            lines.pop()  # the blank lines between two messages
        first = 0
        while not turn.text and first < len(lines) and not lines[first]:
            first += 1
        lines = lines[first:]
        if lines:
            turn.text = "\n".join([turn.text, *lines] if turn.text else lines)
    return [c for c in convs if c.turns], issues
