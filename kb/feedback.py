"""Article feedback: agents mark an article 有用 / 没用 with an optional comment (one
vote per user per article, changeable); trainers read the ratios and the comments."""

from __future__ import annotations

from storage import feedback as repo

from .errors import ValidationError
from .store import Store, now_iso

COMMENT_MAX = 500
VOTES = {"useful": 1, "useless": 0, "有用": 1, "没用": 0}
SORTS = repo.SORTS


def vote(
    store: Store, article_id: str, user_id: int, username: str, value, comment: str = ""
) -> dict:
    """Record (or change) a user's vote; the article must exist and be published
    (NotFound / ValidationError otherwise).  Returns the article's counts and the vote."""
    if not isinstance(value, str) or value not in VOTES:
        raise ValidationError("请选择「有用」或「没用」")
    if comment is None:
        comment = ""
    if not isinstance(comment, str):
        raise ValidationError("意见应为文字")
    comment = comment.replace("\r\n", "\n").strip()
    if len(comment) > COMMENT_MAX:
        raise ValidationError(f"意见过长：最多 {COMMENT_MAX} 个字，现在 {len(comment)} 个字")
    article = store.get(article_id)  # NotFound
    if article.status != "published":
        raise ValidationError("只能评价已发布的文章")
    created = repo.vote(
        store.database,
        {
            "article_id": article_id,
            "user_id": user_id,
            "username": username,
            "useful": VOTES[value],
            "comment": comment,
            "updated_at": now_iso(),
        },
    )
    return {
        "created": created,
        "vote": my_vote(store, article_id, user_id),
        **counts(store, article_id),
    }


def my_vote(store: Store, article_id: str, user_id: int) -> dict | None:
    """The user's vote ({"useful": bool, "comment", "updated_at"}) or None."""
    row = repo.vote_of(store.database, article_id, user_id)
    if row is None:
        return None
    return {**row, "useful": bool(row["useful"])}


def counts(store: Store, article_id: str) -> dict:
    """{"useful", "useless", "total", "useless_rate"} of one article."""
    c = repo.counts(store.database, article_id)
    c["useless_rate"] = c["useless"] / c["total"] if c["total"] else None
    return c


def comments(store: Store, article_id: str, limit: int = 50, offset: int = 0) -> list[dict]:
    rows = repo.comments(store.database, article_id, limit, offset)
    return [{**r, "useful": bool(r["useful"])} for r in rows]


def comment_count(store: Store, article_id: str) -> int:
    return repo.comment_count(store.database, article_id)


def summary(
    store: Store, sort: str = "useless_rate", limit: int = 50, offset: int = 0
) -> list[dict]:
    """Articles with feedback, sorted (useless_rate, useless, total or recent)."""
    if sort not in SORTS:
        sort = "useless_rate"
    rows = repo.summary(store.database, sort, limit, offset)
    for r in rows:
        for k in ("useful", "useless", "total", "comments"):
            r[k] = int(r[k] or 0)
        r["useless_rate"] = float(r["useless_rate"] or 0.0)
        r["title"] = r["title"] or ""
    return rows


def summary_count(store: Store) -> int:
    return repo.summary_count(store.database)
