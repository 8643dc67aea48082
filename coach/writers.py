"""Report writers: readable text, JSON, CSV (Excel-friendly UTF-8 with BOM) and XLSX.

The tabular writers are shared by `kbcoach check` and the export of saved audit
results (coach/exports.py): `write_sheets` streams rows into an openpyxl write-only
workbook and `csv_chunks` yields CSV text a few hundred rows at a time, so neither
holds a whole report.  Both keep a cell that a spreadsheet would take for a formula
(=, +, -, @ first) as text: CSV with a leading apostrophe, XLSX as a string cell."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable, Iterator

from scripts_lib.models import CATEGORY_LABELS

LEVEL_NAMES = {"info": "提示", "warning": "警告", "error": "错误", "fatal": "严重"}
ROLE_NAMES = {"agent": "客服", "customer": "客户", "system": "系统"}
CATEGORY_NAMES = CATEGORY_LABELS  # one list, kept in scripts_lib/models.py
FINDING_COLUMNS = [
    ("会话ID", "conversation"),
    ("客服", "agent"),
    ("得分", "score"),
    ("轮次", "turn"),
    ("类别", "category"),
    ("规则", "rule"),
    ("级别", "level"),
    ("开始", "start"),
    ("结束", "end"),
    ("命中", "match"),
    ("说明", "message"),
    ("建议", "suggestion"),
    ("扣分", "deduction"),
    ("原文", "text"),
]
MAX_LINE = 240  # longer turns are shown as windows around the marked spans


def write(report: dict, fmt: str, output: str | None, turns: list | None = None) -> None:
    """Write the report in `fmt` to the `output` file, or to stdout.

    `turns[i]` lists `(role, text)` of conversation i, so text and tabular formats
    can show the flagged lines (the JSON report itself carries spans, not texts)."""
    if fmt == "xlsx":
        write_xlsx(report, output, turns)
        return
    if fmt == "json":
        text = to_json(report)
    else:
        text = {"csv": to_csv, "text": to_text}[fmt](report, turns)
    if output:
        encoding = "utf-8-sig" if fmt == "csv" else "utf-8"
        with open(output, "w", encoding=encoding, newline="") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def to_json(report: dict) -> str:
    """The report as JSON (UTF-8, not escaped), one conversation per line: readable,
    diff-friendly, and written by the fast C encoder even for large batches."""
    out = io.StringIO()
    out.write("{")
    for n, (key, value) in enumerate(report.items()):
        out.write(",\n" if n else "\n")
        out.write(json.dumps(key) + ": ")
        if isinstance(value, list) and value:
            out.write("[\n  ")
            out.write(",\n  ".join(json.dumps(v, ensure_ascii=False) for v in value))
            out.write("\n]")
        else:
            out.write(json.dumps(value, ensure_ascii=False))
    out.write("\n}\n")
    return out.getvalue()


def mark(text: str, spans: list[tuple[int, int]]) -> str:
    """The text with each non-empty span wrapped in 【】; long text is windowed."""
    spans = sorted({(s, e) for s, e in spans if e > s})
    pieces, pos = [], 0
    for s, e in spans:
        if s < pos:
            continue
        pieces.append(_clip(text[pos:s], first=not pieces, last=False))
        pieces.append(f"【{text[s:e]}】")
        pos = e
    pieces.append(_clip(text[pos:], first=not pieces, last=True))
    return "".join(pieces).replace("\n", " ")


def _clip(chunk: str, first: bool, last: bool) -> str:
    keep = MAX_LINE // 2
    if len(chunk) <= keep * 2:
        return chunk
    if first and last:
        return chunk[:MAX_LINE] + "…"
    if first:
        return "…" + chunk[-keep:]
    if last:
        return chunk[:keep] + "…"
    return chunk[: keep // 2] + "…" + chunk[-keep // 2 :]


def _cost(finding: dict, conv: dict) -> str:
    """What a finding costs, and why nothing when it costs nothing."""
    if finding["deduction"]:
        return f"扣{finding['deduction']}分"
    cap = conv.get("breakdown", {}).get(finding["rule"], {}).get("cap")
    return f"不扣分：本规则每会话最多扣{cap}分，已扣满" if cap else "只作提示，不扣分"


def to_text(report: dict, turns: list | None = None) -> str:
    """Readable report: each flagged line with the match marked, the why and the fix."""
    out = io.StringIO()
    for n, conv in enumerate(report["conversations"]):
        findings = conv["findings"]
        head = f"会话 {conv['id']}  客服: {conv['agent'] or '（未标注）'}  得分 {conv['score']}"
        out.write(head + (f"  ({conv['source']})" if conv.get("source") else "") + "\n")
        conv_turns = turns[n] if turns and n < len(turns) else []
        by_turn: dict[int, list[dict]] = {}
        for f in findings:
            by_turn.setdefault(f["turn"], []).append(f)
        for turn, fs in sorted(by_turn.items()):
            role, text = conv_turns[turn] if turn < len(conv_turns) else ("agent", None)
            spans = [tuple(f["span"]) for f in fs]
            line = (
                mark(text, spans) if text is not None else " ".join(f"【{f['match']}】" for f in fs)
            )
            out.write(f"  第{turn + 1}句 {ROLE_NAMES.get(role, role)}: {line}\n")
            for f in fs:
                cat = CATEGORY_NAMES.get(f["category"], f["category"])
                lvl = LEVEL_NAMES.get(f["level"], f["level"])
                out.write(f"    [{lvl}] {cat}（{f['rule']}，{_cost(f, conv)}）: {f['message']}\n")
                out.write(f"      建议话术: {f['suggestion']}\n")
        if not findings:
            out.write("  未发现问题\n")
        out.write("\n")
    if report["agents"]:
        out.write("客服汇总\n")
        for a in report["agents"]:
            habits = "，".join(
                f"{CATEGORY_NAMES.get(h['category'], h['category'])}×{h['count']}"
                + (f"（{'/'.join(h['matches'])}）" if h["matches"] else "")
                for h in a["top_habits"]
            )
            out.write(
                f"  {a['agent']}: 平均分 {a['mean_score']}，会话 {a['conversations']}，"
                f"每百轮问题 {a['findings_per_100_turns']}"
                + (f"，常见问题: {habits}" if habits else "")
                + "\n"
            )
    unchecked: dict[tuple[str, str], int] = {}
    for conv in report["conversations"]:
        for n in conv["not_checkable"]:
            key = (n["rule"], n["reason"])
            unchecked[key] = unchecked.get(key, 0) + 1
    for (rule, reason), count in unchecked.items():
        out.write(f"未检查 {rule}: {count} 个会话（{reason}）\n")
    for e in report["errors"]:
        out.write(f"导入错误 {e['path']}:{e['line']}: {e['reason']}\n")
    s = report["summary"]
    out.write(
        f"共 {s['conversations']} 个会话，{s['findings']} 处问题，"
        f"平均分 {s['mean_score'] if s['mean_score'] is not None else '—'}，"
        f"导入错误 {s['errors']} 条\n"
    )
    return out.getvalue()


def finding_rows(report: dict, turns: list | None = None) -> list[list]:
    """One row per finding (the columns of FINDING_COLUMNS)."""
    rows = []
    for n, conv in enumerate(report["conversations"]):
        conv_turns = turns[n] if turns and n < len(turns) else []
        for f in conv["findings"]:
            text = conv_turns[f["turn"]][1] if f["turn"] < len(conv_turns) else ""
            rec = {
                "conversation": conv["id"],
                "agent": conv["agent"],
                "score": conv["score"],
                "start": f["span"][0],
                "end": f["span"][1],
                "text": text,
                **{k: f[k] for k in ("turn", "category", "rule", "level", "match")},
                **{k: f[k] for k in ("message", "suggestion", "deduction")},
            }
            rows.append([rec[key] for _, key in FINDING_COLUMNS])
    return rows


def to_csv(report: dict, turns: list | None = None) -> str:
    """Findings as CSV, one row per finding."""
    header = [name for name, _ in FINDING_COLUMNS]
    return "".join(csv_chunks(header, finding_rows(report, turns), bom=False))


def write_xlsx(report: dict, output: str, turns: list | None = None) -> None:
    """Workbook with sheets: findings, conversations, agents, import errors."""

    def conversations():
        for c in report["conversations"]:
            detail = "；".join(f"{rid}: -{b['deduction']}" for rid, b in c["breakdown"].items())
            unchecked = "；".join(f"{n['rule']}: {n['reason']}" for n in c["not_checkable"])
            yield [c["id"], c["agent"], c["score"], len(c["findings"]), detail, unchecked]

    def agents():
        for a in report["agents"]:
            habits = "；".join(f"{h['rule']}×{h['count']}" for h in a["top_habits"])
            yield [
                a["agent"],
                a["conversations"],
                a["agent_turns"],
                a["mean_score"],
                a["findings"],
                a["findings_per_100_turns"],
                habits,
            ]

    write_sheets(
        output,
        [
            ("问题明细", [name for name, _ in FINDING_COLUMNS], finding_rows(report, turns)),
            ("会话", ["会话ID", "客服", "得分", "问题数", "扣分明细", "未检查"], conversations()),
            (
                "客服",
                ["客服", "会话数", "客服发言数", "平均分", "问题数", "每百轮问题", "常见问题"],
                agents(),
            ),
            (
                "导入错误",
                ["文件", "行", "原因"],
                ([e["path"], e["line"], e["reason"]] for e in report["errors"]),
            ),
        ],
    )


Sheet = tuple[str, list[str], Iterable[list]]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_ROWS_PER_CHUNK = 200


def write_sheets(output, sheets: list[Sheet]) -> None:
    """An XLSX workbook (a path or a binary file) of (title, header, rows) sheets,
    written with openpyxl's write-only mode: rows go to disk as they come."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    for title, header, rows in sheets:
        ws = wb.create_sheet(title)
        ws.append(header)
        for row in rows:
            ws.append([_xlsx_cell(ws, v) for v in row])
    wb.save(output)


