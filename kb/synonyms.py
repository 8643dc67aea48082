"""The project synonym dictionary (kb/data/synonyms.txt)."""

from __future__ import annotations

from functools import lru_cache

from . import textproc


@lru_cache(maxsize=1)
def groups() -> dict[str, tuple[str, ...]]:
    """Each word mapped to the other words of its group (normalised)."""
    table: dict[str, tuple[str, ...]] = {}
    for line in (textproc._DATA / "synonyms.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        words = list(dict.fromkeys(textproc.normalize(w) for w in line.split()))
        for w in words:
            others = tuple(o for o in words if o != w)
            table[w] = tuple(dict.fromkeys(table.get(w, ()) + others))
    return table


def expand(words: list[str]) -> list[str]:
    """Synonyms of the given words that are not already among them."""
    table = groups()
    seen = set(words)
    out: list[str] = []
    for w in words:
        for o in table.get(w, ()):
            if o not in seen:
                seen.add(o)
                out.append(o)
    return out
