"""Ranked search over the whoosh index: BM25F scoring of every query word.

whoosh keeps the postings; scoring a long question through whoosh's pure-Python
matcher tree costs hundreds of milliseconds, so this module reads each term's
posting list once into numpy arrays (cached per immutable segment) and scores all
query words at once with vector operations.  Nothing is dropped from the query,
so relevance is that of full BM25F, at a few milliseconds per query.
"""

from __future__ import annotations

import html
import math
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, _lenfield
from whoosh.reading import TermNotFound
from whoosh.util.numeric import byte_to_length

from . import pinyin, synonyms, textproc
from .index import IndexManager

K1 = 1.2
B = 0.75
FIELD_WEIGHTS = {"title": 2.5, "similar": 2.5, "body": 1.0}
B_BY_FIELD = {"title": 0.3, "similar": 0.3, "body": B, "grams": 0.3, "chars": 0.3, "py": 0.0}
MAX_QUERY_TERMS = 64
# Single characters are a back-off for short questions, where few words carry the
# meaning: past this many distinct characters their total weight stays that of a
# question this long (a long question has words enough, and its characters would
# only favour titles over bodies).
CHAR_FULL_WEIGHT_UPTO = 16
REFRESH_EVERY = 0.5
POOL_SIZE = 16  # idle views kept open (one is in use per concurrent search)  # seconds between checks for a newer index generation
POSTINGS_CACHE_ENTRIES = 20_000_000  # postings kept decoded (ids + tfs)
SNIPPET_CHARS = 90
CACHED_BODY_CHARS = 20_000  # bodies up to this long keep their plain text cached


@dataclass
class Hit:
    """One ranked result with its highlighted title and snippet (safe HTML)."""

    id: str
    title: str
    category: str
    tags: list[str]
    status: str
    score: float
    title_html: str
    snippet: str
    doctype: str = "article"
    pinned: bool = False  # a trainer pinned it to this query (kb/pins.py): ranked first


@dataclass
class SearchResult:
    query: str
    hits: list[Hit]
    took_ms: float
    total: int
    terms: list[str] = field(default_factory=list)


def _leaf_postings(reader, fieldname: str, term: str) -> tuple[np.ndarray, np.ndarray]:
    """Doc numbers and term frequencies of one term in one segment."""
    try:
        m = reader.postings(fieldname, term)
    except TermNotFound:  # the term lives in another segment only
        return np.zeros(0, np.int32), np.zeros(0, np.float32)
    ids_parts: list = []
    tf_parts: list = []
    if hasattr(m, "_read_ids") and hasattr(m, "_next_block"):
        # Block-wise read of whoosh's on-disk postings: one unpickle per block.
        while m.is_active():
            m._read_ids()
            m._read_weights()
            ids_parts.append(np.asarray(m._ids, dtype=np.int32))
            tf_parts.append(np.asarray(m._weights, dtype=np.float32))
            m._next_block()
    else:
        ids, tfs = [], []
        while m.is_active():
            ids.append(m.id())
            tfs.append(m.weight())
            m.next()
        ids_parts.append(np.asarray(ids, dtype=np.int32))
        tf_parts.append(np.asarray(tfs, dtype=np.float32))
    if not ids_parts:
        return np.zeros(0, np.int32), np.zeros(0, np.float32)
    return np.concatenate(ids_parts), np.concatenate(tf_parts)


