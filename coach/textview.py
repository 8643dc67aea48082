"""Lazy views of one turn's text: normalised form, sentences and token windows.

The checker never segments a whole turn blindly. A cheap regex prefilter finds
candidate positions; only the jieba *block* around a candidate (a maximal run of
the characters jieba itself segments as one unit) is tokenised. jieba splits its
input into exactly these blocks before segmenting, so tokens of a block are the
tokens the full-text segmentation would give. Blocks are cached by content.

The coach segments with its own tokenizer (a Segmenter: the shared dictionary plus a
rule pack's vocabulary), so loading a rule pack never changes how search analyses
text; each Segmenter keeps its own caches.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from kb.textproc import Token, normalize, tokenizer_with

# jieba's own block character class (jieba.re_han_default).
_BLOCK_RE = re.compile(r"[\u4E00-\u9FD5a-zA-Z0-9+#&\._%\-]+")
# Sentence ends; whitespace also separates the messages that chat exports merge.
SENT_END = frozenset("。！？!?；;\n\r\t ~…")
_SENT_END = SENT_END
_CLAUSE_END = _SENT_END | frozenset("，,、：:")
_QUOTES = {"「": "」", "『": "』", "“": "”", '"': '"', "‘": "’", "《": "》"}
_OPEN_QUOTE = re.compile("[" + re.escape("".join(_QUOTES)) + "]")
_mark_res: dict[frozenset[str], re.Pattern] = {}
# an ASCII full stop used as one (helpdesk posts write 无法拦截的.无信号…): not in
# a number (3.5), an address (a@b.com) or a link (www.x.cn); one scan, no backtracking
_LONE_STOP = re.compile(r"(?<![0-9a-z@])\.(?![0-9a-z@])")


def coach_normalize(text: str) -> str:
    """`normalize`, and a lone ASCII full stop read as 。 (same length)."""
    norm = normalize(text)
    return _LONE_STOP.sub("。", norm) if "." in norm else norm


def mark_positions(text: str, ends: frozenset[str]) -> list[int]:
    """Sorted positions of the characters of `ends` in text (one regex scan)."""
    rx = _mark_res.get(ends)
    if rx is None:
        rx = _mark_res[ends] = re.compile("[" + re.escape("".join(sorted(ends))) + "]")
    return [m.start() for m in rx.finditer(text)]


MAX_BLOCK = 200  # giant blocks are cut into tiles of this size
MAX_SENTENCE = 240  # and so are sentences

_cache_limit = 200_000
stats = {"segmented_chars": 0, "cache_hits": 0}


class Segmenter:
    """The coach's jieba tokenizer for one vocabulary, with its block and view caches."""

    def __init__(self, words: frozenset[str] = frozenset()) -> None:
        self.words = frozenset(words)
        self._tok = None
        self._blocks: dict[str, tuple[tuple[str, int, int], ...]] = {}
        self._views: dict[str, TextView] = {}

    def segment_block(self, block: str) -> tuple[tuple[str, int, int], ...]:
        """Tokens (word, start, end) of one normalised jieba block, cached."""
        hit = self._blocks.get(block)
        if hit is not None:
            stats["cache_hits"] += 1
            return hit
        stats["segmented_chars"] += len(block)
        if self._tok is None:
            self._tok = tokenizer_with(self.words)
        toks = tuple(self._tok.tokenize(block, HMM=True))
        if _cache_limit:
            if len(self._blocks) >= _cache_limit:
                self._blocks.clear()
            self._blocks[block] = toks
        return toks

    def view(self, text: str) -> TextView:
        """A shared view per distinct text: template replies are segmented once."""
        v = self._views.get(text)
        if v is None:
            v = TextView(text, seg=self)
            if _cache_limit:
                if len(self._views) >= _cache_limit // 4:
                    self._views.clear()
                self._views[text] = v
        return v

    def clear(self) -> None:
        self._blocks.clear()
        self._views.clear()


_segmenters: dict[frozenset[str], Segmenter] = {}


def segmenter_for(words: frozenset[str] = frozenset()) -> Segmenter:
    """The Segmenter of a vocabulary (one per vocabulary and process, a few kept)."""
    seg = _segmenters.get(words)
    if seg is None:
        if len(_segmenters) >= 4:
            _segmenters.clear()
        seg = _segmenters[words] = Segmenter(words)
    return seg


def set_cache_limit(limit: int) -> None:
    """Bound (or with 0 disable) the segmentation caches."""
    global _cache_limit
    _cache_limit = limit
    clear_cache()


def clear_cache() -> None:
    """Forget cached segmentations."""
    for seg in _segmenters.values():
        seg.clear()


def segment_block(block: str) -> tuple[tuple[str, int, int], ...]:
    """Tokens of one block with the shared dictionary alone."""
    return segmenter_for().segment_block(block)


@dataclass(frozen=True, slots=True)
class Unit:
    """A token-aligned match: [start, end) covers whole tokens (or a compound edge)."""

    start: int
    end: int
    first: int  # index of first token in the block token list
    last: int  # index of last token


