"""Conversations and turns, and loading them from files in any supported format.

Formats (see coach/importers.py): JSONL (the canonical form), CSV with a header,
and chat-log text; call transcripts (speaker segments with times, coach/calls.py),
recognised by content in .json/.jsonl/.csv files. Encodings: UTF-8 (with or without BOM), UTF-16 with BOM (or
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
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}
TEXT_SUFFIXES = (".txt", ".log", ".text")


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
    convs: list[Conversation], issues: list[ImportIssue], path: str
) -> tuple[list[Conversation], list[ImportIssue]]:
    """Over-limit conversations become issues at the line (or record) they start at."""
    kept = []
    for conv in convs:
        reason = over_limit(conv)
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
    """Guess the format of decoded text: jsonl, csv or chatlog."""
    suffix = Path(name).suffix.lower()
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    if suffix in TEXT_SUFFIXES:
        return "chatlog"
    for line in io.StringIO(text[:20_000]):
        stripped = line.strip().lstrip("\ufeff")
        if not stripped:
            continue
        if stripped.startswith("{"):
            return "jsonl"
        from .importers import looks_like_csv_header

        return "csv" if looks_like_csv_header(stripped) else "chatlog"
    return "chatlog"


def load_text(
    text: str, path: str = "<stdin>", fmt: str | None = None, **options
) -> tuple[list[Conversation], list[ImportIssue]]:
    """Parse decoded text in the given (or sniffed) format."""
    from . import calls, importers

    fmt = fmt or sniff_format(text, path)
    if fmt == "call" or (fmt in ("jsonl", "csv") and calls.looks_like_call(text)):
        keys = ("speaker_agent", "speaker_customer")
        return calls.parse_calls(text, path, **{k: options[k] for k in keys if k in options})
    if fmt == "jsonl":
        return importers.parse_jsonl(text, path)  # limits checked per record
    if fmt == "csv":
        convs, issues = importers.parse_csv(text, path, columns=options.get("columns"))
    elif fmt == "chatlog":
        convs, issues = importers.parse_chatlog(
            text,
            path,
            agent_prefixes=options.get("agent_prefixes"),
            agent_names=options.get("agent_names"),
        )
    else:
        raise ValueError(f"未知的格式: {fmt}")
    return _within_limits(convs, issues, path)


def load_bytes(
    data: bytes, path: str = "<stdin>", fmt: str | None = None, **options
) -> tuple[list[Conversation], list[ImportIssue]]:
    """Decode and parse one file's bytes."""
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
