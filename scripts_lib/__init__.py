"""Standard scripts library: scenario scripts with placeholders, prompts and shortcuts."""

from scripts_lib.library import DATA_DIR, Library, load_library
from scripts_lib.models import (
    CATEGORY_LABELS,
    CHANNEL_LABELS,
    CHANNELS,
    COACH_CATEGORIES,
    Scenario,
    Script,
    ScriptDataError,
    ScriptNotFound,
)
from scripts_lib.render import Part, Rendered, render, to_html, to_plain

__all__ = [
    "CATEGORY_LABELS",
    "CHANNELS",
    "CHANNEL_LABELS",
    "COACH_CATEGORIES",
    "DATA_DIR",
    "Library",
    "Part",
    "Rendered",
    "Scenario",
    "Script",
    "ScriptDataError",
    "ScriptNotFound",
    "load_library",
    "render",
    "to_html",
    "to_plain",
]