class TextView:
    """Normalised text of one turn with cached block tokens and sentence bounds."""

    __slots__ = (
        "text",
        "norm",
        "memo",
        "seg",
        "_blocks",
        "_quotes",
        "_starts",
        "_ends",
        "_marks",
        "_sents",
    )

    def __init__(self, text: str, norm: str | None = None, seg: Segmenter | None = None) -> None:
        self.text = text
        self.seg = seg if seg is not None else segmenter_for()
        self.memo: dict = {}  # per-text results of matchers (a view is shared per text)
        self._marks: dict = {}  # sorted positions of sentence / clause end marks
        self.norm = coach_normalize(text) if norm is None else norm
        self._blocks: dict[tuple[int, int], list[Token]] = {}
        self._sents: dict[int, SentenceTokens] = {}  # keyed by the sentence's start
        self._quotes: list[int] | None = None  # flat sorted [open, close, open, close…]
        self._starts: list[int] | None = None
        self._ends: list[int] = []

    # -- blocks and tokens -------------------------------------------------
    def block_bounds(self, pos: int) -> tuple[int, int]:
        """Bounds of the jieba block containing `pos`; huge blocks are cut into
        fixed MAX_BLOCK tiles (a word across a tile edge is not seen)."""
        if self._starts is None:
            spans = [m.span() for m in _BLOCK_RE.finditer(self.norm)]
            self._starts = [a for a, _ in spans]
            self._ends = [b for _, b in spans]
        k = bisect_right(self._starts, pos) - 1
        if k < 0 or pos >= self._ends[k]:
            return pos, pos
        lo, hi = self._starts[k], self._ends[k]
        if hi - lo > MAX_BLOCK:
            lo += (pos - lo) // MAX_BLOCK * MAX_BLOCK
            hi = min(hi, lo + MAX_BLOCK)
        return lo, hi

    def block_tokens(self, pos: int) -> list[Token]:
        """Absolute-offset tokens of the block containing `pos`."""
        lo, hi = self.block_bounds(pos)
        if lo == hi:
            return []
        toks = self._blocks.get((lo, hi))
        if toks is None:
            toks = [
                Token(w, lo + s, lo + e) for w, s, e in self.seg.segment_block(self.norm[lo:hi])
            ]
            self._blocks[(lo, hi)] = toks
        return toks

    def tokens_in(self, start: int, end: int) -> list[Token]:
        """Tokens of every block intersecting [start, end)."""
        out: list[Token] = []
        pos = start
        while pos < end:
            lo, hi = self.block_bounds(pos)
            if lo == hi:
                m = _BLOCK_RE.search(self.norm, pos, end)
                if m is None:
                    break
                pos = m.start()
                continue
            out.extend(t for t in self.block_tokens(pos) if t.start >= start and t.end <= end)
            pos = hi
        return out

    def _tiles(self, backward: bool = False):
        """Start offsets of the segmentation units (blocks, or tiles of huge ones)."""
        if self._starts is None:
            self.block_bounds(0)
        spans = zip(self._starts, self._ends, strict=True)
        for lo, hi in reversed(list(spans)) if backward else spans:
            tiles = range(lo, hi, MAX_BLOCK)
            yield from reversed(tiles) if backward else tiles

    def content_edges(self, skip: frozenset[str]) -> tuple[int | None, int | None]:
        """End of the first and start of the last token not in `skip` (None: none);
        only the blocks up to those tokens are segmented."""
        key = ("content_edges", skip)
        hit = self.memo.get(key)
        if hit is None:
            first = last = None
            for pos in self._tiles():
                first = next((t.end for t in self.block_tokens(pos) if t.text not in skip), None)
                if first is not None:
                    break
            if first is not None:
                for pos in self._tiles(backward=True):
                    toks = reversed(self.block_tokens(pos))
                    last = next((t.start for t in toks if t.text not in skip), None)
                    if last is not None:
                        break
            hit = self.memo[key] = (first, last)
        return hit

    def sentence_tokens(self, pos: int) -> SentenceTokens:
        """Tokens of the whole sentence around `pos` (uncapped), built once per sentence:
        every window of it is then a pair of indices found by bisection."""
        marks = self.marks()
        k = bisect_left(marks, pos)
        lo = marks[k - 1] + 1 if k else 0
        st = self._sents.get(lo)
        if st is None:
            hi = marks[k] if k < len(marks) else len(self.norm)
            st = self._sents[lo] = SentenceTokens(self.tokens_in(lo, hi))
        return st

    def unit_at(
        self, start: int, end: int, exceptions: frozenset[str] = frozenset()
    ) -> Unit | None:
        """Is norm[start:end] made of whole tokens (or the edge of a compound token)?"""
        toks = self.block_tokens(start)
        i = index_at(toks, start)
        if i is None:
            return None
        tok = toks[i]
        if tok.text in exceptions:
            return None
        if tok.start == start:
            j = i
            while toks[j].end < end and j + 1 < len(toks):
                j += 1
            if toks[j].end == end:
                return Unit(start, end, i, j)
            # compound token that begins with the word (稍等一下, 感谢您)
            if j == i and end - start >= 2 and _cjk_edges(self.norm, start, end):
                return Unit(start, end, i, i)
            return None
        if tok.end == end and end - start >= 2 and _cjk_edges(self.norm, start, end):
            return Unit(start, end, i, i)  # compound token ending with the word (很可能)
        return None

    # -- sentences, clauses, quotes ----------------------------------------
    def sentence(self, pos: int, ends: frozenset[str] = _SENT_END) -> tuple[int, int]:
        """Bounds of the sentence (or clause, with other `ends`) around `pos`, at most
        MAX_SENTENCE characters either side.  The end marks' positions are found once
        per text, so a long text with many matches is not rescanned per match."""
        marks = self.marks(ends)
        k = bisect_left(marks, pos)  # marks[:k] lie before pos
        lo = marks[k - 1] + 1 if k else 0
        hi = marks[k] if k < len(marks) else len(self.norm)
        return max(lo, pos - MAX_SENTENCE), min(hi, pos + MAX_SENTENCE)

    def marks(self, ends: frozenset[str] = _SENT_END) -> list[int]:
        """Sorted positions of the sentence (or other) end marks, found once per text."""
        marks = self._marks.get(ends)
        if marks is None:
            marks = self._marks[ends] = mark_positions(self.norm, ends)
        return marks

    def clause(self, pos: int) -> tuple[int, int]:
        """Bounds of the comma-delimited clause around `pos`."""
        return self.sentence(pos, _CLAUSE_END)

    def sentences(self) -> list[tuple[int, int]]:
        """All non-empty sentence bounds of the turn."""
        out = []
        pos = 0
        n = len(self.norm)
        while pos < n:
            if self.norm[pos] in _SENT_END:
                pos += 1
                continue
            lo, hi = self.sentence(pos)
            out.append((lo, hi))
            pos = hi + 1
        return out

    def end_mark(self, hi: int) -> str:
        """First sentence-ending character at or after `hi` ('' at the end)."""
        norm = self.norm
        while hi < len(norm) and norm[hi] in " \t":
            hi += 1
        return norm[hi] if hi < len(norm) else ""

    def in_quotes(self, pos: int) -> bool:
        """Is `pos` inside a quoted span (「」 “” "" ‘’ 《》)?"""
        if self._quotes is None:
            self._quotes = []
            text = self.norm
            i = 0
            while (m := _OPEN_QUOTE.search(text, i)) is not None:
                i = m.start()
                j = text.find(_QUOTES[text[i]], i + 1)
                if j > i:
                    self._quotes += (i, j)
                    i = j + 1
                else:
                    i += 1
        # spans are disjoint and in order: pos is inside one iff an odd number of
        # bounds lie before it and it is not the closing mark itself
        k = bisect_left(self._quotes, pos)
        return k % 2 == 1 and self._quotes[k] != pos


