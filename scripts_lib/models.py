"""Domain records of the standard scripts library: Script, Scenario and their errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kb.errors import NotFound, ValidationError
from scripts_lib.template import placeholders

CHANNELS = ("online", "phone", "sms", "wechat", "qq")
CHANNEL_LABELS = {"online": "在线", "phone": "电话", "sms": "短信", "wechat": "微信", "qq": "QQ"}

# Finding categories of the coaching checker (see shared/data/LABELING.md), and their
# Chinese names.  The one list: coach depends on scripts_lib (never the other way), so
# coach's reports and pages take these names from here.
COACH_CATEGORIES = (
    "filler",
    "filler_opener",
    "vague",
    "improper",
    "wait_no_apology",
    "no_greeting",
    "no_closing",
    "slow_greeting",
    "slow_reply",
    "vulgar",
)
CATEGORY_LABELS = {
    "filler": "无意义回复",
    "filler_opener": "语气词开头",
    "vague": "模糊用语",
    "improper": "不当用语",
    "wait_no_apology": "等待未致歉",
    "no_greeting": "缺少问候",
    "no_closing": "缺少结束语",
    "slow_greeting": "首次响应慢",
    "slow_reply": "回复慢",
    "vulgar": "粗俗用语",
}


class ScriptDataError(ValidationError):
    """A problem in a scripts data file, located by file and line."""

    def __init__(
        self, message: str, *, path: str = "", line: int | None = None, script_id: str = ""
    ):
        self.script_id = script_id
        super().__init__(message, path=path, line=line)

    def to_dict(self) -> dict:
        """JSON-friendly form for the API and the CLI."""
        return {
            "path": self.path,
            "line": self.line,
            "script_id": self.script_id,
            "message": self.message,
            "error": str(self),
        }


class ScriptNotFound(NotFound):
    """No script (or scenario) with the requested id."""


@dataclass(frozen=True)
class Scenario:
    """A group of scripts for one service situation (one data file)."""

    name: str
    title: str
    description: str = ""
    order: int = 1000
    source: str = ""

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return {"name": self.name, "title": self.title, "description": self.description}


@dataclass(frozen=True)
class Script:
    """One standard phrasing with placeholders, fill-in prompts and a shortcut code."""

    id: str
    scenario: str
    title: str
    text: str
    shortcut: str
    channels: tuple[str, ...]
    prompts: Mapping[str, str] = field(default_factory=dict, hash=False)
    tags: tuple[str, ...] = ()
    replaces: tuple[str, ...] = ()
    source: str = ""
    line: int | None = None
    origin: str = "builtin"

    @property
    def placeholders(self) -> list[str]:
        """Placeholder names in order of first appearance in the text."""
        return placeholders(self.text)

    @property
    def is_builtin(self) -> bool:
        """True for the shared scripts shipped with the package."""
        return self.origin == "builtin"

    def prompt_for(self, name: str) -> str:
        """The fill-in prompt shown for a placeholder that has no value."""
        return self.prompts.get(name) or f"请输入{name}"

    def index_text(self) -> str:
        """Everything a search index should see, one field per line."""
        return "\n".join([self.title, self.text, " ".join(self.tags), self.shortcut])

    def to_dict(self) -> dict:
        """JSON-friendly form for the API and the search index."""
        return {
            "id": self.id,
            "scenario": self.scenario,
            "title": self.title,
            "text": self.text,
            "placeholders": [
                {"name": name, "prompt": self.prompt_for(name)} for name in self.placeholders
            ],
            "shortcut": self.shortcut,
            "channels": list(self.channels),
            "tags": list(self.tags),
            "replaces": list(self.replaces),
            "origin": self.origin,
        }