class _PostingsCache:
    """LRU of decoded posting lists keyed by (segment, field, term); thread safe."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.size = 0
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, load):
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
                return hit
        value = load()
        with self._lock:
            if key not in self._data:
                self._data[key] = value
                self.size += len(value[0])
                while self.size > self.capacity and len(self._data) > 1:
                    _, old = self._data.popitem(last=False)
                    self.size -= len(old[0])
        return value


class _View:
    """A searcher plus the per-generation arrays the scorer needs."""

    def __init__(self, ix, engine: SearchEngine):
        self.ix = ix
        self.searcher = ix.searcher()
        self.opened = time.monotonic()
        self.leaves = []  # (segment id, reader, offset, doc count)
        for sub, offset in self.searcher.leaf_searchers():
            reader = sub.reader()
            seg = reader.segment()
            segid = seg.segment_id() if seg is not None else id(reader)
            self.leaves.append((segid, reader, offset, reader.doc_count_all()))
        self.size = self.searcher.doc_count_all()
        self.alive = np.ones(self.size, dtype=bool)
        for _segid, reader, offset, n in self.leaves:
            if reader.has_deletions():
                perdoc = getattr(reader, "_perdoc", None)
                if perdoc is not None and hasattr(perdoc, "deleted_docs"):
                    deleted = perdoc.deleted_docs()
                else:
                    deleted = (d for d in range(n) if reader.is_deleted(d))
                for d in deleted:
                    self.alive[offset + d] = False
        self.avg_len = {
            f: max(1.0, self.searcher.field_length(f) / max(1, self.size)) for f in B_BY_FIELD
        }
        self.engine = engine
        self._norms: dict[str, np.ndarray] = {}
        self._lengths: dict[str, np.ndarray] = {}

    def lengths(self, fieldname: str) -> np.ndarray:
        """The length in terms of one field for every document of the view."""
        arr = self._lengths.get(fieldname)
        if arr is None:
            parts = [
                self.engine.lengths(segid, reader, fieldname, n)
                for segid, reader, _, n in self.leaves
            ]
            arr = np.concatenate(parts) if parts else np.zeros(0, np.float32)
            self._lengths[fieldname] = arr
        return arr

    def norm(self, fieldname: str) -> np.ndarray:
        """k1 * (1 - b + b * len / avg_len) for every document of the view."""
        arr = self._norms.get(fieldname)
        if arr is None:
            lengths = self.lengths(fieldname)
            b = B_BY_FIELD[fieldname]
            arr = (K1 * (1 - b + b * lengths / self.avg_len[fieldname])).astype(np.float32)
            self._norms[fieldname] = arr
        return arr

    def doc_mask(self, fieldname: str, value: str) -> np.ndarray:
        mask = np.zeros(self.size, dtype=bool)
        for segid, reader, offset, _ in self.leaves:
            ids, _ = self.engine.postings(segid, reader, fieldname, value)
            mask[ids + offset] = True
        return mask

    def close(self) -> None:
        self.searcher.close()


@dataclass
class Levers:
    """Relevance levers, each switchable for the benchmark's lever table."""

    bigrams: bool = True
    bigram_weight: float = 1.0
    synonyms: bool = True
    synonym_weight: float = 0.5
    pinyin: bool = True
    pinyin_weight: float = 1.0
    homophones: bool = True
    homophone_weight: float = 0.8
    # Single characters of titles and similar questions (the `chars` field); they
    # rank the documents other clauses found, and find none by themselves.
    chars: bool = True
    char_weight: float = 3.0
    # Scores are scaled by 1 - w + w * (share of the characters of the document's
    # questions that occur in the query): of two questions matching the same query
    # words, the one with less left unexplained is the closer paraphrase.
    coverage: bool = True
    coverage_weight: float = 0.75


