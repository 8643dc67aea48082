"""Telephone calls as conversations: speech-to-text exports in, channel kinds out.

Call-centre and speech-to-text systems export a call as speaker-labelled segments
with start and end times. Read here (detected by content, whatever the suffix):

- JSON: a list of segments `[{"speaker", "start", "end", "text"}, …]` (one call), an
  object `{"segments": [...], "metadata": {...}}` (or `utterances` / `sentences`,
  metadata keys at the top level also read), a list of such objects, or JSONL with
  one such object per line. Key variants of common engines are accepted (`spk`,
  `SpeakerId`, `ChannelId`, `bg`/`ed`, `BeginTime`/`EndTime`, `StartMs`, `onebest` …).
- CSV with a header holding a speaker, a start time and a text column (`speaker,
  start,end,text`, or 说话人,开始时间,结束时间,内容); an optional call id column
  (会话id / call_id) splits several calls.

Times are seconds (`12.5`, `"00:01:02.5"`) or milliseconds (keys such as `bg` /
`BeginTime` / `StartMs`, metadata `"time_unit": "ms"`, or integer times whose longest
segment would otherwise last over 10 minutes). With a metadata start time
(`started_at`) turn times are epoch seconds, else seconds from the call's start.

Speakers become roles by, in order: the caller's `speaker_agent` / `speaker_customer`
labels and the agent names or pattern of the loader options (CLI `--agent` /
`--speaker-agent`, `--agent-pattern`), a metadata map `"speakers": {"A": "agent"}`, role
words (坐席 / 客服 / agent / 客户 / customer / caller …), and otherwise the first
speaker is the agent (calls are answered by the agent), unless that speaker only
says 喂 while the other one greets, or only the other one opens as agents do
(这里是… / 工号… / 有什么可以帮您). Consecutive segments of one speaker less than
`merge_gap` seconds apart are one turn.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from .importers import MAX_ID_CHARS, parse_ts, role_of
from .transcripts import Conversation, ImportIssue, Turn, over_limit

CHANNEL_KINDS = ("chat", "phone", "message")
_PHONE = frozenset(
    "phone call calls voice telephone hotline inbound outbound 电话 语音 通话 热线 呼叫中心 "
    "来电 外呼 呼入 呼出".split()
)
_MESSAGE = frozenset(
    "message messages sms email mail weibo ticket 留言 微博 私信 短信 邮件 工单 评论".split()
)


def channel_kind(channel: str) -> str:
    """The channel kind (chat / phone / message) of a conversation's channel field."""
    key = (channel or "").strip().lower()
    if key in _PHONE:
        return "phone"
    if key in _MESSAGE:
        return "message"
    return "chat"


SEGMENT_LISTS = ("segments", "utterances", "sentences", "transcript", "result", "results")
SPEAKER_KEYS = (
    "speaker",
    "spk",
    "speaker_id",
    "speakerId",
    "SpeakerId",
    "speaker_label",
    "ChannelId",
    "channel_id",
    "role",
    "说话人",
    "发言人",
    "角色",
)
START_KEYS = (
    "start",
    "start_time",
    "startTime",
    "begin",
    "BeginTime",
    "begin_time",
    "bg",
    "StartMs",
    "start_ms",
    "开始时间",
    "开始",
)
END_KEYS = ("end", "end_time", "endTime", "EndTime", "ed", "EndMs", "end_ms", "结束时间", "结束")
TEXT_KEYS = ("text", "Text", "transcript", "content", "onebest", "sentence", "内容", "文本")
MS_KEYS = frozenset({"bg", "ed", "BeginTime", "EndTime", "StartMs", "EndMs", "start_ms", "end_ms"})
CALL_ID_KEYS = ("call_id", "callId", "id", "会话id", "通话id", "录音id", "conversation_id")
AGENT_ID_KEYS = ("agent", "agent_id", "agentId", "工号", "坐席工号", "坐席")
START_AT_KEYS = ("started_at", "start_at", "call_time", "start_datetime", "通话时间", "开始时间")
AGENT_LABELS = frozenset(
    "坐席 座席 客服 话务员 接线员 工号 agent operator staff service rep representative a".split()
)
CUSTOMER_LABELS = frozenset("客户 用户 来电人 来电 顾客 customer caller client user b".split())
# what an agent's first words hold, and a customer's seldom do (role heuristics only)
SERVICE_MARKS = ("有什么可以帮", "为您服务", "工号", "客服", "这里是", "热线", "很高兴为您")
HELLO = re.compile(r"^\s*(?:喂|hello|哈喽|hi)[\s,，。.？?！!喂]*$", re.I)
GENERIC_LABELS = ("spk", "speaker", "说话人", "发言人", "声道", "channel", "角色", "role")
MERGE_GAP = 1.5
_HEAD = 4000


