"""The scripts library's tables (scripts_lib/usage.py): copy events (``script_usage``)
and each agent's own scripts (``personal_scripts``)."""

from __future__ import annotations

import sqlalchemy as sa

from . import schema
from .database import Database

_usage = schema.script_usage
_personal = schema.personal_scripts
# (this, user id): the two-key advisory lock of one user's personal scripts (PostgreSQL)
PERSONAL_LOCK = 7_215_021

_USES = (
    sa.select(
        _usage.c.script_id,
        _usage.c.username,
        _usage.c.channel,
        sa.func.count().label("n"),
        sa.func.max(_usage.c.at).label("last"),
    )
    .where(_usage.c.at >= sa.bindparam("since"))
    .group_by(_usage.c.script_id, _usage.c.username, _usage.c.channel)
)


# -- usage events ---------------------------------------------------------------


def record(db: Database, event: dict) -> int:
    """Store one use (at, script_id, user_id, username, channel, via); returns its id."""
    with db.begin() as conn:
        return int(
            conn.execute(sa.insert(_usage).values(**event).returning(_usage.c.id)).scalar_one()
        )


def uses(db: Database, since: str = "") -> list[tuple[str, str, str, int, str]]:
    """(script id, username, channel, uses, last use) per script, user and channel,
    counting uses at or after `since` (ISO time; "" counts all)."""
    with db.read() as conn:
        return [tuple(r) for r in conn.execute(_USES, {"since": since})]


# -- personal scripts -------------------------------------------------------------


def list_personal(db: Database, user_id: int) -> list[dict]:
    """The user's scripts, most recently changed first."""
    stmt = (
        sa.select(_personal)
        .where(_personal.c.user_id == user_id)
        .order_by(_personal.c.updated_at.desc(), _personal.c.id.desc())
    )
    with db.read() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def get_personal(db: Database, user_id: int, script_id: int) -> dict | None:
    stmt = sa.select(_personal).where(_personal.c.id == script_id, _personal.c.user_id == user_id)
    with db.read() as conn:
        row = conn.execute(stmt).mappings().first()
    return dict(row) if row is not None else None


def personal_by_shortcut(db: Database, user_id: int, shortcut: str) -> dict | None:
    stmt = (
        sa.select(_personal)
        .where(_personal.c.user_id == user_id, _personal.c.shortcut == shortcut)
        .order_by(_personal.c.id)
        .limit(1)
    )
    with db.read() as conn:
        row = conn.execute(stmt).mappings().first()
    return dict(row) if row is not None else None


def count_personal(db: Database, user_id: int) -> int:
    stmt = sa.select(sa.func.count()).select_from(_personal).where(_personal.c.user_id == user_id)
    with db.read() as conn:
        return conn.execute(stmt).scalar_one()


def lock_user(db: Database, user_id: int) -> None:
    """In a write transaction: hold the user's personal scripts until commit (PostgreSQL;
    SQLite's writers are serial already), so a count or a shortcut checked before an
    insert still holds at the insert."""
    if db.dialect == "postgresql":
        with db.begin() as conn:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(PERSONAL_LOCK, user_id)))


def add_personal(db: Database, row: dict) -> int:
    """Insert a script (user_id, title, text, shortcut, tags, channels, created_at,
    updated_at); returns its id."""
    with db.begin() as conn:
        return int(
            conn.execute(sa.insert(_personal).values(**row).returning(_personal.c.id)).scalar_one()
        )


def update_personal(db: Database, user_id: int, script_id: int, fields: dict) -> bool:
    stmt = (
        sa.update(_personal)
        .where(_personal.c.id == script_id, _personal.c.user_id == user_id)
        .values(**fields)
    )
    with db.begin() as conn:
        return conn.execute(stmt).rowcount > 0


def delete_personal(db: Database, user_id: int, script_id: int) -> bool:
    stmt = sa.delete(_personal).where(_personal.c.id == script_id, _personal.c.user_id == user_id)
    with db.begin() as conn:
        return conn.execute(stmt).rowcount > 0