def _xlsx_cell(ws, v):
    v = _cell(v)
    if isinstance(v, str) and v.startswith("="):  # openpyxl would store it as a formula
        from openpyxl.cell import WriteOnlyCell

        cell = WriteOnlyCell(ws, value=v)
        cell.data_type = "s"
        return cell
    return v


def csv_cell(v):
    """A CSV value that no spreadsheet runs as a formula (a leading apostrophe)."""
    if isinstance(v, str) and v.startswith(FORMULA_START):
        return "'" + v
    return "" if v is None else v


def csv_chunks(header: list[str], rows: Iterable[list], *, bom: bool = True) -> Iterator[str]:
    """CSV text (the BOM first, for Excel, unless the file's encoding writes it) in
    pieces of CSV_ROWS_PER_CHUNK rows."""
    buf = io.StringIO()
    w = csv.writer(buf)
    if bom:
        buf.write("\ufeff")
    w.writerow([csv_cell(v) for v in header])
    for n, row in enumerate(rows, 1):
        w.writerow([csv_cell(v) for v in row])
        if n % CSV_ROWS_PER_CHUNK == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def _cell(v):
    """openpyxl rejects control characters; strip them from strings."""
    if isinstance(v, str):
        return "".join(ch for ch in v if ch >= " " or ch in "\t\n")[:32000]
    return v