# -- detection ----------------------------------------------------------------------
def looks_like_call(text: str) -> bool:
    """Is this text a call export (segments with speakers and times), not a chat file?"""
    head = text.lstrip("\ufeff \t\r\n")[:_HEAD]
    if not head:
        return False
    if head[0] in "[{":
        if '"turns"' in head:
            return False
        return any(f'"{k}"' in head for k in SPEAKER_KEYS) and any(
            f'"{k}"' in head for k in START_KEYS
        )
    return _csv_columns(head.splitlines()[0]) is not None


def _csv_columns(line: str) -> dict[str, int] | None:
    try:
        cells = [c.strip().lstrip("\ufeff") for c in next(csv.reader([line]))]
    except (csv.Error, StopIteration):
        return None
    low = [c.lower() for c in cells]
    cols = {}
    for field, keys in (
        ("speaker", SPEAKER_KEYS),
        ("start", START_KEYS),
        ("end", END_KEYS),
        ("text", TEXT_KEYS),
        ("call", CALL_ID_KEYS),
    ):
        for k in keys:
            if k.lower() in low:
                cols[field] = low.index(k.lower())
                break
    if {"speaker", "start", "text"} <= set(cols):
        return cols
    return None


# -- parsing ------------------------------------------------------------------------
class _Bad(ValueError):
    """A record that cannot be read (Chinese reason)."""


def _time(value: object, ms: bool) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _Bad("时间不能是布尔值")
    if isinstance(value, int | float):
        num = float(value)
    else:
        text = str(value).strip()
        if ":" in text:
            parts = text.split(":")
            if len(parts) > 3:
                raise _Bad(f"时间无法识别: {text[:20]}")
            try:
                num = 0.0
                for p in parts:
                    num = num * 60 + float(p)
            except ValueError:
                raise _Bad(f"时间无法识别: {text[:20]}") from None
            return num
        try:
            num = float(text.rstrip("s"))
        except ValueError:
            raise _Bad(f"时间无法识别: {text[:20]}") from None
    if num != num or num in (float("inf"), float("-inf")) or num < 0:
        raise _Bad("时间应为非负有限数")
    return num / 1000.0 if ms else num


def _pick(d: dict, keys) -> tuple[str | None, object]:
    for k in keys:
        if k in d:
            return k, d[k]
    return None, None


def _segments(items: list, meta: dict) -> list[tuple[str, float | None, float | None, str]]:
    """(speaker, start, end, text) of every segment, times in seconds."""
    unit = str(meta.get("time_unit") or meta.get("unit") or "").lower()
    raw = []
    for n, seg in enumerate(items, 1):
        if not isinstance(seg, dict):
            raise _Bad(f"第{n}段不是对象")
        _, speaker = _pick(seg, SPEAKER_KEYS)
        skey, start = _pick(seg, START_KEYS)
        ekey, end = _pick(seg, END_KEYS)
        _, text = _pick(seg, TEXT_KEYS)
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise _Bad(f"第{n}段 text 应为字符串")
        if speaker is None or str(speaker).strip() == "":
            raise _Bad(f"第{n}段缺少说话人（speaker）")
        raw.append((str(speaker).strip(), skey, start, ekey, end, text, n))
    ms = unit in ("ms", "millisecond", "milliseconds", "毫秒")
    if not ms and unit not in ("s", "sec", "second", "seconds", "秒"):
        ms = any(k in MS_KEYS for r in raw for k in (r[1], r[3]) if k)
        if not ms:
            ints = [r for r in raw if isinstance(r[2], int) and isinstance(r[4], int)]
            ms = bool(ints) and len(ints) == len(raw) and max(r[4] - r[2] for r in ints) > 600
    out = []
    for speaker, _sk, start, _ek, end, text, n in raw:
        try:
            out.append((speaker, _time(start, ms), _time(end, ms), text))
        except _Bad as exc:
            raise _Bad(f"第{n}段{exc}") from None
    return out