class SearchEngine:
    """Thread-safe search over an IndexManager's serving generation."""

    def __init__(self, manager: IndexManager, levers: Levers | None = None):
        self.manager = manager
        self.levers = levers or Levers()
        self._pool: list[_View] = []
        self._pool_lock = threading.Lock()
        self._cache = _PostingsCache(POSTINGS_CACHE_ENTRIES)
        self._lengths: dict = {}
        self._ix = None  # (generation folder, whoosh index), see _index()
        self.pins = None  # optional: .lookup(query) -> pinned article ids (kb.pins.attach)

    # -- caches ---------------------------------------------------------------

    def postings(self, segid, reader, fieldname: str, term: str):
        return self._cache.get(
            (segid, fieldname, term), lambda: _leaf_postings(reader, fieldname, term)
        )

    def lengths(self, segid, reader, fieldname: str, n: int) -> np.ndarray:
        key = (segid, fieldname)
        arr = self._lengths.get(key)
        if arr is None:
            col = None
            if hasattr(reader, "_cached_reader"):
                col = reader._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
            if col is not None:
                table = np.asarray([byte_to_length(b) for b in range(256)], dtype=np.float32)
                raw = np.fromiter((col[i] for i in range(n)), dtype=np.uint8, count=n)
                arr = table[raw]
            else:
                arr = np.asarray(
                    [reader.doc_field_length(i, fieldname) or 0 for i in range(n)], np.float32
                )
            self._lengths[key] = arr
        return arr

    def _fresh(self, view: _View | None) -> _View:
        """`view` if it still shows the serving generation; otherwise a new one."""
        now = time.monotonic()
        if view is not None:
            if now - view.opened < REFRESH_EVERY:
                return view
            current = self.manager.current_dir()
            same_dir = current is not None and str(current) == view.ix.storage.folder
            if same_dir and view.searcher.up_to_date():
                view.opened = now
                return view
            view.close()
        return _View(self._index(), self)

    def _index(self):
        """The serving generation's whoosh index object, opened once per generation
        folder (opening reads and unpickles the TOC twice: a third of a view refresh);
        each searcher it makes still reads the newest TOC."""
        current = self.manager.current_dir()
        cached = self._ix
        if cached is not None and current is not None and cached[0] == str(current):
            return cached[1]
        ix = self.manager.open()
        self._ix = (ix.storage.folder, ix)
        return ix

    @contextmanager
    def borrow(self) -> Iterator[_View]:
        """A view for this thread's exclusive use, taken from (and given back to) a pool
        shared by all threads: a thread-per-request server reuses open searchers
        instead of opening one per request."""
        with self._pool_lock:
            view = self._pool.pop() if self._pool else None
        view = self._fresh(view)
        try:
            yield view
        finally:
            with self._pool_lock:
                if len(self._pool) < POOL_SIZE:
                    self._pool.append(view)
                    view = None
            if view is not None:
                view.close()

    # -- search -----------------------------------------------------------------

    def plan(self, query: str, view: _View | None = None) -> list[tuple[str, str, float]]:
        """The weighted (field, term) clauses a query is scored with."""
        words = textproc.terms(query, hmm=False)[: MAX_QUERY_TERMS * 4]
        qterms = [w for w, _ in Counter(words).most_common(MAX_QUERY_TERMS)]
        lv = self.levers
        clauses = [(f, t, w) for f, w in FIELD_WEIGHTS.items() for t in qterms]
        if lv.synonyms:
            clauses += [
                (f, t, w * lv.synonym_weight)
                for f, w in FIELD_WEIGHTS.items()
                for t in synonyms.expand(qterms)
            ]
        if lv.pinyin:
            clauses += [("py", k, lv.pinyin_weight) for k in pinyin.query_keys(query)]
        if lv.homophones and 0 < len(qterms) <= 8:
            if view is None:
                with self.borrow() as borrowed:
                    return self.plan(query, borrowed)
            known = view.searcher
            unknown = [
                t for t in qterms if not any(known.doc_frequency(f, t) for f in FIELD_WEIGHTS)
            ]
            # A typo often shreds a word into single characters (发漂 -> 发 / 漂):
            # adjacent single characters are tried as one word too.
            pairs = [
                a + b for a, b in zip(words, words[1:], strict=False) if len(a) == 1 and len(b) == 1
            ]
            keys = pinyin.homophone_keys(unknown + pairs)[:8]
            clauses += [("py", k, lv.homophone_weight) for k in keys]
        if self.levers.bigrams:
            grams = dict.fromkeys(g for g, _ in textproc.char_bigrams(query))
            clauses += [
                ("grams", g, self.levers.bigram_weight) for g in list(grams)[: MAX_QUERY_TERMS * 2]
            ]
        if self.levers.chars:
            chars = query_chars(query)
            w = self.levers.char_weight * min(1.0, CHAR_FULL_WEIGHT_UPTO / max(1, len(chars)))
            clauses += [("chars", c, w) for c in chars]
        return clauses

    def search(
        self,
        query: str,
        *,
        category: str | None = None,
        tag: str | None = None,
        status: str | None = "published",
        doctype: str | None = None,
        limit: int = 10,
        snippets: bool = True,
    ) -> SearchResult:
        """Rank documents for `query` (BM25F over title, similar questions and body)."""
        started = time.perf_counter()
        with self.borrow() as view:
            hits, total, qterms = self._search(
                view, query, category, tag, status, doctype, limit, snippets
            )
        took = (time.perf_counter() - started) * 1000
        return SearchResult(query=query, hits=hits, took_ms=took, total=total, terms=qterms)

    def _search(self, view, query, category, tag, status, doctype, limit, snippets):
        clauses = self.plan(query, view)
        qterms = [term for field, term, _ in clauses if field == "title"]
        hits: list[Hit] = []
        total = 0
        pinned = self.pins.lookup(query) if self.pins is not None else []
        if (clauses or pinned) and view.size:
            scores = np.zeros(view.size, dtype=np.float32)
            # Single characters only rank: a document that shares nothing but
            # characters with the query (量子纠缠 against 数量 and 例子) is no hit.
            found = np.zeros(view.size, dtype=bool)
            # characters of the query matched per document, for coverage: summed here
            # from the `chars` clauses' postings rather than read a second time
            matched = np.zeros(view.size, dtype=np.float32) if self.levers.chars else None
            for fieldname, term, weight in clauses:
                df = view.searcher.doc_frequency(fieldname, term)
                if not df:
                    continue
                # df counts deleted documents too, so N must as well (idf stays > 0).
                idf = math.log(1.0 + (view.size - df + 0.5) / (df + 0.5))
                norm = view.norm(fieldname)
                for segid, reader, offset, _ in view.leaves:
                    ids, tfs = self.postings(segid, reader, fieldname, term)
                    if not len(ids):
                        continue
                    docs = ids + offset
                    scores[docs] += (weight * idf) * tfs * (K1 + 1) / (tfs + norm[docs])
                    if fieldname != "chars":
                        found[docs] = True
                    elif matched is not None:
                        matched[docs] += tfs
            if self.levers.coverage:
                scores *= self._coverage(view, query, matched)
            allowed = self._allowed(view, category, tag, status, doctype)
            mask = allowed & found & (scores > 0)
            first = self._pinned_docs(view, pinned, allowed)
            if first:
                mask[first] = False
            candidates = np.flatnonzero(mask)
            total = int(len(candidates)) + len(first)
            term_set = set(qterms)
            for d in first[:limit]:
                fields = view.searcher.stored_fields(d)
                hit = self._hit(fields, float(scores[d]), term_set, snippets)
                hit.pinned = True
                hits.append(hit)
            limit -= len(hits)
            if len(candidates) and limit > 0:
                k = min(limit, len(candidates))
                cand_scores = scores[candidates]
                top = (
                    np.argpartition(-cand_scores, k - 1)[:k]
                    if len(candidates) > k
                    else np.arange(len(candidates))
                )
                top = top[np.lexsort((candidates[top], -cand_scores[top]))]
                for i in top:
                    fields = view.searcher.stored_fields(int(candidates[i]))
                    hits.append(self._hit(fields, float(cand_scores[i]), term_set, snippets))
        return hits, total, qterms

    def _coverage(self, view: _View, query: str, matched: np.ndarray | None) -> np.ndarray:
        """1 - w + w * coverage per document, where coverage is the share of the
        characters of its title and similar questions that occur in the query (a
        length-weighted mean over its questions, so adding similar questions that
        say the same thing does not lower it).  Only the order of documents with a
        score changes: a document without such characters keeps the floor 1 - w.
        `matched` is the per-document count already summed while scoring the `chars`
        clauses (None when that lever is off: then it is read here)."""
        if matched is None:
            matched = np.zeros(view.size, dtype=np.float32)
            for c in query_chars(query):
                for segid, reader, offset, _ in view.leaves:
                    ids, tfs = self.postings(segid, reader, "chars", c)
                    if len(ids):
                        matched[ids + offset] += tfs
        share = np.minimum(matched / np.maximum(view.lengths("chars"), 1.0), 1.0)
        w = self.levers.coverage_weight
        return (1.0 - w) + w * share

    @staticmethod
    def _allowed(view, category, tag, status, doctype) -> np.ndarray:
        """Live documents that pass the filters."""
        allowed = view.alive.copy()
        for fname, value in (
            ("category", category),
            ("tags", tag and tag.lower()),
            ("status", status),
            ("doctype", doctype),
        ):
            if value:
                allowed &= view.doc_mask(fname, value)
        return allowed

    @staticmethod
    def _pinned_docs(view, pinned, allowed: np.ndarray) -> list[int]:
        """Document numbers of the pinned articles that pass the filters, in pin order."""
        if not pinned:
            return []
        out: list[int] = []
        for aid in dict.fromkeys(pinned):
            docs = np.flatnonzero(view.doc_mask("id", aid) & allowed)
            out.extend(int(d) for d in docs[:1])
        return out

    @staticmethod
    def _hit(fields: dict, score: float, term_set: set[str], snippets: bool) -> Hit:
        title = fields.get("title", "")
        body = fields.get("body", "") or fields.get("similar", "")
        return Hit(
            id=fields["id"],
            title=title,
            category=fields.get("category", ""),
            tags=[t for t in (fields.get("tags") or "").split(",") if t],
            status=fields.get("status", ""),
            score=round(score, 4),
            title_html=highlight(title, term_set) if snippets else html.escape(title),
            snippet=snippet(body, term_set) if snippets else "",
            doctype=fields.get("doctype", "article"),
        )


