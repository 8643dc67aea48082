"""Suggest as you type, and 您是不是要找 for a query that finds nothing.

Candidates are the published articles' titles and similar questions (相似问) and the
frequent successful queries of the search log.  Each candidate is keyed by its
normalised text, its pinyin initials and its full pinyin, from its start and from
every word start, in sorted lists: a lookup is a bisect plus a short scan, well under
a millisecond at 10k articles.  The lists are built lazily and rebuilt (in the
background, the old ones serving meanwhile) when the articles or the index change.
"""

from __future__ import annotations

import json
import threading
import time
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass
from difflib import SequenceMatcher

from . import textproc

CHECK_EVERY = 0.5  # seconds between checks of whether the articles changed
QUERY_REFRESH = 60.0  # seconds between reloads of the frequent queries
REBUILD_EVERY = 30.0  # at most one rebuild of the article lists per this many seconds
QUERY_MIN_SEEN = 2
QUERY_MAX_CHARS = 40
QUERY_LOG_WINDOW = 200_000  # most recent search-log rows the frequent queries come from
QUERY_MAX_ENTRIES = 5000  # frequent queries kept for suggestions
SCAN = 200  # keys looked at past the bisect point, at most
KIND_RANK = {"title": 0, "similar": 1, "query": 2}
DYM_MIN_COVERAGE = 0.75  # share of the query's pinyin found in the suggestion
DYM_MIN_RATIO = 0.4


@dataclass(frozen=True, slots=True)
class Entry:
    """One thing that can be suggested."""

    text: str
    kind: str  # title | similar | query
    id: str | None = None
    seen: int = 0  # how often a frequent query was searched


def text_key(text: str) -> str:
    """Normalised letters, digits and CJK only, so spaces and punctuation never block a prefix."""
    return "".join(ch for ch in textproc.normalize(text) if ch.isalnum())


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


def char_syllables(key: str) -> list[str]:
    """One pinyin syllable per character of a text key (a latin letter or digit stays itself)."""
    from pypinyin import Style, lazy_pinyin

    out = lazy_pinyin(key, style=Style.NORMAL, errors=lambda s: list(s))
    if len(out) != len(key):  # never seen; keep the keys aligned whatever happens
        out = [lazy_pinyin(ch, style=Style.NORMAL, errors=lambda s: list(s))[0] for ch in key]
    return [s or ch for s, ch in zip(out, key, strict=True)]


def _keys(text: str, cache: dict) -> tuple[list[str], list[str], list[str]]:
    """Text, initials and full-pinyin keys of `text`: from its start and each word start."""
    hit = cache.get(text)
    if hit is not None:
        return hit
    norm = textproc.normalize(text)
    # Position in the key of each character of the text (None for punctuation and spaces).
    pos: list[int | None] = []
    n = 0
    for ch in norm:
        pos.append(n if ch.isalnum() else None)
        n += ch.isalnum()
    key = "".join(ch for ch in norm if ch.isalnum())
    starts = {0}
    if key:
        for tok in textproc.tokenize(text):
            p = next((pos[i] for i in range(tok.start, tok.end) if pos[i] is not None), None)
            if p is not None:
                starts.add(p)
    starts = sorted(s for s in starts if s < len(key))
    syl = char_syllables(key) if any(_is_cjk(ch) for ch in key) else list(key)
    texts = [key[s:] for s in starts]
    initials = ["".join(x[0] for x in syl[s:] if x) for s in starts]
    full = ["".join(syl[s:]) for s in starts]
    if not any(_is_cjk(ch) for ch in key):
        initials, full = [], []  # latin text: its text key already is its pinyin key
    out = (texts, initials, full)
    cache[text] = out
    return out


class _Keyed:
    """Sorted (key, entry, word-start?) lists over a set of entries."""

    def __init__(self, entries: list[Entry], cache: dict):
        self.entries = entries
        rows: dict[str, list] = {"text": [], "initials": [], "full": []}
        for i, e in enumerate(entries):
            texts, initials, full = _keys(e.text, cache)
            for name, keys in (("text", texts), ("initials", initials), ("full", full)):
                for j, k in enumerate(keys):
                    if k:
                        rows[name].append((k, j > 0, i))
        self.keys: dict[str, list[str]] = {}
        self.refs: dict[str, list[tuple[bool, int]]] = {}
        for name, items in rows.items():
            items.sort()
            self.keys[name] = [k for k, _, _ in items]
            self.refs[name] = [(inner, i) for _, inner, i in items]

    def scan(self, name: str, prefix: str) -> list[tuple[bool, int]]:
        keys = self.keys[name]
        at = bisect_left(keys, prefix)
        out = []
        for j in range(at, min(len(keys), at + SCAN)):
            if not keys[j].startswith(prefix):
                break
            out.append(self.refs[name][j])
        return out