def _roles(segs, meta: dict, agent_labels, customer_labels, agents=None) -> dict[str, str]:
    """Speaker label → agent / customer (`agents`: an AgentTest; only names or a
    pattern the supervisor gave count, not its default prefix)."""
    speakers = list(dict.fromkeys(s for s, *_ in segs))
    mapping = {}
    named = agents is not None and agents.given
    if named:
        agent_labels = agent_labels | {s for s in speakers if agents.is_agent(s)}
    given = meta.get("speakers") or meta.get("roles") or {}
    given = given if isinstance(given, dict) else {}
    for label in speakers:
        low = label.lower()
        if label in agent_labels or low in agent_labels:
            mapping[label] = "agent"
        elif label in customer_labels or low in customer_labels:
            mapping[label] = "customer"
        elif str(given.get(label, "")).strip():
            mapping[label] = role_of(str(given[label]).strip()) or "customer"
        elif low in AGENT_LABELS or role_of(label) == "agent":
            mapping[label] = "agent"
        elif low in CUSTOMER_LABELS or role_of(label) == "customer":
            mapping[label] = "customer"
    if not any(r == "agent" for r in mapping.values()) and speakers:
        # nobody named: the first speaker answers the call, unless only saying 喂 while
        # the other one greets, or the other one opens as agents do (这里是… / 工号…):
        # an outbound call, or the customer spoke first
        first = speakers[0]
        if len(speakers) > 1:
            said = {}
            for s, _a, _b, text in segs:
                said.setdefault(s, text)
            other = speakers[1]
            opener = any(m in said[other] for m in SERVICE_MARKS) and not any(
                m in said[first] for m in SERVICE_MARKS
            )
            if opener or (HELLO.match(said[first]) and "您好" in said[other]):
                first = other
        mapping.setdefault(first, "agent")
    for label in speakers:
        mapping.setdefault(label, "customer")
    return mapping


def build_call(
    segs,
    meta: dict,
    conv_id: str,
    source: str,
    agent_labels=frozenset(),
    customer_labels=frozenset(),
    merge_gap: float = MERGE_GAP,
    agents=None,
) -> Conversation:
    """One call: segments merged into turns with roles and times."""
    roles = _roles(segs, meta, agent_labels, customer_labels, agents)
    base = None
    _, stamp = _pick(meta, START_AT_KEYS)
    if stamp not in (None, ""):
        try:
            base = parse_ts(stamp)
        except (ValueError, OverflowError, TypeError):
            raise _Bad("通话开始时间（started_at）无法识别") from None
    turns: list[Turn] = []
    last_speaker = None
    for speaker, start, end, text in segs:
        ts = None if start is None else (base or 0.0) + start
        te = None if end is None else (base or 0.0) + end
        prev = turns[-1] if turns else None
        gap_ok = (
            prev is not None
            and speaker == last_speaker
            and ts is not None
            and (prev.end if prev.end is not None else prev.ts) is not None
            and ts - (prev.end if prev.end is not None else prev.ts) <= merge_gap
        )
        if gap_ok:
            prev.text = f"{prev.text} {text}" if prev.text and text else prev.text or text
            prev.end = te if te is not None else prev.end
        else:
            turns.append(Turn(roles[speaker], text, ts, speaker, te))
        last_speaker = speaker
    if not turns:
        raise _Bad("通话没有任何语句（segments 为空）")
    _, agent = _pick(meta, AGENT_ID_KEYS)
    if agent in (None, ""):
        agent = next(
            (
                t.speaker
                for t in turns
                if t.role == "agent"
                and t.speaker.lower() not in AGENT_LABELS
                and len(t.speaker) >= 2
                and not t.speaker.lower().startswith(GENERIC_LABELS)
            ),
            "",
        )
    if not isinstance(agent, str | int) or len(str(agent)) > MAX_ID_CHARS:
        raise _Bad("agent 应为不超过 200 个字符的字符串")
    conv = Conversation(
        id=conv_id[:MAX_ID_CHARS],
        turns=turns,
        agent=str(agent),
        channel="phone",
        started_at=base if base is not None else turns[0].ts,
        source=source,
    )
    reason = over_limit(conv)
    if reason:
        raise _Bad(reason)
    return conv


def _labels(values) -> frozenset[str]:
    out = set()
    for v in values or ():
        v = str(v).strip()
        if v:
            out |= {v, v.lower()}
    return frozenset(out)


