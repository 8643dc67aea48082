"""Fill a script's placeholders; missing values become marked prompts, never errors."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from scripts_lib.models import Script
from scripts_lib.template import split_template

PROMPT_OPEN = "【"
PROMPT_CLOSE = "】"
MISSING_CLASS = "ph-missing"
VALUE_CLASS = "ph-value"

# Control characters (except tab and newline) and bidi overrides have no place in a
# message pasted into a chat window; they can hide or reorder what the customer sees.
_UNSAFE_PLAIN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True, slots=True)
class Part:
    """One piece of rendered output: literal text, a filled value or a missing prompt."""

    kind: Literal["text", "value", "missing"]
    text: str
    name: str = ""

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return {"kind": self.kind, "text": self.text, "name": self.name}


@dataclass(frozen=True)
class Rendered:
    """A rendered script: the text, the names still missing and the pieces it is made of."""

    text: str
    missing: list[str] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every placeholder received a value."""
        return not self.missing

    def to_dict(self) -> dict:
        """The API shape: `{"text", "missing", "parts"}`."""
        return {
            "text": self.text,
            "missing": list(self.missing),
            "parts": [p.to_dict() for p in self.parts],
        }


def _value_text(value: object) -> str:
    """A value as inserted text; None and blank strings count as missing."""
    if value is None:
        return ""
    return str(value).strip()


def render(
    script_or_text: Script | str,
    values: Mapping[str, object] | None = None,
    *,
    prompts: Mapping[str, str] | None = None,
) -> Rendered:
    """Fill `{placeholders}` with `values`; extra keys are ignored, values never re-expanded."""
    if isinstance(script_or_text, Script):
        text = script_or_text.text
        all_prompts = {**script_or_text.prompts, **(prompts or {})}
    else:
        text = str(script_or_text or "")
        all_prompts = dict(prompts or {})
    values = values or {}
    parts: list[Part] = []
    missing: list[str] = []
    for seg in split_template(text):
        if not seg.is_placeholder:
            parts.append(Part("text", seg.text))
            continue
        value = _value_text(values.get(seg.name))
        if value:
            parts.append(Part("value", value, seg.name))
            continue
        prompt = all_prompts.get(seg.name) or f"请输入{seg.name}"
        parts.append(Part("missing", f"{PROMPT_OPEN}{prompt}{PROMPT_CLOSE}", seg.name))
        if seg.name not in missing:
            missing.append(seg.name)
    return Rendered("".join(p.text for p in parts), missing, parts)


def to_html(rendered: Rendered, *, mark_values: bool = False) -> str:
    """HTML-escaped text; missing prompts wrapped in `<span class="ph-missing">`."""
    out: list[str] = []
    for part in rendered.parts:
        body = html.escape(part.text, quote=True)
        name = html.escape(part.name, quote=True)
        if part.kind == "missing":
            out.append(f'<span class="{MISSING_CLASS}" data-placeholder="{name}">{body}</span>')
        elif part.kind == "value" and mark_values:
            out.append(f'<span class="{VALUE_CLASS}" data-placeholder="{name}">{body}</span>')
        else:
            out.append(body)
    return "".join(out)


def to_plain(
    rendered: Rendered, *, missing: Literal["prompt", "placeholder", "blank"] = "prompt"
) -> str:
    """Clipboard text: control and bidi characters removed, newlines normalised."""
    out: list[str] = []
    for part in rendered.parts:
        if part.kind != "missing" or missing == "prompt":
            out.append(part.text)
        elif missing == "placeholder":
            out.append("{" + part.name + "}")
    text = "".join(out).replace("\r\n", "\n").replace("\r", "\n")
    return _UNSAFE_PLAIN.sub("", text).strip()
