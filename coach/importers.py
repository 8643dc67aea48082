"""Parsers for the transcript formats: JSONL, CSV with a header, and chat-log text.

JSONL: one conversation per line, `{"id", "agent"?, "channel"?, "started_at"?,
"turns": [{"role", "text", "ts"?, "speaker"?}]}`; other fields are ignored. `ts`
is ISO 8601 (naive times are read as UTC) or epoch seconds (milliseconds when
above 1e11).

CSV (and XLSX, read as the same table): one message per row, grouped into
conversations by the conversation column (in order of first appearance). Columns
are found by header name; the mapping is `DEFAULT_COLUMNS` (field -> accepted
header names, case-insensitive) and a caller may pass `columns={"text": ["正文"],
...}` to extend it. Fields: conversation, time, role, text (required), agent,
speaker, channel, type. A role cell may hold a role word (客服 / 客户 / agent /
customer / 1 / 0 …; MemoTrace's `IsSender` 1 / 0) or a sender name; without a role
column the speaker column (MemoTrace's `发送人`) is the sender. Names are resolved
by the `AgentTest` (coach/agents.py), or by equality with the row's agent cell.
Rows whose type is a system message (`系统消息`, WeChat type 10000) are skipped.

Chat-log text (WeChat / MemoTrace TXT, QQ 消息管理器) is read by coach/chatlog.py.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime

from .agents import DEFAULT_AGENT_PREFIXES, AgentTest, agent_id  # noqa: F401 - old names
from .transcripts import Conversation, ImportIssue, Turn, no_agent_reason, over_limit

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
    "time": [
        "时间",
        "发送时间",
        "消息时间",
        "time",
        "ts",
        "timestamp",
        "datetime",
        "strtime",  # MemoTrace (old header): text time, before the epoch CreateTime
        "createtime",
    ],
    # IsSender (MemoTrace, old header): 1 = the exporting account, the agent
    "role": ["issender", "发送方", "角色", "发送者", "role", "from", "sender"],
    "text": ["内容", "消息", "消息内容", "text", "content", "message", "strcontent"],
    "agent": ["客服", "客服名", "客服昵称", "agent"],
    "speaker": ["发送人", "昵称", "speaker", "name", "nickname", "sender", "remark"],
    "channel": ["渠道", "channel"],
    "type": ["类型", "消息类型", "type", "msgtype"],
}
SYSTEM_TYPES = {"10000", "系统消息", "系统", "system"}
MAX_ID_CHARS = 200  # conversation and agent ids
MAX_REASON_TEXT = 40

_LOOSE_DT = re.compile(
    r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?)?"
    r"(\s*(?:Z|[+-]\d{2}:?\d{2}))?$"
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


def parse_jsonl(
    text: str, path: str, agents: AgentTest | None = None
) -> tuple[list[Conversation], list[ImportIssue]]:
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
                    convs.append(conversation_from_dict(record, f"{path}#{n}", n, agents))
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
            convs.append(conversation_from_dict(record, f"{path}:{lineno}", lineno, agents))
        except ValueError as exc:
            issues.append(ImportIssue(path, lineno, str(exc)))
    return convs, issues


def conversation_from_dict(
    record: object, source: str = "", lineno: int = 0, agents: AgentTest | None = None
) -> Conversation:
    """Build a Conversation from a JSON-like dict; ValueError (Chinese) if invalid.

    With `agents`: a turn whose speaker the supervisor named as an agent is the
    agent's whatever its role says, and the team's aliases link the agent's account."""
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
    if agents is not None and agents.given:
        for t in turns:
            if t.role == "customer" and t.speaker and agents.is_agent(t.speaker):
                t.role = "agent"
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
    reason = over_limit(conv) or no_agent_reason(conv)
    if reason:
        raise ValueError(reason)
    if agents is not None:
        from .agents import link_accounts

        link_accounts([conv], agents)
    return conv


# -- CSV and other tables ------------------------------------------------------
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
    cells = [str(c).strip().lstrip("\ufeff").lower() for c in header]
    for key, accepted in names.items():
        for name in accepted:
            if name in cells and cells.index(name) not in found.values():
                found[key] = cells.index(name)
                break
    return found


def csv_rows(text: str, path: str, issues: list[ImportIssue]):
    """(line, cells) of a CSV text; an unparsable row becomes an issue."""
    reader = csv.reader(io.StringIO(text.replace("\x00", "")))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            issues.append(ImportIssue(path, reader.line_num, f"CSV 行无法解析: {exc}"))
            if reader.line_num <= 1:
                return
            continue
        yield reader.line_num, row


def parse_csv(
    text: str, path: str, columns: dict | None = None, agents: AgentTest | None = None
) -> tuple[list[Conversation], list[ImportIssue]]:
    """CSV rows (one message each) grouped into conversations by the id column."""
    issues: list[ImportIssue] = []
    return parse_table(csv_rows(text, path, issues), path, columns, agents, issues, "CSV")


def parse_table(
    rows,
    path: str,
    columns: dict | None = None,
    agents: AgentTest | None = None,
    issues: list[ImportIssue] | None = None,
    kind: str = "CSV",
) -> tuple[list[Conversation], list[ImportIssue]]:
    """Rows `(line, cells)` whose first row is the header, one message per row."""
    issues = issues if issues is not None else []
    agents = agents or AgentTest()
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return [], issues
    header = first[1]
    cols = _map_columns(header, columns)
    if "text" not in cols:
        issues.append(
            ImportIssue(path, first[0], f"{kind} 表头中找不到内容列（内容/消息/text/content）")
        )
        return [], issues
    convs: dict[str, Conversation] = {}
    width = len(header)
    for lineno, row in rows:
        if not any(str(c).strip() for c in row):
            continue
        if len(row) > width or len(row) <= cols["text"]:
            issues.append(ImportIssue(path, lineno, f"列数为{len(row)}，表头为{width}列"))
            continue
        if len(row) < width:  # MemoTrace leaves a private chat's group columns out
            row = [*row, *[""] * (width - len(row))]

        def cell(key: str, row=row) -> str:
            return str(row[cols[key]]).strip() if key in cols else ""

        if cell("type") in SYSTEM_TYPES:
            continue
        conv_id = cell("conversation") or "csv"
        agent = cell("agent")
        sender = cell("role")
        role = role_of(sender)
        speaker = cell("speaker")
        if role is None:
            sender = sender or speaker
            if not sender:
                issues.append(ImportIssue(path, lineno, "缺少发送方（发送人或角色）"))
                continue
            speaker = speaker or sender
            role = "agent" if agent and sender == agent else agents.role(sender)
        elif role == "customer" and speaker and agents.given and agents.is_agent(speaker):
            role = "agent"  # a name the supervisor gave wins over the format's flag
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
        conv.turns.append(Turn(role, str(row[cols["text"]]), ts, speaker))
    return list(convs.values()), issues


def parse_chatlog(
    text: str,
    path: str,
    agent_prefixes: list[str] | tuple[str, ...] | None = None,
    agent_names: list[str] | None = None,
) -> tuple[list[Conversation], list[ImportIssue]]:
    """Chat-log text (kept here for callers of the old place; see coach/chatlog.py)."""
    from .chatlog import parse_chatlog as parse

    return parse(text, path, AgentTest(agent_names or (), None, agent_prefixes))
