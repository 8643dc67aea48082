"""Team rule packs (coach/rulebook.py): every saved version of the overlay YAML.

The current version is the newest row, read from the database on every look, so a
version saved by one process (or node) is the one every other process loads next.
"""

from __future__ import annotations

import sqlalchemy as sa

from . import schema
from .database import Database

_packs = schema.rule_packs
_ALL = sa.select(_packs.c.id, _packs.c.yaml, _packs.c.by, _packs.c.at, _packs.c.note)


def current(db: Database) -> dict | None:
    """The newest version (id, yaml, by, at, note), or None."""
    with db.read() as conn:
        row = conn.execute(_ALL.order_by(_packs.c.id.desc()).limit(1)).mappings().first()
    return dict(row) if row is not None else None


def version(db: Database) -> int:
    """The newest version's number, 0 when none was saved."""
    with db.read() as conn:
        return int(conn.execute(sa.select(sa.func.max(_packs.c.id))).scalar() or 0)


def get(db: Database, version: int) -> dict | None:
    with db.read() as conn:
        row = conn.execute(_ALL.where(_packs.c.id == version)).mappings().first()
    return dict(row) if row is not None else None


def history(db: Database, limit: int = 50, offset: int = 0) -> list[dict]:
    """Versions newest first, without their text: id, by, at, note, size (characters)."""
    stmt = (
        sa.select(
            _packs.c.id,
            _packs.c.by,
            _packs.c.at,
            _packs.c.note,
            sa.func.length(_packs.c.yaml).label("size"),
        )
        .order_by(_packs.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with db.read() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def count(db: Database) -> int:
    with db.read() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(_packs)).scalar_one()


# any constant: rule-pack writers of one PostgreSQL database serialise on it
RULES_LOCK = 7_215_021


def add(
    db: Database, yaml: str, by: str, at: str, note: str = "", *, expected: int | None = None
) -> int | None:
    """Store a new version; returns its number.  `expected`: the version the text was
    based on (0: none yet); when the newest version is another one, nothing is stored
    and None is returned (compare-and-set: writers serialise on a lock until commit,
    BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL)."""
    with db.begin() as conn:
        if db.dialect == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(RULES_LOCK)))
        if expected is not None:
            newest = conn.execute(sa.select(sa.func.max(_packs.c.id))).scalar() or 0
            if int(newest) != expected:
                return None
        return int(
            conn.execute(
                sa.insert(_packs).values(yaml=yaml, by=by, at=at, note=note).returning(_packs.c.id)
            ).scalar_one()
        )
