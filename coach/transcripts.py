"""Conversations and turns, and loading them from files in any supported format.

Formats: JSONL, the canonical form, and CSV/XLSX tables (coach/importers.py);
chat-log text, WeChat/MemoTrace and QQ 消息管理器 (coach/chatlog.py); message-list
JSON of 企业微信 会话存档, 七鱼, Feishu and Chatwoot (coach/messages.py); any JSON
or CSV export through a mapping file (coach/mapping.py); call transcripts,
speaker segments with start and end times in JSON or CSV (coach/calls.py). The format is told from
the content (then the file name); `fmt` forces one (`FORMATS_IN`). HTML pages,
PDFs, images and other binary files are one clear "不支持的格式" issue.

Who the agents are comes from the format where it says so, else from an
`AgentTest` (coach/agents.py: names, a pattern, the prefix 客服). A conversation
with no agent turn is never checked (it would score 100): it becomes an issue
naming the senders found, so the supervisor can name the agent. Encodings: UTF-8 (with or without BOM), UTF-16 with BOM (or
without, when the NUL pattern shows it), GB18030/GBK; charset-normalizer is only a
fallback. Loading never raises on bad content: broken records become
`ImportIssue`s naming file, line and reason, and the rest of the file still loads.
"""

from __future__ import annotations

import codecs
import io
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .limits import MAX_TURN_CHARS, MAX_TURNS

ROLES = ("agent", "customer", "system")
SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".xlsx": "xlsx",
}
TEXT_SUFFIXES = (".txt", ".log", ".text")
# --format-in: what a supervisor may force (aliases name the tool)
FORMATS_IN = {
    "jsonl": "jsonl",
    "json": "jsonl",
    "csv": "csv",
    "xlsx": "xlsx",
    "chatlog": "chatlog",
    "memotrace-txt": "chatlog",
    "memotrace-csv": "csv",
    "qq": "qq",
    "wecom": "wecom",
    "qiyu": "qiyu",
    "feishu": "feishu",
    "chatwoot": "chatwoot",
    "call": "call",
}


@dataclass(slots=True)
class Turn:
    """One message: who sent it (role, speaker), what, and when (epoch seconds; a
    call's turns also end, so the silence after them can be measured)."""

    role: str
    text: str
    ts: float | None = None
    speaker: str = ""
    end: float | None = None


@dataclass
class Conversation:
    """A customer-service conversation as a list of turns."""

    id: str
    turns: list[Turn] = field(default_factory=list)
    agent: str = ""
    channel: str = ""
    started_at: float | None = None
    source: str = ""

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class ImportIssue:
    """A record that could not be loaded: where, and why (in Chinese)."""

    path: str
    line: int
    reason: str

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return {"path": self.path, "line": self.line, "reason": self.reason}


def over_limit(conv: Conversation) -> str | None:
    """Why the conversation is too large to check (Chinese), or None: an over-limit
    conversation is an unreadable record, never silently cut."""
    if len(conv.turns) > MAX_TURNS:
        return (
            f"会话共 {len(conv.turns)} 句，超过上限（每个会话最多 {MAX_TURNS} 句），请拆分后再导入"
        )
    for n, t in enumerate(conv.turns, 1):
        if len(t.text) > MAX_TURN_CHARS:
            return f"第{n}句有 {len(t.text)} 个字符，超过上限（每句最多 {MAX_TURN_CHARS} 个字符）"
    return None


