"""Shared Chinese text pipeline: normalisation, segmentation, offsets.

Search and coach both go through this module so that a word the knowledge
base knows is a word the checker knows.  Normalisation is length-preserving
(one code point in, one code point out), so offsets computed on normalised
text are valid offsets into the original text.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

_DATA = resources.files("kb") / "data"

_lock = threading.Lock()
_tokenizer = None


@dataclass(frozen=True, slots=True)
class Token:
    """One segmented word with code-point offsets into the source text."""

    text: str
    start: int
    end: int


def _opencc_ts_table() -> dict[int, str]:
    """Traditional to simplified single-character map from OpenCC's data file."""
    try:
        import opencc  # opencc-python-reimplemented ships the plain-text dictionaries
    except ImportError:  # pragma: no cover - dependency is pinned
        return {}
    path = Path(opencc.__file__).parent / "dictionary" / "TSCharacters.txt"
    table: dict[int, str] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 2:
                continue
            src, targets = parts
            target = targets.split(" ")[0]
            if len(src) == 1 and len(target) == 1 and src != target:
                table[ord(src)] = target
    return table


@lru_cache(maxsize=1)
def _normal_table() -> dict[int, str]:
    table = _opencc_ts_table()
    # Full-width ASCII variants (！ to ～) to their half-width forms.
    for cp in range(0xFF01, 0xFF5F):
        table[cp] = chr(cp - 0xFEE0)
    table[0x3000] = " "  # ideographic space
    for cp in range(ord("A"), ord("Z") + 1):
        table[cp] = chr(cp + 32)
    for cp in range(0xFF21, 0xFF3B):  # full-width A-Z straight to lower case
        table[cp] = chr(cp - 0xFEE0 + 32)
    return table


def normalize(text: str) -> str:
    """Full/half width, ASCII case and traditional to simplified; keeps length."""
    return text.translate(_normal_table())


def _load_words(name: str) -> list[str]:
    words = []
    for line in (_DATA / name).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            words.append(line)
    return words


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """Function words that carry no meaning for retrieval."""
    return frozenset(_load_words("stopwords.txt"))


def user_dictionary() -> list[tuple[str, int | None, str | None]]:
    """Project domain words: `word [freq] [tag]` per line of kb/data/userdict.txt."""
    entries = []
    for line in _load_words("userdict.txt"):
        parts = line.split()
        freq = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        tag = parts[2] if len(parts) > 2 else None
        entries.append((parts[0], freq, tag))
    return entries


def synonym_words() -> list[str]:
    """Every word of the synonym file, so each one segments as a unit."""
    words = []
    for line in _load_words("synonyms.txt"):
        words.extend(normalize(w) for w in line.split())
    return words


def _import_jieba():
    """Import jieba without pkg_resources (0.1-0.2 s of start-up): jieba falls back to
    plain file paths when it is missing, as it is on setuptools >= 81 anyway."""
    import sys

    if "jieba" in sys.modules or "pkg_resources" in sys.modules:
        import jieba

        return jieba
    sys.modules["pkg_resources"] = None  # makes `import pkg_resources` raise ImportError
    try:
        import jieba
    finally:
        del sys.modules["pkg_resources"]
    return jieba


def get_tokenizer():
    """The process-wide jieba tokenizer with the project's user dictionary."""
    global _tokenizer
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                import logging

                jieba = _import_jieba()

                jieba.setLogLevel(logging.WARNING)
                tok = jieba.Tokenizer()
                tok.initialize()
                for word, freq, tag in user_dictionary():
                    tok.add_word(normalize(word), freq, tag)
                for word in synonym_words():
                    # Only words jieba would shred into single characters (退钱, 到帐):
                    # a compound such as 蚂蚁花呗 already matches through its parts.
                    if len(word) > 1 and all(len(w) == 1 for w in tok.cut(word, HMM=False)):
                        tok.add_word(word, 1000)
                _tokenizer = tok
    return _tokenizer


def tokenizer_with(words: frozenset[str]):
    """A tokenizer that knows `words` besides the shared dictionary, for the coach's
    rule vocabulary.  Search's tokenizer (get_tokenizer) is never changed: its analysis
    must stay the index's.  Built from a copy of the shared dictionary (~15 MB, tens of
    ms) and kept for the few vocabularies a process uses (one per rule-pack version)."""
    if not words:
        return get_tokenizer()
    return _derived_tokenizer(frozenset(words))


@lru_cache(maxsize=3)
def _derived_tokenizer(words: frozenset[str]):
    base = get_tokenizer()
    jieba = _import_jieba()
    tok = jieba.Tokenizer()
    with _lock:
        tok.FREQ = dict(base.FREQ)
        tok.total = base.total
        tok.user_word_tag_tab = dict(base.user_word_tag_tab)
    tok.initialized = True
    for w in sorted(words):  # sorted: the same words give the same frequencies
        tok.add_word(normalize(w))
    return tok


def tokenize(text: str, *, mode: str = "default", hmm: bool = True) -> list[Token]:
    """Segment `text`; offsets are code points in `text` (exact on repeated words)."""
    if not text:
        return []
    norm = normalize(text)
    return [
        Token(w, s, e)
        for w, s, e in get_tokenizer().tokenize(norm, mode=mode, HMM=hmm)
        if not w.isspace()
    ]


def is_word(token: str) -> bool:
    """True when a token holds at least one letter, digit or CJK character."""
    return any(ch.isalnum() for ch in token)


def terms(text: str, *, mode: str = "default", hmm: bool = True) -> list[str]:
    """Normalised retrieval terms: words only, stop words and punctuation dropped.

    Search indexes and queries with ``hmm=False``: jieba's HMM guesses words it has
    never seen (能换, 咋充, 我用) differently in a question and in its paraphrase, and
    a guessed word matches nothing; without it such runs fall apart into dictionary
    words and single characters that do match.  The default stays as it was for the
    callers that store what it returns (pin keys)."""
    stop = stopwords()
    return [
        t.text for t in tokenize(text, mode=mode, hmm=hmm) if is_word(t.text) and t.text not in stop
    ]


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


def char_unigrams(text: str) -> list[tuple[str, int]]:
    """Every Chinese character (with its offset) and every run of latin letters or
    digits as one unit: the finest grain two phrasings of a question can share
    (提高 / 提升, 充 / 充值, 账号 / 账户)."""
    norm = normalize(text)
    out: list[tuple[str, int]] = []
    run_start = None
    for i, ch in enumerate(norm + " "):
        if ch.isascii() and ch.isalnum():
            if run_start is None:
                run_start = i
            continue
        if run_start is not None:
            out.append((norm[run_start:i], run_start))
            run_start = None
        if _is_cjk(ch):
            out.append((ch, i))
    return out


def char_bigrams(text: str) -> list[tuple[str, int]]:
    """Overlapping bigrams (with start offsets) inside runs of Chinese characters;
    a one-character run yields itself.  Latin letters and digits are left to the word
    field: their bigrams (zz, qq…) would match noise."""
    norm = normalize(text)
    out: list[tuple[str, int]] = []
    run_start = None
    for i, ch in enumerate(norm + " "):
        if _is_cjk(ch):
            if run_start is None:
                run_start = i
            continue
        if run_start is not None:
            if i - run_start == 1:
                out.append((norm[run_start], run_start))
            else:
                out.extend((norm[j : j + 2], j) for j in range(run_start, i - 1))
            run_start = None
    return out
