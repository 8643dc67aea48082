"""Content gaps: what agents searched for and did not find (or found and never opened),
and what customers asked in audited chats that the knowledge base could not answer,
grouped by similar query, for trainers to write the missing articles.

Queries are grouped by a key from the shared text pipeline: the sorted set of their
normalised retrieval terms (so 發票怎麼開 / 发票 怎么开 / 怎么开发票? share a group
when they segment into the same words), or the normalised text when no term is left.
Every view reads a bounded window (the last WINDOW_DAYS days, at most WINDOW_ROWS
entries) and groups it in one pass: the cost never grows with the whole log.

Searches typed as you go log every pause: an entry followed within SUPERSEDED_SECONDS
by a longer (or shorter) form of the same text is a step of typing, not a search.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache

from storage import gaps as repo

from . import textproc
from .errors import ValidationError
from .store import now_iso

WINDOW_DAYS = 30
WINDOW_ROWS = 20_000
SUPERSEDED_SECONDS = 10.0
KEY_MAX = 500
KINDS = ("search", "transcript")
VARIANTS = 3  # other phrasings shown per group


@lru_cache(maxsize=50_000)
def query_key(q: str) -> str:
    """The group key of a query: its sorted distinct terms, else its normalised text."""
    words = sorted(set(textproc.terms(q or "", hmm=False)))
    if words:
        return " ".join(words)[:KEY_MAX]
    return " ".join(textproc.normalize(q or "").split())[:KEY_MAX]


def window_start(now: dt.datetime | None = None, days: int = WINDOW_DAYS) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return (now - dt.timedelta(days=days)).isoformat(timespec="milliseconds")


@dataclass
class Group:
    """Similar queries seen in the window."""

    key: str
    query: str  # the newest phrasing
    count: int = 0
    zero: int = 0  # searches that found nothing
    opens: int = 0  # results opened from these searches
    last_seen: str = ""
    last_hits: int = 0  # hits of the newest search
    variants: list[str] = field(default_factory=list)
    score: float | None = None  # transcript questions: best score of the newest one
    article_id: str = ""  # ... and the article that came closest

    @property
    def reason(self) -> str:
        return "无结果" if self.last_hits == 0 else "有结果但无人打开"

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "query": self.query,
            "count": self.count,
            "zero": self.zero,
            "opens": self.opens,
            "last_seen": self.last_seen,
            "variants": self.variants,
            "reason": self.reason,
            "score": self.score,
            "article_id": self.article_id,
        }


def _seconds(at: str) -> float:
    try:
        return dt.datetime.fromisoformat(at).timestamp()
    except (TypeError, ValueError):
        return 0.0


def _typing_steps(rows: list[tuple]) -> set[int]:
    """Indexes of entries that are steps of typing: the next entry, within a few
    seconds, is the same text grown or cut (以旧 → 以旧换新)."""
    steps = set()
    for i in range(len(rows) - 1):
        q, nq = rows[i][2] or "", rows[i + 1][2] or ""
        if q != nq and (nq.startswith(q) or q.startswith(nq)):
            if _seconds(rows[i + 1][1]) - _seconds(rows[i][1]) <= SUPERSEDED_SECONDS:
                steps.add(i)
    return steps


def _keyed(db, rows: list[tuple], key_at: int, text_at: int) -> list[tuple]:
    """Rows with their key filled in (computed and stored for rows logged without)."""
    missing = []
    out = []
    for row in rows:
        key = row[key_at]
        if key is None:
            key = query_key(row[text_at] or "")
            missing.append((row[0], key))
            row = (*row[:key_at], key, *row[key_at + 1 :])
        out.append(row)
    if missing:
        repo.set_search_keys(db, missing)
    return out


def _add(groups: dict[str, Group], key: str, text: str, at: str) -> Group:
    g = groups.get(key)
    if g is None:
        g = groups[key] = Group(key=key, query=text)
    g.count += 1
    if at >= g.last_seen:
        if text != g.query and g.query not in g.variants and len(g.variants) < VARIANTS:
            g.variants.append(g.query)
        g.query, g.last_seen = text, at
    elif text != g.query and text not in g.variants and len(g.variants) < VARIANTS:
        g.variants.append(text)
    return g


def search_groups(db, *, now: dt.datetime | None = None) -> list[Group]:
    """Gap groups of the window's searches, most searched first: groups whose newest
    search found nothing, or from which nobody opened a result; dismissed groups
    only when searched again after the dismissal."""
    since = window_start(now)
    rows = _keyed(db, repo.recent_searches(db, since, WINDOW_ROWS), 3, 2)
    steps = _typing_steps(rows)
    groups: dict[str, Group] = {}
    for i, (_id, at, q, key, hits, via) in enumerate(rows):
        if i in steps or via in ("cli", "cli-batch", "pins") or not key:
            continue
        if (q or "").lstrip().startswith(("/", "／")):
            continue  # a script's shortcut code, not a question
        g = _add(groups, key, q, at)
        g.zero += hits == 0
        if at >= g.last_seen:
            g.last_hits = hits
    opens = repo.open_counts(db, since)
    dismissed = repo.dismissals(db, "search", since)
    out = []
    for g in groups.values():
        g.opens = opens.get(g.key, 0)
        if g.last_hits and g.opens:
            continue  # found and used
        if g.key in dismissed and g.last_seen <= dismissed[g.key]:
            continue
        out.append(g)
    return _ranked(out)


def _ranked(groups: list[Group]) -> list[Group]:
    """Most often first; of equal counts, the most recently seen first."""
    groups.sort(key=lambda g: g.last_seen, reverse=True)
    groups.sort(key=lambda g: -g.count)
    return groups


def question_groups(db, *, now: dt.datetime | None = None) -> list[Group]:
    """Customer questions of audited chats with no answer above the threshold, grouped
    the same way (dismissed groups only when asked again after the dismissal)."""
    since = window_start(now)
    groups: dict[str, Group] = {}
    for _id, at, text, key, score, article_id, _run, _item in repo.recent_questions(
        db, since, WINDOW_ROWS
    ):
        g = _add(groups, key, text, at)
        if at >= g.last_seen:
            g.score, g.article_id = score, article_id or ""
    dismissed = repo.dismissals(db, "transcript", since)
    out = [
        g for g in groups.values() if not (g.key in dismissed and g.last_seen <= dismissed[g.key])
    ]
    return _ranked(out)


def dismiss(db, kind: str, key: str, *, actor: str) -> None:
    """Hide a group until it is searched (or asked) again."""
    if kind not in KINDS:
        raise ValidationError("未知的缺口类型")
    key = (key or "").strip()
    if not key or len(key) > KEY_MAX:
        raise ValidationError("缺少要忽略的问题")
    repo.dismiss(db, kind, key, now_iso(), actor)


def record_open(
    db,
    q: str,
    doc_id: str,
    *,
    doctype: str = "article",
    position: int | None = None,
    user_id: int | None = None,
    via: str = "web",
) -> None:
    """An agent opened a result of the search `q` (position 1 = the first hit)."""
    q = " ".join((q or "").split())[:500]
    if not q or not doc_id:
        return
    repo.add_open(
        db,
        {
            "at": now_iso(),
            "q": q,
            "qkey": query_key(q),
            "doc_id": str(doc_id)[:200],
            "doctype": doctype if doctype in ("article", "script") else "article",
            "position": position if position is None or 0 < position <= 1000 else None,
            "user_id": user_id,
            "via": via[:20],
        },
    )
