"""The coach's link to the scripts library: the standard script for a finding.

Kept apart from `scripts_lib.usage` (which stores usage in the database) so that a
checker, which never opens a database, does not import the storage layer.
"""

from __future__ import annotations

from functools import lru_cache

from kb.textproc import normalize
from scripts_lib.library import Library, load_library
from scripts_lib.render import render, to_plain


@lru_cache(maxsize=1)
def default_library() -> Library:
    """The shared library, loaded once on first use (never at import time)."""
    return load_library()


def suggestion_for(
    category: str, match_text: str = "", *, library: Library | None = None
) -> dict | None:
    """The standard script for a coach finding: `{"script_id", "text"}` or None.

    An exact `replaces` entry for the flagged words wins, then the finding's category,
    then the longest known phrase inside the flagged words.  With a category, only
    the scripts that name it in `replaces` are considered: the words of one kind of
    finding are not answered by a script written for another (None: the rule's own
    suggestion stands alone).
    """
    lib = library if library is not None else default_library()
    by_phrase = None
    if match_text:
        fits = lib.replacing_all(match_text)
        if category:
            tagged = {s.id for s in lib.replacing_all(category)}
            fits = [s for s in fits if s.id in tagged]
        by_phrase = fits[0] if fits else None
    key = normalize(match_text.strip()).lower()
    exact = by_phrase is not None and key in {normalize(r).lower() for r in by_phrase.replaces}
    script = by_phrase if exact else None
    if script is None and category:
        script = lib.replacing(category)
    script = script or by_phrase
    if script is None:
        return None
    return {"script_id": script.id, "text": to_plain(render(script))}
