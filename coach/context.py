"""Per-conversation state shared by the checks: text views, role lookups, hits."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .textview import Segmenter, TextView, segmenter_for
from .transcripts import Conversation

clock = time.thread_time  # CPU time of this thread: other load does not eat the budget


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

    def __init__(
        self,
        conv: Conversation,
        seconds: float | None = None,
        segmenter: Segmenter | None = None,
    ) -> None:
        self.conv = conv
        self.seg = segmenter if segmenter is not None else segmenter_for()
        # CPU time of this thread after which every check stops (None: no limit)
        self.deadline = None if seconds is None else clock() + seconds
        self.seconds = seconds
        self.stopped_at: int | None = None  # the turn the current check stopped at
        self.turns = conv.turns
        self._views: list[TextView | None] = [None] * len(conv.turns)
        self.agent = [i for i, t in enumerate(conv.turns) if t.role == "agent"]
        self.target: int | None = None  # check only this turn (live reply check)
        self._nearest: dict[tuple[str, int], list[int | None]] = {}

    def view(self, i: int) -> TextView:
        """The (shared, lazily segmented) view of turn i."""
        v = self._views[i]
        if v is None:
            v = self._views[i] = self.seg.view(self.turns[i].text)
        return v

    def norm(self, i: int) -> str:
        """Normalised text of turn i."""
        return self.view(i).norm

    def scope(self, scope: str) -> Iterable[int]:
        """Turn indices a rule with this scope looks at (only the draft when live).
        Past the deadline the iteration ends early and `stopped_at` names the turn."""
        if scope == "agent":
            turns = self.agent
        elif scope == "customer":
            turns = [i for i, t in enumerate(self.turns) if t.role == "customer"]
        else:
            turns = list(range(len(self.turns)))
        if self.target is not None:
            turns = [self.target] if self.target in turns else []
        return turns if self.deadline is None else self._until_deadline(turns)

    def _until_deadline(self, turns: list[int]) -> Iterator[int]:
        # the clock is read every 8th turn (a read costs about as much as checking a
        # short turn whose result is cached); the caller read it just before the first
        for k, i in enumerate(turns):
            if k & 7 == 7 and clock() > self.deadline:
                self.stopped_at = i
                return
            yield i

    def expired(self) -> bool:
        """Is the deadline past?"""
        return self.deadline is not None and clock() > self.deadline

    def nearest(self, i: int, role: str, step: int) -> int | None:
        """Index of the nearest turn of `role` before (step -1) or after (+1) turn i
        (from arrays built once per role and direction: no scan per call)."""
        table = self._nearest.get((role, step))
        if table is None:
            table = self._nearest[(role, step)] = _nearest_table(self.turns, role, step)
        j = i + step
        return table[j] if 0 <= j < len(self.turns) else None


def _nearest_table(turns: list, role: str, step: int) -> list[int | None]:
    """table[j]: the first turn of `role` at j or beyond it in direction `step`."""
    table: list[int | None] = [None] * len(turns)
    last = None
    order = range(len(turns)) if step < 0 else range(len(turns) - 1, -1, -1)
    for j in order:
        if turns[j].role == role:
            last = j
        table[j] = last
    return table
