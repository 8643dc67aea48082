"""Placeholder syntax of script texts: `{名称}`; any other brace is literal text."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A name starts with a letter (CJK counts) or underscore; digits and letters may follow.
# `{1}`, `{ 订单号 }`, `{`, `}}` and `{未闭合` are not placeholders and stay as they are.
PLACEHOLDER_RE = re.compile(r"\{([^\W\d]\w{0,31})\}")


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of literal text, or one placeholder (`name` set, `text` the raw `{name}`)."""

    text: str
    name: str = ""

    @property
    def is_placeholder(self) -> bool:
        """True when this segment is a `{name}` placeholder."""
        return bool(self.name)


def split_template(text: str) -> list[Segment]:
    """Split a script text into literal runs and placeholders, in order."""
    segments: list[Segment] = []
    pos = 0
    for m in PLACEHOLDER_RE.finditer(text):
        if m.start() > pos:
            segments.append(Segment(text[pos : m.start()]))
        segments.append(Segment(m.group(0), m.group(1)))
        pos = m.end()
    if pos < len(text):
        segments.append(Segment(text[pos:]))
    return segments


def placeholders(text: str) -> list[str]:
    """Placeholder names in order of first appearance, without repeats."""
    return list(dict.fromkeys(m.group(1) for m in PLACEHOLDER_RE.finditer(text)))


def stray_braces(text: str) -> list[str]:
    """Brace fragments that are not valid placeholders (likely typos in a data file)."""
    rest = PLACEHOLDER_RE.sub("", text)
    return re.findall(r"\{[^{}]{0,12}\}?|\}", rest)
