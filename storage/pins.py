"""Pinned answers (kb/pins.py): the pins table and the pins version counter.

The counter is a row of ``meta`` (key ``pins.version``) moved in the same transaction
as every pin change; each process's pin map reloads when it sees a new value.  The
counter is raised by one upsert (``value = value + 1`` on conflict), which takes the
row's lock on PostgreSQL, so concurrent changes never hand out the same version.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import schema
from .database import Database

VERSION_KEY = "pins.version"
# any constant: pin writers of one PostgreSQL database serialise on it (look, then add)
PIN_LOCK = 7_215_011

_pins = schema.pins
_meta = schema.meta
_articles = schema.articles

_LISTED = sa.select(
    _pins.c.id,
    _pins.c.query,
    _pins.c.article_id,
    sa.func.coalesce(_articles.c.title, "").label("title"),
    _articles.c.status.label("status"),  # None: the article is gone
    _pins.c.created_at,
    _pins.c.created_by,
).select_from(_pins.outerjoin(_articles, _articles.c.id == _pins.c.article_id))


def _upsert(db: Database):
    if db.dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def version(conn: Connection) -> str:
    """The pins version ("0" before the first pin change)."""
    value = conn.execute(sa.select(_meta.c.value).where(_meta.c.key == VERSION_KEY)).scalar()
    return value if value is not None else "0"


def _bump(db: Database, conn: Connection) -> None:
    stmt = _upsert(db)(_meta).values(key=VERSION_KEY, value="1")
    raised = sa.cast(sa.cast(_meta.c.value, sa.Integer) + 1, sa.Text)
    conn.execute(stmt.on_conflict_do_update(index_elements=[_meta.c.key], set_={"value": raised}))


def list_pins(db: Database, limit: int = -1, offset: int = 0) -> list[dict]:
    """Pins newest first with their article's title ("" if the article is gone)."""
    stmt = _LISTED.order_by(_pins.c.id.desc()).offset(max(offset, 0))
    if limit >= 0:
        stmt = stmt.limit(limit)
    with db.read() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def get_pin(db: Database, pin_id: int) -> dict | None:
    with db.read() as conn:
        row = conn.execute(_LISTED.where(_pins.c.id == pin_id)).mappings().first()
    return dict(row) if row is not None else None


def pin_count(db: Database) -> int:
    with db.read() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(_pins)).scalar_one()


def unpublished_count(db: Database) -> int:
    """Pins whose article is not published (or is gone): search never shows them."""
    stmt = (
        sa.select(sa.func.count())
        .select_from(_pins.outerjoin(_articles, _articles.c.id == _pins.c.article_id))
        .where(sa.or_(_articles.c.status.is_(None), _articles.c.status != "published"))
    )
    with db.read() as conn:
        return conn.execute(stmt).scalar_one()


def add_pin(
    db: Database, query: str, match_key: str, article_id: str, created_at: str, created_by: str
) -> tuple[int, bool]:
    """(pin id, created): the existing pin of (match key, article), or a new one (and a
    new pins version)."""
    with db.begin() as conn:
        if db.dialect == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(PIN_LOCK)))
        existing = conn.execute(
            sa.select(_pins.c.id)
            .where(_pins.c.match_key == match_key, _pins.c.article_id == article_id)
            .order_by(_pins.c.id)
            .limit(1)
        ).scalar()
        if existing is not None:
            return int(existing), False
        pin_id = conn.execute(
            sa.insert(_pins)
            .values(
                query=query,
                match_key=match_key,
                article_id=article_id,
                created_at=created_at,
                created_by=created_by,
            )
            .returning(_pins.c.id)
        ).scalar_one()
        _bump(db, conn)
    return int(pin_id), True


def remove_pin(db: Database, pin_id: int) -> bool:
    """Delete one pin (and move the pins version); False when there was none."""
    with db.begin() as conn:
        gone = conn.execute(sa.delete(_pins).where(_pins.c.id == pin_id)).rowcount
        if gone:
            _bump(db, conn)
    return bool(gone)


def pin_map(db: Database) -> tuple[str, dict[str, list[str]]]:
    """(version, match key -> pinned article ids in pinning order), for the search engine.

    The version is read before the pins: a change committed in between makes the next
    look reload again, never keeps new pins hidden behind an old version."""
    table: dict[str, list[str]] = {}
    with db.read() as conn:
        seen = version(conn)
        rows = conn.execute(sa.select(_pins.c.match_key, _pins.c.article_id).order_by(_pins.c.id))
        for key, aid in rows:
            table.setdefault(key, []).append(aid)
    return seen, table


def current_version(db: Database) -> str:
    with db.read() as conn:
        return version(conn)
