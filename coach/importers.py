"""Parsers for the transcript formats: JSONL, CSV with a header, and chat-log text.

JSONL: one conversation per line, `{"id", "agent"?, "channel"?, "started_at"?,
"turns": [{"role", "text", "ts"?, "speaker"?}]}`; other fields are ignored. `ts`
is ISO 8601 (naive times are read as UTC) or epoch seconds (milliseconds when
above 1e11).

CSV: one message per row, grouped into conversations by the conversation column
(in order of first appearance). Columns are found by header name; the mapping is
`DEFAULT_COLUMNS` (field -> accepted header names, case-insensitive) and a caller
may pass `columns={"text": ["正文"], ...}` to extend it. Fields: conversation,
time, role, text (required), agent, speaker, channel. A role cell may hold a role
word (客服 / 客户 / agent / customer / 1 / 0 …) or a sender name; names are
resolved like chat-log names, or by equality with the row's agent cell.

Chat log: lines `2016-02-02 10:00:01 客服小王: 您好…` (one-line form) or a header
line `2016-02-02 10:00:01 小王(12345)` followed by the message lines (two-line
form, message lines until the next header). A sender is an agent when its name
starts with one of `agent_prefixes` (default 客服) or is in `agent_names`; 系统 is
system; anyone else is the customer. Conversations are split by a separator line
holding 会话 (e.g. `===== 会话 A123 =====` or `会话ID: A123`, the id is kept) or by
two or more consecutive blank lines (single blank lines are normal in two-line
exports).
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime

from .transcripts import Conversation, ImportIssue, Turn, over_limit

ROLE_WORDS = {
    "agent": "agent",
    "客服": "agent",
    "坐席": "agent",
    "waiter": "agent",
    "staff": "agent",
    "service": "agent",
    "1": "agent",
    "customer": "customer",
    "客户": "customer",
    "顾客": "customer",
    "用户": "customer",
    "买家": "customer",
    "访客": "customer",
    "user": "customer",
    "visitor": "customer",
    "buyer": "customer",
    "0": "customer",
    "system": "system",
    "系统": "system",
    "系统消息": "system",
    "bot": "system",
}
DEFAULT_COLUMNS = {
    "conversation": [
        "会话id",
        "会话编号",
        "会话",
        "conversation_id",
        "conversation",
        "session_id",
        "id",
    ],
    "time": ["时间", "发送时间", "消息时间", "time", "ts", "timestamp", "datetime"],
    "role": ["发送方", "角色", "发送者", "role", "sender", "from"],
    "text": ["内容", "消息", "消息内容", "text", "content", "message"],
    "agent": ["客服", "客服名", "客服昵称", "agent"],
    "speaker": ["发送人", "昵称", "speaker", "name"],
    "channel": ["渠道", "channel"],
}
DEFAULT_AGENT_PREFIXES = ("客服",)
MAX_ID_CHARS = 200  # conversation and agent ids
MAX_REASON_TEXT = 40

_DT = r"(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)"
_ONE_LINE = re.compile(_DT + r"\s+([^:：\s][^:：]{0,39}?)\s*[:：]\s?(.*)$")
_HEADER = re.compile(_DT + r"\s+(.{1,60}?)\s*$")
_LOOSE_DT = re.compile(
    r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?)?"
    r"(\s*(?:Z|[+-]\d{2}:?\d{2}))?$"
)
_SEPARATOR = re.compile(
    r"^[\s=\-#*_~]*会话(?:\s*(?:id|ID|编号))?\s*[:：#]?\s*([^\s=\-#*]*)[\s=\-#*_~]*$"
)


def parse_ts(value: object) -> float | None:
    """Epoch seconds from ISO 8601 text or a number; raises ValueError if neither."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("时间戳不能是布尔值")
    if isinstance(value, int | float):
        num = float(value)
    else:
        text = str(value).strip()
        try:
            num = float(text)
        except ValueError:
            m = _LOOSE_DT.match(text)
            if m:  # 2016/2/2 10:00 and friends: pad into ISO form
                y, mo, d, h, mi, sec, rest = m.groups()
                text = f"{y}-{int(mo):02d}-{int(d):02d}T{int(h or 0):02d}:{mi or '00'}"
                text += f":{sec or '00'}{(rest or '').strip()}"
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            return dt.timestamp()
    if num != num or num in (float("inf"), float("-inf")):
        raise ValueError("时间戳不是有限数")
    return num / 1000.0 if abs(num) > 1e11 else num


