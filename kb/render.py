"""Article Markdown to safe HTML, and the standard wordings agents copy."""

from __future__ import annotations

import re

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


def render_markdown(text: str) -> str:
    """Markdown to HTML, then sanitised (no script, no event handlers, safe links)."""
    raw = markdown.markdown(
        text, extensions=["tables", "fenced_code", "sane_lists"], output_format="html"
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


def standard_wordings(text: str) -> list[str]:
    """The blockquote lines of an article: its standard wording, one per paragraph."""
    out: list[str] = []
    current: list[str] = []
    in_code = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            in_code = not in_code
        if not in_code and stripped.startswith(">"):
            content = stripped.lstrip(">").strip()
            if content:
                current.append(content)
                continue
        if current:
            out.append("".join(current))
            current = []
    if current:
        out.append("".join(current))
    return [re.sub(r"\*\*|__|`", "", w) for w in out]


def placeholders(text: str) -> list[str]:
    """Placeholder names such as 客户称呼 in `{客户称呼}`, in order, unique."""
    seen: dict[str, None] = {}
    for name in PLACEHOLDER_RE.findall(text):
        seen.setdefault(name, None)
    return list(seen)
