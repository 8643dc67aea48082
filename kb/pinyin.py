"""Pinyin keys for agents who type `tk`, `tuikuan` or `花bei` instead of 退款 / 花呗.

pypinyin is imported on first use only, so plain Chinese queries never pay for it.
"""

from __future__ import annotations

import re
from functools import lru_cache

from . import textproc

CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
ASCII_WORD = re.compile(r"[a-z]+")
MAX_PREFIX = 16


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


@lru_cache(maxsize=65536)
def syllables(text: str) -> tuple[str, ...]:
    """One item per character: pinyin for CJK, the character itself for a-z/0-9."""
    from pypinyin import Style, lazy_pinyin

    norm = textproc.normalize(text)
    out: list[str] = []
    pos = 0
    for m in CJK_RUN.finditer(norm):
        out.extend(ch for ch in norm[pos : m.start()] if ch.isascii() and ch.isalnum())
        out.extend(lazy_pinyin(m.group(), style=Style.NORMAL, errors="ignore"))
        pos = m.end()
    out.extend(ch for ch in norm[pos:] if ch.isascii() and ch.isalnum())
    return tuple(out)


def initials(text: str) -> str:
    return "".join(s[0] for s in syllables(text) if s)


def full(text: str) -> str:
    return "".join(syllables(text))


def index_keys(texts: list[str]) -> list[str]:
    """Keys of the `py` field: each word's full pinyin and initials, and the
    prefixes of each whole text's initials (so `tkdj` finds 退款多久到账)."""
    keys: dict[str, None] = {}
    for text in texts:
        if not CJK_RUN.search(textproc.normalize(text)):
            continue
        for tok in textproc.tokenize(text, mode="search"):  # 发票 inside 电子发票 too
            if any(_is_cjk(ch) for ch in tok.text):
                keys.setdefault(full(tok.text), None)
                if len(tok.text) > 1:
                    keys.setdefault(initials(tok.text), None)
        ini = initials(text)
        for n in range(2, min(len(ini), MAX_PREFIX) + 1):
            keys.setdefault(ini[:n], None)
    return [k for k in keys if k]


def query_keys(query: str) -> list[str]:
    """Pinyin keys of a query that holds latin letters (`fp`, `tuikuan`, `花bei`)."""
    norm = textproc.normalize(query)
    if not ASCII_WORD.search(norm):
        return []
    keys: dict[str, None] = {}
    for part in re.split(r"[\s,，。？?!！、]+", norm):
        if not ASCII_WORD.search(part):
            continue
        keys.setdefault(full(part), None)
    return [k for k in keys if len(k) >= 2][:8]


def homophone_keys(words: list[str]) -> list[str]:
    """Full pinyin of Chinese words, to match a homophone typo (花被 for 花呗)."""
    return list(dict.fromkeys(full(w) for w in words if len(w) > 1 and CJK_RUN.fullmatch(w)))
