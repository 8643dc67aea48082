"""Reading an .xlsx export as a table of rows (then read like CSV), and telling
apart the files no importer reads (HTML pages, PDFs, images, Word/old Excel files).

The workbook is opened with openpyxl in read-only mode, after checking the zip's
uncompressed size (`MAX_XLSX_BYTES`): a small file can expand a thousandfold. The
first sheet whose first row names a content column is read; at most
`MAX_TABLE_ROWS` rows and `MAX_TABLE_COLUMNS` columns.
"""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime, time

from .limits import MAX_TABLE_COLUMNS, MAX_TABLE_ROWS, MAX_XLSX_BYTES
from .transcripts import ImportIssue

UNSUPPORTED_ADVICE = "请导出为 TXT/CSV/JSON"
_MAGIC = (
    (b"%PDF", "PDF 文件"),
    (b"\x89PNG", "图片"),
    (b"\xff\xd8\xff", "图片"),
    (b"GIF8", "图片"),
    (b"\xd0\xcf\x11\xe0", "旧版 Office 文件（.xls/.doc）"),
    (b"Rar!", "压缩包"),
    (b"7z\xbc\xaf", "压缩包"),
)
_HTML_STARTS = ("<!doctype html", "<html", "<head", "<body", "<meta", "<table", "<div", "<?xml")


def is_xlsx(data: bytes) -> bool:
    """A zip holding a workbook."""
    if not data.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return "xl/workbook.xml" in z.namelist()
    except zipfile.BadZipFile:
        return False


def unsupported_kind(data: bytes, name: str = "") -> str | None:
    """What an unreadable file is (Chinese), or None when an importer may read it."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data.startswith(b"PK\x03\x04") and not is_xlsx(data):
        return "压缩包或 Word 文件"
    if name.lower().endswith((".bmp", ".webp", ".jpg", ".jpeg", ".png", ".gif")):
        return "图片"
    return None


def looks_like_html(text: str) -> bool:
    """Does the decoded text start like an HTML (or XML) page?"""
    head = text[:2000].lstrip("\ufeff \t\r\n").lower()
    return head.startswith(_HTML_STARTS)


def unsupported_issue(path: str, kind: str) -> ImportIssue:
    return ImportIssue(path, 0, f"不支持的格式：{kind}，{UNSUPPORTED_ADVICE}")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def xlsx_rows(data: bytes, path: str, issues: list[ImportIssue], header_ok=None):
    """(row number, cells) of the first sheet whose header `header_ok` accepts (or the
    first sheet); an unreadable or oversized workbook becomes an issue."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            size = sum(i.file_size for i in z.infolist())
    except zipfile.BadZipFile:
        issues.append(ImportIssue(path, 0, "XLSX 文件已损坏，无法读取"))
        return
    if size > MAX_XLSX_BYTES:
        issues.append(
            ImportIssue(
                path,
                0,
                f"XLSX 文件解压后过大（超过 {MAX_XLSX_BYTES // 1024 // 1024} MB），请拆分或导出为 CSV",
            )
        )
        return
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds on a bad file
        issues.append(ImportIssue(path, 0, f"XLSX 文件无法读取：{type(exc).__name__}"))
        return
    try:
        sheets = book.worksheets
        chosen = sheets[0] if sheets else None
        if header_ok is not None:
            for sheet in sheets:
                first = next(
                    sheet.iter_rows(max_row=1, max_col=MAX_TABLE_COLUMNS, values_only=True), ()
                )
                if header_ok([_cell(v) for v in first]):
                    chosen = sheet
                    break
        if chosen is None:
            return
        width = 0
        for n, row in enumerate(chosen.iter_rows(max_col=MAX_TABLE_COLUMNS, values_only=True), 1):
            if n > MAX_TABLE_ROWS:
                issues.append(
                    ImportIssue(
                        path, n, f"表格超过 {MAX_TABLE_ROWS} 行，其余的行没有读取，请拆分后再导入"
                    )
                )
                return
            cells = [_cell(v) for v in row]
            if n == 1:  # read-only sheets pad rows to the widest one: cut to the header
                while cells and cells[-1] == "":
                    cells.pop()
                width = len(cells)
            cells = (cells + [""] * width)[:width]
            yield n, cells
    finally:
        book.close()
