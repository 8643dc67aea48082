"""Differences between two versions of a text, readable in Chinese.

Lines are matched first (difflib over lines, so a long article costs little); inside a
block of changed lines the characters are matched (Latin words whole), so 七天 → 十五天
shows as 七 → 十五,
not as a whole line removed and another added.  Chinese has no spaces to cut words at,
and jieba's words are too coarse here (the project dictionary holds 七天无理由退货 as one
word); a one-character match between two changes is folded into the change instead, so
a change reads as words rather than as confetti.  The result is a list of operations
``("=" | "-" | "+", text)`` and their HTML (``<del>`` / ``<ins>``, every text escaped).
"""

from __future__ import annotations

import difflib
import html
import re

Op = tuple[str, str]
UNIT = re.compile(r"[A-Za-z0-9_]+|.", re.S)
CHAR_DIFF_MAX = 5000  # characters per side of a changed block compared character by character
SHORT_MATCH = 1  # unchanged runs this short between two changes are shown as changed

FIELD_LABELS = {
    "title": "标题",
    "category": "分类",
    "status": "状态",
    "owner": "负责人",
    "review_by": "复审日期",
    "tags": "标签",
    "similar": "相似问法",
    "body": "正文",
}


def _merge(ops: list[Op]) -> list[Op]:
    """Adjacent operations of one kind joined; empty ones dropped."""
    out: list[Op] = []
    for kind, text in ops:
        if not text:
            continue
        if out and out[-1][0] == kind:
            out[-1] = (kind, out[-1][1] + text)
        else:
            out.append((kind, text))
    return out


def _regroup(ops: list[Op]) -> list[Op]:
    """Each run of changes as one removal then one insertion, in reading order."""
    out: list[Op] = []
    removed, added = [], []
    for kind, text in ops + [("=", "")]:
        if kind == "-":
            removed.append(text)
        elif kind == "+":
            added.append(text)
        else:
            out += [("-", "".join(removed)), ("+", "".join(added)), ("=", text)]
            removed, added = [], []
    return _merge(out)


def units(text: str) -> list[str]:
    """What a change is made of: each Chinese character (or other symbol) alone, and
    each run of Latin letters, digits and _ as one word."""
    return UNIT.findall(text)


def _chars(old: str, new: str) -> list[Op]:
    """Operations over units (characters; Latin words whole); an unchanged run of one
    character between two changes (a coincidental 的 or 。) is taken into the change,
    so changes read as words rather than as confetti."""
    if len(old) > CHAR_DIFF_MAX or len(new) > CHAR_DIFF_MAX:
        return [("-", old), ("+", new)]
    a, b = units(old), units(new)
    ops: list[Op] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            ops.append(("=", "".join(a[i1:i2])))
        else:
            ops += [("-", "".join(a[i1:i2])), ("+", "".join(b[j1:j2]))]
    ops = _merge(ops)
    absorbed: list[Op] = []
    for i, (kind, text) in enumerate(ops):
        inner = 0 < i < len(ops) - 1 and ops[i - 1][0] != "=" and ops[i + 1][0] != "="
        if kind == "=" and inner and len(text) <= SHORT_MATCH and "\n" not in text:
            absorbed += [("-", text), ("+", text)]
        else:
            absorbed.append((kind, text))
    return _regroup(absorbed)


def diff_ops(old: str, new: str) -> list[Op]:
    """Operations turning `old` into `new`: unchanged lines kept whole, changed lines
    compared character by character."""
    if old == new:
        return [("=", old)] if old else []
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    ops: list[Op] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            ops.append(("=", "".join(a[i1:i2])))
        elif tag == "delete":
            ops.append(("-", "".join(a[i1:i2])))
        elif tag == "insert":
            ops.append(("+", "".join(b[j1:j2])))
        else:
            ops.extend(_chars("".join(a[i1:i2]), "".join(b[j1:j2])))
    return _merge(ops)


def ops_html(ops: list[Op]) -> str:
    """The operations as HTML: removed text in <del>, added text in <ins>, all escaped."""
    parts = []
    for kind, text in ops:
        shown = html.escape(text)
        if kind == "-":
            parts.append(f"<del>{shown}</del>")
        elif kind == "+":
            parts.append(f"<ins>{shown}</ins>")
        else:
            parts.append(shown)
    return "".join(parts)


def field_text(value) -> str:
    """A field's value as compared: lists one item a line."""
    if isinstance(value, list | tuple):
        return "\n".join(str(v) for v in value)
    return "" if value is None else str(value)


def article_diff(old, new) -> list[dict]:
    """The fields that differ between two articles (objects with the article fields):
    [{"field", "label", "ops", "html"}], in the editor's order."""
    out = []
    for name, label in FIELD_LABELS.items():
        before, after = field_text(getattr(old, name)), field_text(getattr(new, name))
        if before == after:
            continue
        ops = diff_ops(before, after)
        out.append(
            {"field": name, "label": label, "ops": [list(op) for op in ops], "html": ops_html(ops)}
        )
    return out
