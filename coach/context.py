"""Per-conversation state shared by the checks: text views, role lookups, hits."""

from __future__ import annotations

from dataclasses import dataclass

from .textview import Segmenter, TextView, segmenter_for
from .transcripts import Conversation


class NotCheckable(Exception):
    """The check cannot run on this conversation (the reason is Chinese)."""


@dataclass(frozen=True, slots=True)
class Hit:
    """Where a rule fired: turn index and [start, end) in that turn's text."""

    turn: int
    start: int
    end: int
    note: str = ""


class ConvContext:
    """One conversation with lazily built text views and role lookups."""

    def __init__(self, conv: Conversation, segmenter: Segmenter | None = None) -> None:
        self.conv = conv
        self.seg = segmenter if segmenter is not None else segmenter_for()
        self.turns = conv.turns
        self._views: list[TextView | None] = [None] * len(conv.turns)
        self.agent = [i for i, t in enumerate(conv.turns) if t.role == "agent"]
        self.target: int | None = None  # check only this turn (live reply check)

    def view(self, i: int) -> TextView:
        """The (shared, lazily segmented) view of turn i."""
        v = self._views[i]
        if v is None:
            v = self._views[i] = self.seg.view(self.turns[i].text)
        return v

    def norm(self, i: int) -> str:
        """Normalised text of turn i."""
        return self.view(i).norm

    def scope(self, scope: str) -> list[int]:
        """Turn indices a rule with this scope looks at (only the draft when live)."""
        if scope == "agent":
            turns = self.agent
        elif scope == "customer":
            turns = [i for i, t in enumerate(self.turns) if t.role == "customer"]
        else:
            turns = list(range(len(self.turns)))
        if self.target is not None:
            return [self.target] if self.target in turns else []
        return turns

    def nearest(self, i: int, role: str, step: int) -> int | None:
        """Index of the nearest turn of `role` before (step -1) or after (+1) turn i."""
        j = i + step
        while 0 <= j < len(self.turns):
            if self.turns[j].role == role:
                return j
            j += step
        return None