def query_chars(query: str) -> list[str]:
    """The distinct characters (and latin/digit runs) of a query, in order."""
    chars = dict.fromkeys(c for c, _ in textproc.char_unigrams(query))
    return list(chars)[: MAX_QUERY_TERMS * 2]


@lru_cache(maxsize=4096)
def _term_pattern(terms: frozenset[str]) -> re.Pattern | None:
    """Longest-first alternation of the query terms worth marking (two or more
    characters: a lone character such as 开 would light up half of every text)."""
    marks = sorted((t for t in terms if len(t) > 1), key=len, reverse=True)
    return re.compile("|".join(map(re.escape, marks))) if marks else None


def highlight(text: str, term_set: set[str] | frozenset[str]) -> str:
    """Escape `text` and wrap every occurrence of a query term in <mark>.

    Matching runs on the normalised text, which has the same length as the original,
    so each mark covers exactly the characters the agent sees.  Every occurrence is
    found by one regex pass, left to right, so repeated words are all marked and no
    offset is looked up twice (the trap of mapping tokens back with str.find).
    """
    pattern = _term_pattern(frozenset(term_set))
    if pattern is None:
        return html.escape(text)
    out: list[str] = []
    pos = 0
    for m in pattern.finditer(textproc.normalize(text)):
        out.append(html.escape(text[pos : m.start()]))
        out.append(f"<mark>{html.escape(text[m.start() : m.end()])}</mark>")
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


