"""A mapping file: how to read a JSON or CSV/XLSX export no built-in format knows.

A small YAML file names the fields (CSV: header names; JSON: field names, dotted
for nested objects, e.g. `sender.id`; a field holding a JSON string can be entered
too, e.g. `body.content.text`):

```yaml
conversation: sessionId   # 会话（可选；没有时整个文件是一个会话）
sender: staffName         # 发送人（可选）
text: content             # 内容（必填）
time: time                # 时间（可选：ISO 时间、2024-03-01 10:00:20、秒或毫秒）
role: fromUser            # 角色字段（可选）
agent_values: [0]         # 角色字段取这些值时是客服，其余是客户
skip_values: [2]          # 角色字段取这些值时跳过（系统消息等，可选）
agent_names: [小王]       # 没有角色字段时，哪些发送人是客服（也可用 --agent）
records: data.items       # JSON：消息列表所在的位置（可选，默认自动寻找）
```

Either `role` (with `agent_values`) or `sender` must be given, or the agents could
not be told apart. Mistakes raise `MappingError`, naming the file and the key.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from kb import safeyaml
from kb.errors import KbError

from .agents import AgentTest
from .importers import parse_ts
from .messages import Message, _records, group
from .transcripts import Conversation, ImportIssue

KEYS = {
    "conversation": "会话字段",
    "sender": "发送人字段",
    "text": "内容字段",
    "time": "时间字段",
    "role": "角色字段",
    "agent_values": "客服取值",
    "skip_values": "跳过取值",
    "agent_names": "客服名称",
    "records": "消息列表位置",
}
FIELD_KEYS = ("conversation", "sender", "text", "time", "role")
LIST_KEYS = ("agent_values", "skip_values", "agent_names")
MAX_MAPPING_BYTES = 64 * 1024
MAX_PATH_PARTS = 8
MAX_FIELD_CHARS = 200


class MappingError(KbError, ValueError):
    """A mapping file that cannot be used (Chinese message naming file and key)."""

    status = 400


class Mapping:
    """The validated content of one mapping file."""

    def __init__(self, data: dict, name: str = "映射文件"):
        self.name = name
        self.fields: dict[str, str] = {
            k: str(data[k]) for k in FIELD_KEYS if data.get(k) is not None
        }
        self.agent_values = {str(v) for v in data.get("agent_values") or ()}
        self.skip_values = {str(v) for v in data.get("skip_values") or ()}
        self.agent_names = [str(v) for v in data.get("agent_names") or ()]
        self.records = str(data["records"]) if data.get("records") else None

    def error(self, key: str, message: str) -> MappingError:
        return MappingError(f"映射文件 {self.name}：键 {key}（{KEYS.get(key, key)}）{message}")


def load_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping file; MappingError (Chinese) on any mistake."""
    name = Path(path).name
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise MappingError(f"映射文件 {name}：无法读取（{exc.strerror or exc}）") from None
    return mapping_from_bytes(raw, name)


