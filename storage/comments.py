"""Review comments on articles (kb/review.py): a thread per article, oldest first."""

from __future__ import annotations

import sqlalchemy as sa

from . import schema
from .database import Database

T = schema.article_comments
_COLUMNS = (T.c.id, T.c.article_id, T.c.version, T.c.kind, T.c.body, T.c.by, T.c.at)


def add(db: Database, row: dict) -> int:
    """Store one comment; returns its id."""
    with db.begin() as conn:
        return int(conn.execute(sa.insert(T).values(**row).returning(T.c.id)).scalar_one())


def thread(db: Database, article_id: str, limit: int = 200, offset: int = 0) -> list[dict]:
    """The comments on one article, oldest first."""
    stmt = (
        sa.select(*_COLUMNS)
        .where(T.c.article_id == article_id)
        .order_by(T.c.id)
        .limit(limit)
        .offset(offset)
    )
    with db.read() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def count(db: Database, article_id: str) -> int:
    stmt = sa.select(sa.func.count()).select_from(T).where(T.c.article_id == article_id)
    with db.read() as conn:
        return int(conn.execute(stmt).scalar_one())
