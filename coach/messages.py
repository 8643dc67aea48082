"""Message-list JSON exports: one record per message, grouped into conversations.

Recognised by their fields (a JSON array, an object holding the list under
`data.items` / `payload` / `chatdata` / …, or JSON Lines of messages):

- 企业微信 会话内容存档 (decrypted messages): `msgid`, `action`, `from`, `tolist`,
  `roomid`, `msgtime` (ms), `msgtype`, `text.content`. One conversation per room,
  or per pair of parties; a sender with an external id (`wo…` / `wm…`) is the
  customer, an internal userid the agent. `recall` / `switch` actions are skipped.
- 网易七鱼 message lists: `sessionId`, `fromUser` (0 客服, 1 访客), `time` (ms),
  `content`, `staffName` / `staffId` when given.
- Feishu `im/v1/messages` (the list response or its `items`): `chat_id`,
  `create_time` (ms), `sender.id`, `sender.sender_type`, `msg_type`,
  `body.content` (a JSON string: `{"text": …}`, or a `post`). The format does not
  say who is an agent: name them (their open_id) with --agent; an `app` sender is
  a bot (system).
- Chatwoot messages (`payload`): `conversation_id`, `message_type` (0 incoming =
  customer, 1 outgoing = agent, 2 activity and 3 template left out), `private`
  notes left out, `created_at` (s), `content`, `sender.name` / `sender.type`.

Anything else in JSON is read as kbcoach's own JSONL (coach/importers.py).
Names the supervisor gave (`AgentTest`) add agents to what a format says itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import NamedTuple

from .agents import AgentTest, agent_id
from .importers import _LINE_DECODER, parse_ts
from .transcripts import Conversation, ImportIssue, Turn

KINDS = ("wecom", "qiyu", "feishu", "chatwoot")
CHANNELS = {"wecom": "企业微信", "qiyu": "七鱼", "feishu": "飞书", "chatwoot": "Chatwoot"}
CONTAINERS = ("items", "payload", "chatdata", "messages", "message", "data", "result", "list")
PLACEHOLDERS = {
    "image": "[图片]",
    "voice": "[语音]",
    "audio": "[语音]",
    "video": "[视频]",
    "media": "[视频]",
    "file": "[文件]",
    "emotion": "[表情]",
    "sticker": "[表情]",
    "link": "[链接]",
    "location": "[位置]",
    "card": "[名片]",
    "share_user": "[名片]",
    "share_chat": "[群名片]",
}
MAX_CONTAINER_DEPTH = 3


class Message(NamedTuple):
    """One message; role None = ask the AgentTest."""

    conversation: str
    ts: float | None
    speaker: str
    role: str | None
    text: str


def _records(data: object, depth: int = 0) -> list | None:
    """The list of message dicts inside a parsed JSON document, or None."""
    if isinstance(data, list):
        return data if data and all(isinstance(r, dict) for r in data[:20]) else None
    if isinstance(data, dict) and depth < MAX_CONTAINER_DEPTH:
        for key in CONTAINERS:
            found = _records(data.get(key), depth + 1) if key in data else None
            if found is not None:
                return found
    return None


def detect(record: dict) -> str | None:
    """Which message-list format a record belongs to, or None."""
    if "turns" in record:
        return None
    if "msgtime" in record and "from" in record and ("msgtype" in record or "action" in record):
        return "wecom"
    if "fromUser" in record and ("sessionId" in record or "content" in record):
        return "qiyu"
    if "message_id" in record and "msg_type" in record and isinstance(record.get("sender"), dict):
        return "feishu"
    if "message_type" in record and "conversation_id" in record:
        return "chatwoot"
    return None


def load_records(text: str) -> tuple[str, list[tuple[int, dict]]] | None:
    """(kind, [(record number or line, record)]) when the JSON text is a message list;
    kind "unknown" for one JSON object that is neither that nor a conversation."""
    body = text.lstrip("\ufeff \t\r\n")
    if body[:1] not in ("[", "{"):
        return None
    try:
        data = json.loads(body, strict=False)
    except (json.JSONDecodeError, RecursionError):
        data = None
    if data is not None:
        records = _records(data)
        if records is None and isinstance(data, dict):
            records = [data]
        kind = next((k for k in map(detect, (records or [])[:5]) if k), None)
        if kind is None:
            if isinstance(data, dict) and "turns" not in data and "id" not in data:
                return "unknown", []  # one JSON document, neither ours nor a known list
            return None
        return kind, list(enumerate(records, 1))
    # JSON Lines of messages (a decrypted archive, one message per line)
    lines = text.splitlines()
    first = next((n for n, line in enumerate(lines) if line.strip()), None)
    try:
        head = _LINE_DECODER.decode(lines[first].strip().lstrip("\ufeff"))
    except (json.JSONDecodeError, RecursionError, TypeError):
        return None
    kind = detect(head) if isinstance(head, dict) else None
    if kind is None:
        return None
    out: list[tuple[int, object]] = []
    for n, line in enumerate(lines, 1):
        line = line.strip().lstrip("\ufeff")
        if not line:
            continue
        try:
            out.append((n, _LINE_DECODER.decode(line)))
        except (json.JSONDecodeError, RecursionError):
            out.append((n, None))
    return kind, out


def _is_external(user: str) -> bool:
    """企业微信: an external contact's id (external_userid) starts with wo / wm."""
    return len(user) >= 20 and user[:2] in ("wo", "wm")