def _within_limits(
    convs: list[Conversation], issues: list[ImportIssue], path: str, agents=None
) -> tuple[list[Conversation], list[ImportIssue]]:
    """Over-limit conversations, and conversations with no agent turn, become issues
    at the line (or record) they start at; the others' agents are linked to their
    accounts through the team's aliases (`AgentTest.aliases`)."""
    if agents is not None:
        from .agents import link_accounts

        link_accounts(convs, agents)
    kept = []
    for conv in convs:
        reason = over_limit(conv) or no_agent_reason(conv)
        if reason is None:
            kept.append(conv)
            continue
        where = conv.source.rpartition(":")[2] if ":" in conv.source else ""
        if not where.isdigit():
            where = conv.source.rpartition("#")[2]
        line = int(where) if where.isdigit() else 0
        issues.append(ImportIssue(path, line, f"会话 {conv.id}: {reason}"))
    issues.sort(key=lambda e: e.line)
    return kept, issues


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Decode file bytes: BOMs first, then strict UTF-8, GB18030, then a guess."""
    for bom, enc in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(enc), enc
            except UnicodeDecodeError:
                return data.decode(enc, errors="replace"), enc
    utf16 = _bomless_utf16(data)
    if utf16:
        try:
            return data.decode(utf16), utf16
        except UnicodeDecodeError:
            pass
    for enc in ("utf-8", "gb18030"):
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            continue
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:200_000]).best()
        if best is not None and best.encoding:
            return data.decode(best.encoding, errors="replace"), best.encoding
    except Exception:  # noqa: BLE001 - a failed guess falls back to replacement
        pass
    return data.decode("utf-8", errors="replace"), "utf-8"


def _bomless_utf16(data: bytes) -> str | None:
    sample = data[:4000]
    if len(sample) < 8 or len(sample) % 2:
        return None
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    half = len(sample) // 2
    if odd > 0.4 * half and even < 0.05 * half:
        return "utf-16-le"
    if even > 0.4 * half and odd < 0.05 * half:
        return "utf-16-be"
    return None


def sniff_format(text: str, name: str = "") -> str:
    """Guess the format of decoded text from its content, then its name: html, qq,
    jsonl (including message-list JSON), csv or chatlog."""
    from .chatlog import is_qq_export
    from .importers import looks_like_csv_header
    from .spreadsheet import looks_like_html

    suffix = Path(name).suffix.lower()
    if looks_like_html(text):
        return "html"
    if is_qq_export(text):
        return "qq"
    if SUFFIXES.get(suffix) in ("jsonl", "csv"):
        return SUFFIXES[suffix]
    for line in io.StringIO(text[:20_000]):
        stripped = line.strip().lstrip("\ufeff")
        if not stripped:
            continue
        if stripped.startswith(("{", "[")) and suffix not in TEXT_SUFFIXES:
            return "jsonl"
        if suffix in TEXT_SUFFIXES:
            return "chatlog"
        return "csv" if looks_like_csv_header(stripped) else "chatlog"
    return "chatlog"


def no_agent_reason(conv: Conversation) -> str | None:
    """Why a conversation cannot be checked for want of an agent turn, or None."""
    if any(t.role == "agent" for t in conv.turns):
        return None
    from .agents import senders_note

    names = senders_note(t.speaker for t in conv.turns)
    return (
        f"无法质检：没有客服发言（找到的发送人：{names}）。"
        "请指明哪些发送人是客服（命令行 --agent / --agent-pattern，上传页面的“客服”栏）"
    )


def load_text(
    text: str, path: str = "<stdin>", fmt: str | None = None, **options
) -> tuple[list[Conversation], list[ImportIssue]]:
    """Parse decoded text in the given (or sniffed) format.

    Options: `agent_test` (an AgentTest) or `agent_names` / `agent_pattern` /
    `agent_prefixes`; `columns` (extra CSV header names); `mapping` (a Mapping);
    `speaker_agent` (a call's agent speaker labels; names given as agents count too)."""
    from . import calls, chatlog, importers, messages
    from .agents import agent_test

    agents = agent_test(options)
    mapping = options.get("mapping")
    fmt = FORMATS_IN.get(fmt, fmt) if fmt else sniff_format(text, path)
    if fmt == "html":
        from .spreadsheet import unsupported_issue

        return [], [unsupported_issue(path, "HTML 导出")]
    if fmt == "call" or (
        mapping is None and fmt in ("jsonl", "csv") and calls.looks_like_call(text)
    ):
        convs, issues = calls.parse_calls(
            text, path, speaker_agent=options.get("speaker_agent"), agents=agents
        )
        return _within_limits(convs, issues, path, agents)
    if mapping is not None and fmt in ("jsonl", "csv"):
        from . import mapping as mapping_mod

        if fmt == "csv":
            issues: list[ImportIssue] = []
            rows = importers.csv_rows(text, path, issues)
            convs, issues = mapping_mod.parse_table(rows, path, mapping, agents, issues)
        else:
            convs, issues = mapping_mod.parse_json(text, path, mapping, agents)
    elif fmt in messages.KINDS or fmt == "jsonl":
        found = messages.load_records(text)
        if fmt in messages.KINDS and (found is None or found[0] != fmt):
            kind_name = messages.CHANNELS[fmt]
            return [], [ImportIssue(path, 0, f"文件不是{kind_name}消息列表（找不到它的字段）")]
        if found is not None and found[0] == "unknown":
            return [], [
                ImportIssue(
                    path,
                    0,
                    "JSON 中既没有会话（turns），也不是已知的消息列表"
                    "（企业微信会话存档/七鱼/飞书/Chatwoot），请用映射文件（--mapping）指明字段",
                )
            ]
        if found is not None:
            convs, issues = messages.parse_messages(found[0], found[1], path, agents)
        else:
            convs, issues = importers.parse_jsonl(text, path, agents)  # limits checked per record
    elif fmt == "csv":
        convs, issues = importers.parse_csv(text, path, options.get("columns"), agents)
    elif fmt in ("chatlog", "qq"):
        convs, issues = chatlog.parse_chatlog(text, path, agents, qq=True if fmt == "qq" else None)
    else:
        raise ValueError(f"未知的格式: {fmt}")
    return _within_limits(convs, issues, path, agents)


def load_xlsx(data: bytes, path: str, **options) -> tuple[list[Conversation], list[ImportIssue]]:
    """An .xlsx export read as a table (like CSV, or through a mapping)."""
    from . import importers
    from .agents import agent_test
    from .spreadsheet import xlsx_rows

    agents = agent_test(options)
    mapping = options.get("mapping")
    issues: list[ImportIssue] = []
    if mapping is not None:
        from .mapping import parse_table

        rows = xlsx_rows(data, path, issues)
        convs, issues = parse_table(rows, path, mapping, agents, issues)
    else:

        def header_ok(cells: list[str]) -> bool:
            return "text" in importers._map_columns(cells, options.get("columns"))

        rows = xlsx_rows(data, path, issues, header_ok)
        convs, issues = importers.parse_table(
            rows, path, options.get("columns"), agents, issues, "XLSX"
        )
    return _within_limits(convs, issues, path, agents)


def load_bytes(
    data: bytes, path: str = "<stdin>", fmt: str | None = None, **options
) -> tuple[list[Conversation], list[ImportIssue]]:
    """Decode and parse one file's bytes (an .xlsx workbook, or text)."""
    from .spreadsheet import is_xlsx, unsupported_issue, unsupported_kind

    fmt = FORMATS_IN.get(fmt, fmt) if fmt else None
    if fmt == "xlsx" or (fmt is None and is_xlsx(data)):
        if not is_xlsx(data):
            return [], [ImportIssue(path, 0, "文件不是 XLSX 工作簿")]
        return load_xlsx(data, path, **options)
    kind = unsupported_kind(data, path)
    if kind:
        return [], [unsupported_issue(path, kind)]
    text, _encoding = decode_bytes(data)
    return load_text(text, path, fmt, **options)


def iter_files(path: Path) -> list[Path]:
    """The transcript files under a folder (jsonl, json, csv, txt, log), sorted."""
    wanted = set(SUFFIXES) | set(TEXT_SUFFIXES)
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and p.suffix.lower() in wanted and not p.name.startswith(".")
    )


def load_path(
    path: str | Path, *, stdin=None, fmt: str | None = None, **options
) -> tuple[list[Conversation], list[ImportIssue]]:
    """Load a file, every transcript file under a folder, or '-' for stdin."""
    if "agent_test" not in options:
        from .agents import agent_test

        options["agent_test"] = agent_test(options)  # compiled once for every file
    if str(path) == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        data = stream.read()
        if isinstance(data, str):
            return load_text(data, "<stdin>", fmt, **options)
        return load_bytes(data, "<stdin>", fmt, **options)
    p = Path(path)
    if p.is_dir():
        convs: list[Conversation] = []
        issues: list[ImportIssue] = []
        for f in iter_files(p):
            c, e = load_path(f, fmt=fmt, **options)
            convs.extend(c)
            issues.extend(e)
        return convs, issues
    try:
        data = p.read_bytes()
    except OSError as exc:
        return [], [ImportIssue(str(p), 0, f"无法读取文件: {exc.strerror or exc}")]
    return load_bytes(data, str(p), fmt, **options)
