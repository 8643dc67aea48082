"""Article feedback (kb/feedback.py): one 有用 / 没用 vote per user per article, with an
optional comment; counts per article and the list trainers sort by the 没用 rate."""

from __future__ import annotations

import sqlalchemy as sa

from . import schema
from .database import Database

F = schema.article_feedback
A = schema.articles

_up = sa.func.sum(sa.case((F.c.useful == 1, 1), else_=0))
_down = sa.func.sum(sa.case((F.c.useful == 0, 1), else_=0))
_total = sa.func.count()
_comments = sa.func.sum(sa.case((sa.func.coalesce(F.c.comment, "") != "", 1), else_=0))


def _upsert(db: Database):
    if db.dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def vote(db: Database, row: dict) -> bool:
    """Insert or change a user's vote on an article; True when it was new."""
    at = row["updated_at"]
    with db.begin() as conn:
        had = conn.execute(
            sa.select(F.c.id).where(
                F.c.article_id == row["article_id"], F.c.user_id == row["user_id"]
            )
        ).first()
        stmt = _upsert(db)(F).values(**row, created_at=at)
        stmt = stmt.on_conflict_do_update(
            index_elements=[F.c.article_id, F.c.user_id],
            set_={
                "useful": row["useful"],
                "comment": row["comment"],
                "username": row["username"],
                "updated_at": at,
            },
        )
        conn.execute(stmt)
    return had is None


def vote_of(db: Database, article_id: str, user_id: int) -> dict | None:
    stmt = sa.select(F.c.useful, F.c.comment, F.c.updated_at).where(
        F.c.article_id == article_id, F.c.user_id == user_id
    )
    with db.read() as conn:
        row = conn.execute(stmt).first()
    return dict(row._mapping) if row else None


def counts(db: Database, article_id: str) -> dict:
    stmt = sa.select(_up.label("useful"), _down.label("useless"), _total.label("total")).where(
        F.c.article_id == article_id
    )
    with db.read() as conn:
        row = conn.execute(stmt).one()
    return {k: int(v or 0) for k, v in row._mapping.items()}


def comments(db: Database, article_id: str, limit: int, offset: int) -> list[dict]:
    """The votes with a comment, newest first."""
    stmt = (
        sa.select(F.c.username, F.c.useful, F.c.comment, F.c.updated_at)
        .where(F.c.article_id == article_id, sa.func.coalesce(F.c.comment, "") != "")
        .order_by(F.c.updated_at.desc(), F.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def comment_count(db: Database, article_id: str) -> int:
    stmt = sa.select(sa.func.count()).where(
        F.c.article_id == article_id, sa.func.coalesce(F.c.comment, "") != ""
    )
    with db.read() as conn:
        return int(conn.execute(stmt).scalar() or 0)


SORTS = ("useless_rate", "useless", "total", "recent")


def summary(db: Database, sort: str, limit: int, offset: int) -> list[dict]:
    """Per article with feedback: counts, 没用 rate and the last vote, sorted."""
    rate = (sa.cast(_down, sa.Float) / _total).label("useless_rate")
    last = sa.func.max(F.c.updated_at).label("last_at")
    order = {
        "useless_rate": (rate.desc(), _down.desc()),
        "useless": (_down.desc(), rate.desc()),
        "total": (_total.desc(),),
        "recent": (last.desc(),),
    }[sort]
    stmt = (
        sa.select(
            F.c.article_id,
            sa.func.max(A.c.title).label("title"),
            _up.label("useful"),
            _down.label("useless"),
            _total.label("total"),
            _comments.label("comments"),
            rate,
            last,
        )
        .select_from(F.outerjoin(A, A.c.id == F.c.article_id))
        .group_by(F.c.article_id)
        .order_by(*order, F.c.article_id)
        .limit(limit)
        .offset(offset)
    )
    with db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def summary_count(db: Database) -> int:
    stmt = sa.select(sa.func.count(sa.distinct(F.c.article_id)))
    with db.read() as conn:
        return int(conn.execute(stmt).scalar() or 0)
