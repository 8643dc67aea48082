"""Readable article ids from titles: 以旧换新怎么办理 → product-yijiuhuanxin-zenme-banli.

Each jieba word of the title becomes its pinyin (Latin letters and digits stay as they
are, lower case), words joined by hyphens, the category in front as the starter ids
have it; the id is made unique against the stored ones without regard to case
(-2, -3, … appended), as `save_article` requires.
"""

from __future__ import annotations

import re

from . import textproc
from .models import CATEGORIES

SLUG_MAX = 64  # characters of the part made from the title
ID_MAX = 128
ASCII_RUN = re.compile(r"[a-z0-9]+")
FALLBACK = "article"
MAX_TRIES = 1000


def _cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


def slugify(title: str) -> str:
    """The title as lower-case pinyin words and Latin words joined by hyphens."""
    from pypinyin import Style, lazy_pinyin

    words: list[str] = []
    for tok in textproc.tokenize((title or "")[:200], hmm=False):
        text = tok.text  # normalised: half width, lower case, simplified
        if any(_cjk(ch) for ch in text):
            run = "".join(lazy_pinyin(text, style=Style.NORMAL, errors="ignore"))
            # a word may mix characters and Latin letters (花bei): keep both, in order
            words.extend(ASCII_RUN.findall(run.lower()))
        else:
            words.extend(ASCII_RUN.findall(text))
    slug = ""
    for word in words:
        longer = f"{slug}-{word}" if slug else word
        if len(longer) > SLUG_MAX:
            break
        slug = longer
    return slug or (words[0][:SLUG_MAX] if words else "")


def propose_id(store, title: str, category: str = "") -> str:
    """A unique id for a new article with this title (and category)."""
    slug = slugify(title) or FALLBACK
    prefix = f"{category}-" if category in CATEGORIES and not slug.startswith(category) else ""
    base = f"{prefix}{slug}"[: ID_MAX - 5]
    if store.id_taken(base) is None:
        return base
    for n in range(2, MAX_TRIES):
        candidate = f"{base}-{n}"
        if store.id_taken(candidate) is None:
            return candidate
    raise RuntimeError("no free article id")  # a thousand articles with one title