class SentenceTokens:
    """A sentence's tokens with their offsets, and cached index sets for range queries."""

    __slots__ = ("toks", "starts", "ends", "texts", "_where")

    def __init__(self, toks: list[Token]) -> None:
        self.toks = toks
        self.starts = [t.start for t in toks]
        self.ends = [t.end for t in toks]
        self.texts = [t.text for t in toks]
        self._where: dict = {}

    def window(self, lo: int, hi: int) -> tuple[int, int]:
        """Indices [a, b) of the tokens lying wholly inside [lo, hi) (= tokens_in)."""
        a = bisect_left(self.starts, lo)
        b = bisect_right(self.ends, hi, a)
        return a, b

    def where(self, key, pred) -> list[int]:
        """Sorted indices of the tokens whose text satisfies pred (cached under key)."""
        hit = self._where.get(key)
        if hit is None:
            hit = self._where[key] = [n for n, t in enumerate(self.texts) if pred(t)]
        return hit

    def any_in(self, key, pred, a: int, b: int) -> bool:
        """Is there a token in [a, b) whose text satisfies pred?"""
        idx = self.where(key, pred)
        k = bisect_left(idx, a)
        return k < len(idx) and idx[k] < b

    def first_in(self, key, pred, a: int, b: int) -> int | None:
        """Index of the first token in [a, b) whose text satisfies pred."""
        idx = self.where(key, pred)
        k = bisect_left(idx, a)
        return idx[k] if k < len(idx) and idx[k] < b else None


def _cjk_edges(norm: str, start: int, end: int) -> bool:
    """Only Chinese words match inside a compound token: "sb" is not in "usb"."""
    return not (norm[start].isascii() or norm[end - 1].isascii())


def index_at(toks: list[Token], pos: int, lo: int = 0, hi: int | None = None) -> int | None:
    """Index (in toks[lo:hi], sorted and non-overlapping) of the token holding `pos`."""
    hi = len(toks) if hi is None else hi
    k = bisect_right(toks, pos, lo, hi, key=_start) - 1
    if k >= lo and toks[k].start <= pos < toks[k].end:
        return k
    return None


def _start(t: Token) -> int:
    return t.start


def view_for(text: str) -> TextView:
    """A shared view of `text` segmented with the shared dictionary alone."""
    return segmenter_for().view(text)