# [text](url) and images -> text; the address may hold one level of parentheses
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\((?:[^()]|\([^()]*\))*\)")
_MD_CELL = re.compile(r"\s*\|\s*")  # table cell borders -> one space


def _plain(markdown_text: str) -> str:
    """Markdown to one line of plain text for snippets: no heading, quote, list or table
    marks, links reduced to their text (never their address)."""
    lines = []
    for line in markdown_text.splitlines():
        line = line.strip().lstrip("#>*-+|` ").strip()
        if line and not set(line) <= set("-|: "):
            line = _MD_CELL.sub(" ", _MD_LINK.sub(r"\1", line)).strip()
            lines.append(line.replace("**", "").replace("`", ""))
    return " ".join(lines)


@lru_cache(maxsize=4096)
def _plain_normalized(body: str) -> tuple[str, str]:
    """Plain text of a body and its normalised form: cached, since the same popular
    articles come back query after query and this is a third of a search's time."""
    text = _plain(body)
    return text, textproc.normalize(text)


def snippet(body: str, term_set: set[str], width: int = SNIPPET_CHARS) -> str:
    """The window of the body richest in query terms, highlighted."""
    if len(body) <= CACHED_BODY_CHARS:
        text, norm = _plain_normalized(body)
    else:
        text = _plain(body)
        norm = textproc.normalize(text)
    if not text:
        return ""
    positions = sorted(p for term in term_set for p in _find_all(norm, term))
    if not positions:
        window_start = 0
    else:
        best, best_n = positions[0], 0
        j = 0
        for i, p in enumerate(positions):
            while positions[j] < p - width + 10:
                j += 1
            if i - j + 1 > best_n:
                best, best_n = positions[j], i - j + 1
        window_start = max(0, best - 12)
    window_end = min(len(text), window_start + width)
    piece = text[window_start:window_end]
    prefix = "…" if window_start > 0 else ""
    suffix = "…" if window_end < len(text) else ""
    return prefix + highlight(piece, term_set) + suffix


def _find_all(text: str, term: str) -> list[int]:
    """Candidate start positions of a term (only to choose the window; the marks
    themselves come from token offsets)."""
    out = []
    start = text.find(term)
    while start != -1 and len(out) < 50:
        out.append(start)
        start = text.find(term, start + 1)
    return out