def role_of(value: object) -> str | None:
    """Map a role cell (客服 / customer / 1 …) to agent/customer/system."""
    if value is None:
        return None
    hit = ROLE_WORDS.get(value) if isinstance(value, str) else None
    return hit or ROLE_WORDS.get(str(value).strip().lower())


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ufffd]+")


def _short(text: str) -> str:
    """A piece of the offending input for an error message: one line, no control
    characters (a binary file must not garble the terminal)."""
    text = _CONTROL.sub("?", text.replace("\n", " "))
    return text if len(text) <= MAX_REASON_TEXT else text[:MAX_REASON_TEXT] + "…"


# -- JSONL -------------------------------------------------------------------
# one decoder for every line: json.loads(line, strict=False) builds a decoder and its
# scanner per call, which was half the cost of a file of short (or broken) lines
_LINE_DECODER = json.JSONDecoder(strict=False)


def parse_jsonl(text: str, path: str) -> tuple[list[Conversation], list[ImportIssue]]:
    """One conversation per line; a broken line is an issue, the rest loads.

    A file holding one JSON array of conversations (or one pretty-printed object)
    is accepted too; its issues then name the record number instead of a line."""
    convs: list[Conversation] = []
    issues: list[ImportIssue] = []
    head = text.lstrip("\ufeff \t\r\n")[:1]
    if head == "[" or (head == "{" and "\n" in text.strip() and not text.lstrip().startswith('{"')):
        try:
            data = json.loads(text.lstrip("\ufeff"), strict=False)
        except (json.JSONDecodeError, RecursionError):
            data = None
        if data is not None:
            records = data if isinstance(data, list) else [data]
            for n, record in enumerate(records, 1):
                try:
                    convs.append(conversation_from_dict(record, f"{path}#{n}", n))
                except ValueError as exc:
                    issues.append(ImportIssue(path, n, f"第{n}条记录: {exc}"))
            return convs, issues
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip().lstrip("\ufeff")
        if not line:
            continue
        try:
            record = _LINE_DECODER.decode(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            reason = (
                f"JSON 格式错误（第{exc.colno}列）" if hasattr(exc, "colno") else "JSON 嵌套过深"
            )
            issues.append(ImportIssue(path, lineno, reason))
            continue
        try:
            convs.append(conversation_from_dict(record, f"{path}:{lineno}", lineno))
        except ValueError as exc:
            issues.append(ImportIssue(path, lineno, str(exc)))
    return convs, issues


def conversation_from_dict(record: object, source: str = "", lineno: int = 0) -> Conversation:
    """Build a Conversation from a JSON-like dict; ValueError (Chinese) if invalid."""
    if not isinstance(record, dict):
        raise ValueError("记录应为 JSON 对象")
    turns_in = record.get("turns")
    if not isinstance(turns_in, list):
        raise ValueError("缺少 turns 列表")
    turns = []
    for n, t in enumerate(turns_in):
        if not isinstance(t, dict):
            raise ValueError(f"第{n + 1}句（turns[{n}]）不是对象")
        role = role_of(t.get("role"))
        if role is None:
            raise ValueError(f"第{n + 1}句（turns[{n}]）角色未知: {_short(str(t.get('role')))}")
        text = t.get("text")
        if not isinstance(text, str):
            if text is not None:
                raise ValueError(f"第{n + 1}句（turns[{n}]）text 应为字符串")
            text = ""
        ts = None
        if "ts" in t:
            try:
                ts = parse_ts(t["ts"])
            except (ValueError, OverflowError, TypeError):
                raise ValueError(
                    f"第{n + 1}句（turns[{n}]）时间无法识别: {_short(str(t['ts']))}"
                ) from None
        speaker = t.get("speaker")
        try:
            end = parse_ts(t["end"]) if "end" in t else None
        except (ValueError, OverflowError, TypeError):
            raise ValueError(f"第{n + 1}句（turns[{n}]）结束时间无法识别") from None
        turns.append(Turn(role, text, ts, str(speaker) if speaker else "", end))
    conv_id = record.get("id")
    if conv_id is None or conv_id == "":
        conv_id = f"line-{lineno}" if lineno else "conversation"
    try:
        started = parse_ts(record.get("started_at"))
    except (ValueError, OverflowError, TypeError):
        raise ValueError("started_at 无法识别") from None
    if started is None:
        started = next((t.ts for t in turns if t.ts is not None), None)
    agent = record.get("agent") or next(
        (agent_id(t.speaker) for t in turns if t.role == "agent" and t.speaker), ""
    )
    if not isinstance(agent, str | int):
        raise ValueError("agent 应为字符串")
    if len(str(agent)) > MAX_ID_CHARS or len(str(conv_id)) > MAX_ID_CHARS:
        raise ValueError(f"id 或 agent 过长（最多 {MAX_ID_CHARS} 个字符）")
    if not turns:
        raise ValueError("会话没有任何消息（turns 为空）")
    conv = Conversation(
        id=str(conv_id),
        turns=turns,
        agent=str(agent),
        channel=str(record.get("channel") or ""),
        started_at=started,
        source=source,
    )
    reason = over_limit(conv)
    if reason:
        raise ValueError(reason)
    return conv


# -- CSV ---------------------------------------------------------------------
def looks_like_csv_header(line: str) -> bool:
    """Does this first line name a text column and at least one other known column?"""
    try:
        cells = next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return False
    if len(cells) < 2:
        return False
    found = _map_columns(cells, None)
    return "text" in found and len(found) >= 2


def _map_columns(header: list[str], extra: dict | None) -> dict[str, int]:
    names = {k: [n.lower() for n in v] for k, v in DEFAULT_COLUMNS.items()}
    for key, more in (extra or {}).items():
        names.setdefault(key, [])
        names[key] = [n.lower() for n in more] + names[key]
    found: dict[str, int] = {}
    cells = [c.strip().lstrip("\ufeff").lower() for c in header]
    for key, accepted in names.items():
        for name in accepted:
            if name in cells and cells.index(name) not in found.values():
                found[key] = cells.index(name)
                break
    return found


def parse_csv(
    text: str, path: str, columns: dict | None = None
) -> tuple[list[Conversation], list[ImportIssue]]:
    """CSV rows (one message each) grouped into conversations by the id column."""
    issues: list[ImportIssue] = []
    reader = csv.reader(io.StringIO(text.replace("\x00", "")))
    try:
        header = next(reader)
    except StopIteration:
        return [], []
    except csv.Error as exc:
        return [], [ImportIssue(path, 1, f"CSV 表头无法解析: {exc}")]
    cols = _map_columns(header, columns)
    if "text" not in cols:
        return [], [ImportIssue(path, 1, "CSV 表头中找不到内容列（内容/消息/text/content）")]
    convs: dict[str, Conversation] = {}
    width = len(header)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            issues.append(ImportIssue(path, reader.line_num, f"CSV 行无法解析: {exc}"))
            continue
        lineno = reader.line_num
        if not any(c.strip() for c in row):
            continue
        if len(row) != width:
            issues.append(ImportIssue(path, lineno, f"列数为{len(row)}，表头为{width}列"))
            continue

        def cell(key: str, row=row) -> str:
            return row[cols[key]].strip() if key in cols else ""

        conv_id = cell("conversation") or "csv"
        agent = cell("agent")
        sender = cell("role")
        role = role_of(sender)
        speaker = cell("speaker")
        if role is None:
            if not sender:
                issues.append(ImportIssue(path, lineno, "缺少发送方"))
                continue
            speaker = speaker or sender
            role = "agent" if agent and sender == agent else _role_of_name(sender, None, None)
        try:
            ts = parse_ts(cell("time"))
        except (ValueError, OverflowError):
            issues.append(ImportIssue(path, lineno, f"时间无法识别: {_short(cell('time'))}"))
            continue
        conv = convs.get(conv_id)
        if conv is None:
            conv = convs[conv_id] = Conversation(
                id=conv_id, channel=cell("channel"), source=f"{path}:{lineno}"
            )
        if agent and not conv.agent:
            conv.agent = agent
        if role == "agent" and not conv.agent and speaker:
            conv.agent = agent_id(speaker)
        if conv.started_at is None and ts is not None:
            conv.started_at = ts
        conv.turns.append(Turn(role, row[cols["text"]], ts, speaker))
    return list(convs.values()), issues


# -- chat log ----------------------------------------------------------------
def agent_id(speaker: str, prefixes=None) -> str:
    """The agent's id in a speaker name: 客服wang / 客服-小王 → wang / 小王, so it can
    equal the agent's user name (我的质检, appeals); the name alone if nothing is left."""
    name = speaker.strip()
    for prefix in prefixes or DEFAULT_AGENT_PREFIXES:
        if name.startswith(prefix):
            rest = name[len(prefix) :].lstrip(" -_:：·")
            return rest or name
    return name


def _role_of_name(name: str, prefixes, names) -> str:
    name = name.strip()
    if names and name in names:
        return "agent"
    if name in ("系统", "系统消息", "system"):
        return "system"
    for prefix in prefixes or DEFAULT_AGENT_PREFIXES:
        if name.startswith(prefix):
            return "agent"
    return "customer"


def parse_chatlog(
    text: str,
    path: str,
    agent_prefixes: list[str] | tuple[str, ...] | None = None,
    agent_names: list[str] | None = None,
) -> tuple[list[Conversation], list[ImportIssue]]:
    """Chat-export text (one-line or two-line form) split into conversations."""
    prefixes = tuple(agent_prefixes or DEFAULT_AGENT_PREFIXES)
    names = set(agent_names or ())
    convs: list[Conversation] = []
    issues: list[ImportIssue] = []
    current: Conversation | None = None
    open_turn: Turn | None = None  # a turn still collecting message lines
    more: dict[int, tuple[Turn, list[str]]] = {}  # message lines of each turn
    blank_run = 0
    next_id: str | None = None

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
            if blank_run >= 2:
                current, open_turn = None, None
            continue
        blank_run = 0
        sep = _SEPARATOR.match(line)
        if sep:
            current, open_turn = None, None
            next_id = sep.group(1) or None
            continue
        m = _ONE_LINE.match(line)
        header = None if m else _HEADER.match(line)
        if m or header:
            stamp, name = (m or header).group(1), (m or header).group(2).strip()
            try:
                ts = parse_ts(stamp)
            except ValueError:
                issues.append(ImportIssue(path, lineno, f"时间无法识别: {_short(stamp)}"))
                open_turn = None
                continue
            speaker = re.sub(r"\s*[(（<【][^()（）<>【】]*[)）>】]\s*$", "", name) or name
            role = _role_of_name(speaker, prefixes, names)
            if current is None:
                current = start(lineno)
            turn = Turn(role, m.group(3) if m else "", ts, speaker)
            current.turns.append(turn)
            if role == "agent" and not current.agent:
                current.agent = agent_id(speaker, prefixes)
            if current.started_at is None:
                current.started_at = ts
            open_turn = turn
            continue
        if open_turn is None:
            issues.append(
                ImportIssue(path, lineno, f"无法识别的行（缺少时间和发送人）: {_short(line)}")
            )
            continue
        # message lines are joined once at the end: appending to the text per line
        # copied the whole turn each time (quadratic in a long message)
        more.setdefault(id(open_turn), (open_turn, []))[1].append(line)
    for turn, lines in more.values():
        turn.text = "\n".join([turn.text, *lines] if turn.text else lines)
    return [c for c in convs if c.turns], issues
