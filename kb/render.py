"""Article Markdown to safe HTML, and the standard wordings agents copy."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import lru_cache

import markdown
import nh3

ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "strong",
    "em",
    "b",
    "i",
    "del",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "a",
    "span",
    "mark",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}
PLACEHOLDER_RE = re.compile(r"\{([^{}\s]{1,20})\}")


# python-markdown's inline processing is slow on dense markup and about n² in the
# marks of one paragraph (each match rebuilds the paragraph's text; each unclosed "["
# is matched against the rest): 3,000 "[" took 5 s and 50,000 never ended; a body of
# 1 MB of "**a** " took 11 s where 1 MB of prose takes 0.5 s. Real articles hold a few
# hundred marks, so past the bounds (per paragraph, and for the whole body) paragraphs
# are shown as written (plain text, escaped): the cost stays near prose's.
MAX_MARKS_PER_PARAGRAPH = 400
MAX_MARKS_PER_TABLE = 4000  # table cells count as marks: each is inline-processed
MAX_MARKS = 5000
_MARKS = re.compile(r"[\[\]*_`<&\\!]")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_TABLE_RULE = re.compile(r"\A[^\n]*\|[^\n]*\n[ \t]*\|?[ \t]*:?-+")


def _defuse(text: str) -> str:
    if len(_MARKS.findall(text)) + text.count("|") <= MAX_MARKS_PER_PARAGRAPH:
        return text
    out = []
    fenced = False
    budget = MAX_MARKS
    for para in _PARAGRAPH_BREAK.split(text):
        if para.lstrip().startswith(("```", "~~~")) or fenced:
            # code is not inline-processed; a fence may span blank lines
            fenced = (para.count("```") + para.count("~~~")) % 2 == (0 if fenced else 1)
            out.append(para)
            continue
        marks = len(_MARKS.findall(para)) + para.count("|")
        bound = MAX_MARKS_PER_TABLE if _TABLE_RULE.match(para.lstrip()) else MAX_MARKS_PER_PARAGRAPH
        if marks > bound or marks > budget:
            budget = 0  # the rest of the body stays plain too: no cheap tail to save
            out.append("<p>" + html.escape(para.strip()).replace("\n", "<br>") + "</p>")
        else:
            budget -= marks
            out.append(para)
    return "\n\n".join(out)


@lru_cache(maxsize=512)
def render_markdown(text: str) -> str:
    """Markdown to HTML, then sanitised (no script, no event handlers, safe links).
    Kept for the last 512 texts: an article page renders its body once, not per view."""
    raw = markdown.markdown(
        _defuse(text),
        extensions=["tables", "fenced_code", "sane_lists"],
        output_format="html",
    )
    return nh3.clean(
        raw,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )


def without_title_heading(body: str, title: str) -> str:
    """Drop a leading `# <title>` line: pages already show the title."""
    lines = body.lstrip("\n").split("\n", 1)
    if lines and lines[0].lstrip("#").strip() == title.strip() and lines[0].startswith("#"):
        return lines[1] if len(lines) > 1 else ""
    return body


@dataclass(frozen=True)
class Wording:
    """One standard wording of an article body: its text (emphasis marks dropped) and,
    for each of its characters, the 1-based (line, column) of the body it came from."""

    text: str
    positions: tuple[tuple[int, int], ...]

    @property
    def line(self) -> int:
        return self.positions[0][0] if self.positions else 0

    def where(self, offset: int) -> tuple[int, int]:
        """Body (line, column) of the character at `offset` (the end: the last one's)."""
        if not self.positions:
            return (0, 0)
        return self.positions[min(max(offset, 0), len(self.positions) - 1)]


_EMPHASIS = re.compile(r"\*\*|__|`")


def wordings_with_lines(text: str) -> list[Wording]:
    """The standard wordings of an article body, where they are.

    A standard wording is a blockquote paragraph outside fenced code: consecutive
    lines starting with ">" (nested ">>" too), joined without a separator; an empty
    ">" line or any other line ends it.  `**`, `__` and backticks are dropped from its
    text.  This is what the article page offers agents to copy, and what the phrasing
    lint checks (kb/phrasing_lint.py)."""
    out: list[Wording] = []
    chars: list[str] = []
    where: list[tuple[int, int]] = []

    def close() -> None:
        if chars:
            out.append(Wording("".join(chars), tuple(where)))
            chars.clear()
            where.clear()

    in_code = False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            in_code = not in_code
        if not in_code and stripped.startswith(">"):
            start = line.index(">")
            while start < len(line) and line[start] in "> \t":
                start += 1
            content = line[start:].rstrip()
            if content.strip():
                # column of every kept character; emphasis marks are skipped
                pos = 0
                for m in _EMPHASIS.finditer(content):
                    for i in range(pos, m.start()):
                        chars.append(content[i])
                        where.append((number, start + i + 1))
                    pos = m.end()
                for i in range(pos, len(content)):
                    chars.append(content[i])
                    where.append((number, start + i + 1))
                continue
        close()
    close()
    return out


def standard_wordings(text: str) -> list[str]:
    """The blockquote lines of an article: its standard wording, one per paragraph."""
    return [w.text for w in wordings_with_lines(text)]


def placeholders(text: str) -> list[str]:
    """Placeholder names such as 客户称呼 in `{客户称呼}`, in order, unique."""
    seen: dict[str, None] = {}
    for name in PLACEHOLDER_RE.findall(text):
        seen.setdefault(name, None)
    return list(seen)