def _wecom(r: dict) -> Message | None:
    if r.get("action", "send") != "send":
        return None
    sender = str(r.get("from") or "")
    room = str(r.get("roomid") or "")
    to = [str(t) for t in (r.get("tolist") or []) if t] if isinstance(r.get("tolist"), list) else []
    conv = room or "↔".join(sorted({sender, *to[:1]}))
    kind = str(r.get("msgtype") or "")
    if kind == "text":
        body = r.get("text")
        text = str(body.get("content", "")) if isinstance(body, dict) else ""
    elif kind in ("revoke", "agree", "disagree", "switch"):
        return None
    else:
        text = PLACEHOLDERS.get(kind, f"[{kind or '消息'}]")
    role = "customer" if _is_external(sender) else "agent"
    if sender.startswith("wb"):
        role = "system"  # a robot
    return Message(conv, parse_ts(r.get("msgtime")), sender, role, text)


def _qiyu(r: dict) -> Message | None:
    who = str(r.get("fromUser"))
    role = {"0": "agent", "1": "customer"}.get(who)
    if role is None:
        return None
    if role == "agent":
        speaker = str(r.get("staffName") or r.get("staffId") or "客服")
    else:
        speaker = str(r.get("fromName") or r.get("userName") or "访客")
    content = r.get("content")
    kind = str(r.get("type") or r.get("mType") or "text")
    text = content if isinstance(content, str) and kind in ("text", "richtext", "1") else None
    if text is None:
        text = PLACEHOLDERS.get(kind, f"[{kind}]")
    return Message(str(r.get("sessionId") or ""), parse_ts(r.get("time")), speaker, role, text)


def _feishu_text(kind: str, content: object) -> str:
    try:
        body = json.loads(content) if isinstance(content, str) else content
    except (json.JSONDecodeError, RecursionError):
        return str(content)
    if not isinstance(body, dict):
        return str(body)
    if kind == "text":
        return str(body.get("text", ""))
    if kind == "post":
        post = body.get("zh_cn") or body.get("en_us") or body
        parts = [str(post.get("title") or "")]
        for para in post.get("content") or []:
            if isinstance(para, list):
                parts.append(
                    "".join(str(el.get("text", "")) for el in para if isinstance(el, dict))
                )
        return "\n".join(p for p in parts if p)
    return PLACEHOLDERS.get(kind, f"[{kind}]")


def _feishu(r: dict) -> Message | None:
    kind = str(r.get("msg_type") or "")
    if kind == "system" or r.get("deleted"):
        return None
    sender = r.get("sender") or {}
    speaker = str(sender.get("id") or "")
    role = "system" if sender.get("sender_type") == "app" else None
    body = r.get("body") or {}
    text = _feishu_text(kind, body.get("content") if isinstance(body, dict) else "")
    return Message(str(r.get("chat_id") or ""), parse_ts(r.get("create_time")), speaker, role, text)


def _chatwoot(r: dict) -> Message | None:
    kind = str(r.get("message_type"))
    role = {"0": "customer", "incoming": "customer", "1": "agent", "outgoing": "agent"}.get(kind)
    if role is None or r.get("private"):
        return None
    sender = r.get("sender") if isinstance(r.get("sender"), dict) else {}
    speaker = str(sender.get("available_name") or sender.get("name") or "")
    if sender.get("type") == "agent_bot":
        role = "system"
    text = r.get("content")
    text = text if isinstance(text, str) else ""
    return Message(
        str(r.get("conversation_id") or ""), parse_ts(r.get("created_at")), speaker, role, text
    )


READERS: dict[str, Callable[[dict], Message | None]] = {
    "wecom": _wecom,
    "qiyu": _qiyu,
    "feishu": _feishu,
    "chatwoot": _chatwoot,
}


def group(
    messages: list[tuple[int, Message]],
    path: str,
    agents: AgentTest,
    channel: str = "",
) -> list[Conversation]:
    """Messages (with their record number) as conversations, in order of first
    appearance; turns in time order (a message without a time keeps its place)."""
    convs: dict[str, Conversation] = {}
    for n, (conv_id, ts, speaker, role, text) in messages:
        if role is None:
            role = agents.role(speaker)
        elif role == "customer" and agents.given and agents.is_agent(speaker):
            role = "agent"
        conv = convs.get(conv_id)
        if conv is None:
            conv = convs[conv_id] = Conversation(
                id=conv_id or path, channel=channel, source=f"{path}#{n}"
            )
        conv.turns.append(Turn(role, text, ts, speaker))
    for conv in convs.values():
        if all(t.ts is not None for t in conv.turns):
            conv.turns.sort(key=lambda t: t.ts)
        conv.started_at = next((t.ts for t in conv.turns if t.ts is not None), None)
        conv.agent = next(
            (
                agent_id(t.speaker, agents.prefixes)
                for t in conv.turns
                if t.role == "agent" and t.speaker
            ),
            "",
        )
    return list(convs.values())


def parse_messages(
    kind: str, records: list[tuple[int, object]], path: str, agents: AgentTest | None = None
) -> tuple[list[Conversation], list[ImportIssue]]:
    """Records of one message-list format as conversations."""
    agents = agents or AgentTest()
    read = READERS[kind]
    issues: list[ImportIssue] = []
    messages: list[tuple[int, Message]] = []
    for n, record in records:
        if not isinstance(record, dict):
            issues.append(ImportIssue(path, n, f"第{n}条记录: JSON 格式错误或不是对象"))
            continue
        try:
            msg = read(record)
        except (ValueError, OverflowError, TypeError, AttributeError):
            issues.append(ImportIssue(path, n, f"第{n}条记录: 时间或字段无法识别"))
            continue
        if msg is not None:
            messages.append((n, msg))
    return group(messages, path, agents, CHANNELS.get(kind, "")), issues