def mapping_from_bytes(raw: bytes, name: str = "映射文件") -> Mapping:
    """Check the bytes of a mapping file (an upload, or a file read from disk)."""
    if not raw.strip():
        raise MappingError(f"映射文件 {name}：文件为空")
    if len(raw) > MAX_MAPPING_BYTES:
        raise MappingError(f"映射文件 {name}：过大（最多 {MAX_MAPPING_BYTES // 1024} KB）")
    try:
        # anchors, deep nesting and node bombs refused before loading (kb/safeyaml.py)
        data = safeyaml.load(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise MappingError(f"映射文件 {name}：应为 UTF-8 编码") from None
    except safeyaml.YamlRefused as exc:
        raise MappingError(f"映射文件 {name}：{exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"（第{mark.line + 1}行）" if mark is not None else ""
        raise MappingError(f"映射文件 {name}：YAML 格式错误{where}") from None
    return check_mapping(data, name)


def check_mapping(data: object, name: str = "映射文件") -> Mapping:
    """Validate parsed YAML as a mapping."""
    if not isinstance(data, dict):
        raise MappingError(f"映射文件 {name}：应为“键: 值”的列表（例如 text: content）")
    for key in data:
        if key not in KEYS:
            raise MappingError(
                f"映射文件 {name}：未知的键 {str(key)[:40]}（可用：{'、'.join(KEYS)}）"
            )
    mapping = Mapping({}, name)
    for key in (*FIELD_KEYS, "records"):
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
            raise mapping.error(key, "应为一个字段名")
        if len(str(value)) > MAX_FIELD_CHARS or str(value).count(".") >= MAX_PATH_PARTS:
            raise mapping.error(key, "的字段名过长")
    for key in LIST_KEYS:
        value = data.get(key)
        if value is not None and not isinstance(value, list):
            raise mapping.error(key, "应为列表，例如 [0] 或 [客服, 坐席]")
    if not data.get("text"):
        raise mapping.error("text", "是必填的：消息内容在哪个字段")
    if not data.get("role") and not data.get("sender"):
        raise mapping.error("sender", "和 role 至少要给一个，否则分不出客服")
    if data.get("role") and not data.get("agent_values"):
        raise mapping.error("agent_values", "缺少：给了 role 时，要写明哪些取值是客服")
    return Mapping(data, name)


def _get(record: object, path: str) -> object:
    """A dotted field of a JSON record; a JSON string on the way is entered."""
    value = record
    for part in path.split("."):
        if isinstance(value, str) and value.lstrip()[:1] == "{":
            try:
                value = json.loads(value)
            except (json.JSONDecodeError, RecursionError):
                return None
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _message(mapping: Mapping, get, agents: AgentTest) -> Message | None:
    """One message from a record or row; raises ValueError with a Chinese reason."""
    role = None
    if "role" in mapping.fields:
        value = get("role")
        value = "" if value is None else str(value).strip()
        if value in mapping.skip_values:
            return None
        role = "agent" if value in mapping.agent_values else "customer"
    sender = get("sender") if "sender" in mapping.fields else None
    sender = "" if sender is None else str(sender).strip()
    text = get("text")
    if text is None:
        raise ValueError(
            f"缺少映射文件 {mapping.name} 中 text 指定的字段「{mapping.fields['text']}」"
        )
    raw_ts = get("time") if "time" in mapping.fields else None
    try:
        ts = parse_ts(raw_ts)
    except (ValueError, OverflowError, TypeError):
        raise ValueError(f"时间无法识别: {str(raw_ts)[:40]}") from None
    conv = get("conversation") if "conversation" in mapping.fields else None
    return Message("" if conv is None else str(conv), ts, sender, role, str(text))


def _agents(mapping: Mapping, agents: AgentTest) -> AgentTest:
    if not mapping.agent_names:
        return agents
    return AgentTest([*agents.names, *mapping.agent_names], agents.pattern, agents.prefixes)


def parse_json(
    text: str, path: str, mapping: Mapping, agents: AgentTest
) -> tuple[list[Conversation], list[ImportIssue]]:
    """A JSON (or JSON Lines) export read through a mapping."""
    from .importers import _LINE_DECODER

    agents = _agents(mapping, agents)
    try:
        data = json.loads(text.lstrip("\ufeff"), strict=False)
        records = _get(data, mapping.records) if mapping.records else _records(data)
        if records is None and isinstance(data, dict):
            records = [data]
        if not isinstance(records, list):
            where = mapping.records or "（自动寻找）"
            return [], [
                ImportIssue(
                    path, 0, f"映射文件 {mapping.name}：键 records 指定的「{where}」不是消息列表"
                )
            ]
        numbered = list(enumerate(records, 1))
    except (json.JSONDecodeError, RecursionError):
        numbered = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    numbered.append((n, _LINE_DECODER.decode(line.strip().lstrip("\ufeff"))))
                except (json.JSONDecodeError, RecursionError):
                    numbered.append((n, None))
    issues: list[ImportIssue] = []
    messages: list[tuple[int, Message]] = []
    for n, record in numbered:
        if not isinstance(record, dict):
            issues.append(ImportIssue(path, n, f"第{n}条记录: JSON 格式错误或不是对象"))
            continue
        try:
            msg = _message(mapping, lambda key, r=record: _get(r, mapping.fields[key]), agents)
        except ValueError as exc:
            issues.append(ImportIssue(path, n, f"第{n}条记录: {exc}"))
            continue
        if msg is not None:
            messages.append((n, msg))
    return group(messages, path, agents), issues


def parse_table(
    rows, path: str, mapping: Mapping, agents: AgentTest, issues: list[ImportIssue] | None = None
) -> tuple[list[Conversation], list[ImportIssue]]:
    """CSV/XLSX rows `(line, cells)` (header first) read through a mapping."""
    agents = _agents(mapping, agents)
    issues = issues if issues is not None else []
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return [], issues
    header = [str(c).strip().lstrip("\ufeff").lower() for c in first[1]]
    cols: dict[str, int] = {}
    for key, name in mapping.fields.items():
        if name.strip().lower() not in header:
            issues.append(
                ImportIssue(
                    path, first[0], str(mapping.error(key, f"指定的列「{name}」在表头中找不到"))
                )
            )
            return [], issues
        cols[key] = header.index(name.strip().lower())
    messages: list[tuple[int, Message]] = []
    for lineno, row in rows:
        if not any(str(c).strip() for c in row):
            continue

        def get(key: str, row=row):
            i = cols[key]
            return row[i] if i < len(row) else None

        try:
            msg = _message(mapping, get, agents)
        except ValueError as exc:
            issues.append(ImportIssue(path, lineno, str(exc)))
            continue
        if msg is not None:
            messages.append((lineno, msg))
    return group(messages, path, agents), issues