class _Snapshot:
    """Everything a lookup reads, swapped in whole when rebuilt."""

    def __init__(self, stamp, articles: _Keyed, queries: _Keyed, queries_at: float):
        self.stamp = stamp
        self.articles = articles
        self.queries = queries
        self.queries_at = queries_at
        self._grams: dict[str, list[int]] | None = None
        self._full: list[str] = []
        self._lock = threading.Lock()

    def grams(self) -> tuple[dict[str, list[int]], list[str]]:
        """Pinyin trigram -> article entries, built on the first 您是不是要找."""
        with self._lock:
            if self._grams is None:
                grams: dict[str, list[int]] = {}
                full: list[str] = []
                for i, e in enumerate(self.articles.entries):
                    f = _pinyin_string(e.text)
                    full.append(f)
                    for g in set(_trigrams(f)):
                        grams.setdefault(g, []).append(i)
                self._full = full
                self._grams = grams
        return self._grams, self._full


def _pinyin_string(text: str) -> str:
    key = text_key(text)
    return "".join(char_syllables(key)) if any(_is_cjk(ch) for ch in key) else key


def _trigrams(s: str) -> list[str]:
    return [s[i : i + 3] for i in range(len(s) - 2)]


class Suggester:
    """Prefix suggestions over one knowledge base; thread safe, one per process."""

    def __init__(self, kb, *, limit: int = 8):
        self.kb = kb
        self.limit = limit
        self._snap: _Snapshot | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._building = False
        self._cache: dict = {}  # text -> keys, kept across rebuilds

    # -- building ------------------------------------------------------------------

    def _stamp(self) -> tuple:
        count, latest = self.kb.store.articles.stamp()
        return (self.kb.indexes.current_name(), count, latest)

    def _article_entries(self) -> list[Entry]:
        out: list[Entry] = []
        for aid, title, similar in self.kb.store.articles.published_titles():
            out.append(Entry(title, "title", aid))
            for s in json.loads(similar or "[]"):
                out.append(Entry(s, "similar", aid))
        return out

    def _query_entries(self) -> list[Entry]:
        rows = self.kb.store.searches.frequent_queries(
            QUERY_LOG_WINDOW, QUERY_MIN_SEEN, QUERY_MAX_ENTRIES
        )
        seen: dict[str, Entry] = {}
        for q, n in rows:
            q = " ".join((q or "").split())
            if not q or len(q) > QUERY_MAX_CHARS or q[0] in "/／":
                continue
            k = text_key(q)
            if k and k not in seen:
                seen[k] = Entry(q, "query", None, n)
        return list(seen.values())

    def _build(self, old: _Snapshot | None, stamp) -> _Snapshot:
        now = time.monotonic()
        if old is not None and old.stamp == stamp:
            articles = old.articles  # only the queries are due
        else:
            articles = _Keyed(self._article_entries(), self._cache)
        queries = _Keyed(self._query_entries(), self._cache)
        if len(self._cache) > 4 * (len(articles.entries) + len(queries.entries)) + 1000:
            self._cache.clear()
        return _Snapshot(stamp, articles, queries, now)

    def snapshot(self) -> _Snapshot:
        """The current lists: built on first use, rebuilt in the background when stale."""
        snap = self._snap
        now = time.monotonic()
        if snap is not None and now - self._checked < CHECK_EVERY:
            return snap
        self._checked = now
        stamp = self._stamp()
        if snap is None:
            with self._lock:
                if self._snap is None:
                    self._snap = self._build(None, stamp)
                return self._snap
        # At most one background rebuild per REBUILD_EVERY: a rebuild is seconds of
        # CPU in the serving process, and a trainer saving every few seconds must not
        # keep a worker busy rebuilding (its searches would queue behind the GIL).
        age = now - snap.queries_at
        if (snap.stamp != stamp and age > REBUILD_EVERY) or age > QUERY_REFRESH:
            with self._lock:
                if not self._building:
                    self._building = True
                    threading.Thread(target=self._rebuild, args=(snap, stamp), daemon=True).start()
        return snap

    def ready(self) -> bool:
        """True once the lists exist; otherwise start building them in the background,
        so a request never waits seconds for the first build."""
        if self._snap is not None:
            return True
        with self._lock:
            if self._snap is None and not self._building:
                self._building = True
                threading.Thread(
                    target=self._rebuild, args=(None, self._stamp()), daemon=True
                ).start()
        return False

    def _rebuild(self, old: _Snapshot | None, stamp) -> None:
        try:
            self._snap = self._build(old, stamp)
        finally:
            self._building = False
            try:
                self.kb.close()  # this thread's store connection
            except Exception:  # noqa: BLE001 - closing is best effort
                pass

    def refresh(self) -> None:
        """Rebuild now (after a bulk change, or in tests)."""
        with self._lock:
            self._snap = self._build(None, self._stamp())
            self._checked = time.monotonic()

    # -- lookups ----------------------------------------------------------------------

    def suggest(self, q: str, limit: int | None = None) -> list[dict]:
        """Up to `limit` suggestions `{"text","kind","id"?}` whose text, initials or
        pinyin starts with `q` (or a word of the text does)."""
        limit = limit or self.limit
        key = text_key(q)
        if not key:
            return []
        snap = self.snapshot()
        latin = key.isascii()
        mixed = not latin and any(ch.isascii() for ch in key)
        lookups = [("text", key, 0)]
        if latin and len(key) >= 1:
            lookups += [("initials", key, 2), ("full", key, 2)]
        elif mixed:
            lookups.append(("full", "".join(char_syllables(key)), 2))
        ranked: dict[tuple[int, int], tuple] = {}
        for group, keyed in ((0, snap.articles), (1, snap.queries)):
            for name, prefix, how in lookups:
                for inner, i in keyed.scan(name, prefix):
                    e = keyed.entries[i]
                    rank = (how + inner, KIND_RANK[e.kind], -e.seen, len(e.text), e.text)
                    old = ranked.get((group, i))
                    if old is None or rank < old[0]:
                        ranked[(group, i)] = (rank, e)
        out: list[dict] = []
        shown: set[str] = {key}
        for _, e in sorted(ranked.values(), key=lambda r: r[0]):
            k = text_key(e.text)
            if k in shown:
                continue
            shown.add(k)
            item = {"text": e.text, "kind": e.kind}
            if e.id is not None:
                item["id"] = e.id
            out.append(item)
            if len(out) >= limit:
                break
        return out

    def did_you_mean(self, q: str) -> str | None:
        """The title or similar question closest to `q` in pinyin (typos such as
        `tuikaun` or 腿宽多旧), or None when nothing is close enough."""
        qp = _pinyin_string(q)
        if len(qp) < 4:
            return None
        snap = self.snapshot()
        grams, full = snap.grams()
        counts: Counter = Counter()
        for g in set(_trigrams(qp)):
            counts.update(grams.get(g, ()))
        best: tuple | None = None
        qkey = text_key(q)
        for i, _ in counts.most_common(50):
            cand = full[i]
            sm = SequenceMatcher(None, qp, cand, autojunk=False)
            matched = sum(b.size for b in sm.get_matching_blocks())
            coverage = matched / len(qp)
            ratio = 2 * matched / (len(qp) + len(cand))
            e = snap.articles.entries[i]
            if coverage < DYM_MIN_COVERAGE or ratio < DYM_MIN_RATIO or text_key(e.text) == qkey:
                continue
            score = (coverage + ratio, KIND_RANK[e.kind] == 0, -len(e.text))
            if best is None or score > best[0]:
                best = (score, e.text)
        return best[1] if best else None


_by_kb_lock = threading.Lock()


def suggester(kb) -> Suggester:
    """The process-wide Suggester of a KnowledgeBase (created on first use)."""
    s = getattr(kb, "_suggester", None)
    if s is None:
        with _by_kb_lock:
            s = getattr(kb, "_suggester", None)
            if s is None:
                s = Suggester(kb)
                kb._suggester = s
    return s