def parse_calls(
    text: str,
    path: str,
    speaker_agent=None,
    speaker_customer=None,
    merge_gap: float = MERGE_GAP,
    agents=None,
) -> tuple[list[Conversation], list[ImportIssue]]:
    """Every call in a JSON, JSONL or CSV call export (`agents`: the AgentTest of the
    loader options: speaker labels it names are the agent's)."""
    agent_set, customers = _labels(speaker_agent), _labels(speaker_customer)
    stem = Path(path).stem if path and not path.startswith("<") else "call"
    body = text.lstrip("\ufeff \t\r\n")
    convs: list[Conversation] = []
    issues: list[ImportIssue] = []

    def add(record: object, n: int, line: int, many: bool) -> None:
        where = f"{path}:{line}" if line else f"{path}#{n}"
        try:
            if isinstance(record, list):
                meta, items = {}, record
            elif isinstance(record, dict):
                meta = dict(record.get("metadata") or record.get("meta") or {})
                meta.update(
                    {
                        k: v
                        for k, v in record.items()
                        if k not in SEGMENT_LISTS + ("metadata", "meta")
                    }
                )
                items = next(
                    (record[k] for k in SEGMENT_LISTS if isinstance(record.get(k), list)), None
                )
                if items is None:
                    raise _Bad("找不到语句列表（segments）")
            else:
                raise _Bad("记录应为 JSON 对象或语句列表")
            _, cid = _pick(meta, CALL_ID_KEYS)
            cid = str(cid) if cid not in (None, "") else (f"{stem}-{n}" if many else stem)
            segs = _segments(items, meta)
            convs.append(
                build_call(segs, meta, cid, where, agent_set, customers, merge_gap, agents)
            )
        except _Bad as exc:
            issues.append(ImportIssue(path, line or n, f"通话记录: {exc}"))

    if body[:1] in "[{":
        try:
            data = json.loads(body, strict=False)
        except (json.JSONDecodeError, RecursionError):
            data = None
        if data is None:  # JSONL: one call per line
            lines = [(n, ln.strip()) for n, ln in enumerate(text.splitlines(), 1) if ln.strip()]
            for k, (n, line) in enumerate(lines, 1):
                try:
                    add(json.loads(line.lstrip("\ufeff"), strict=False), k, n, True)
                except (json.JSONDecodeError, RecursionError):
                    issues.append(ImportIssue(path, n, "JSON 格式错误"))
        elif (
            isinstance(data, list)
            and data
            and all(isinstance(x, dict) for x in data)
            and any(isinstance(x.get(k), list) for x in data for k in SEGMENT_LISTS)
        ):
            for n, record in enumerate(data, 1):
                add(record, n, 0, len(data) > 1)
        else:
            add(data, 1, 0, False)
        return convs, issues
    return _parse_csv(text, path, stem, (agent_set, customers, merge_gap, agents))


def _parse_csv(text, path, stem, how):
    agent_set, customers, merge_gap, agents = how
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff").replace("\x00", "")))
    issues: list[ImportIssue] = []
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        return [], [ImportIssue(path, 1, "CSV 表头无法解析")]
    cols = _csv_columns(",".join(f'"{h}"' for h in header))
    if cols is None:
        return [], [ImportIssue(path, 1, "通话 CSV 表头应含说话人、开始时间和内容列")]
    calls: dict[str, list] = {}
    first_line: dict[str, int] = {}
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            issues.append(ImportIssue(path, reader.line_num, f"CSV 行无法解析: {exc}"))
            continue
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            issues.append(
                ImportIssue(path, reader.line_num, f"列数为{len(row)}，表头为{len(header)}列")
            )
            continue
        cid = row[cols["call"]].strip() if "call" in cols else ""
        seg = {
            "speaker": row[cols["speaker"]],
            "start": row[cols["start"]],
            "text": row[cols["text"]],
        }
        if "end" in cols:
            seg["end"] = row[cols["end"]]
        calls.setdefault(cid, []).append(seg)
        first_line.setdefault(cid, reader.line_num)
    convs = []
    for n, (cid, segs) in enumerate(calls.items(), 1):
        line = first_line[cid]
        try:
            conv_id = cid or (f"{stem}-{n}" if len(calls) > 1 else stem)
            convs.append(
                build_call(
                    _segments(segs, {}),
                    {},
                    conv_id,
                    f"{path}:{line}",
                    agent_set,
                    customers,
                    merge_gap,
                    agents,
                )
            )
        except _Bad as exc:
            issues.append(ImportIssue(path, line, f"通话 {cid or conv_id}: {exc}"))
    return convs, issues
