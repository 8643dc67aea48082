"""The team's agent names and aliases (core/team_agents.py): team_agents rows."""

from __future__ import annotations

import sqlalchemy as sa

from . import schema
from .database import Database

_agents = schema.team_agents
_COLUMNS = (
    _agents.c.id,
    _agents.c.name,
    _agents.c.username,
    _agents.c.created_by,
    _agents.c.created_at,
)


def listed(db: Database, limit: int | None = None, offset: int = 0) -> list[dict]:
    """The rows, by name."""
    stmt = sa.select(*_COLUMNS).order_by(_agents.c.name, _agents.c.id).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    with db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(_agents)).scalar_one())


def add(db: Database, row: dict) -> int | None:
    """Insert a row; None when the name is taken already."""
    taken = sa.select(_agents.c.id).where(_agents.c.name == row["name"]).limit(1)
    try:
        with db.begin() as conn:
            if conn.execute(taken).first() is not None:
                return None
            return int(conn.execute(sa.insert(_agents).values(**row)).inserted_primary_key[0])
    except sa.exc.IntegrityError:  # a concurrent add of the same name
        return None


def remove(db: Database, agent_id: int) -> dict | None:
    """Delete a row; the row deleted, or None if there was none."""
    with db.begin() as conn:
        row = conn.execute(sa.select(*_COLUMNS).where(_agents.c.id == agent_id)).first()
        if row is None:
            return None
        conn.execute(sa.delete(_agents).where(_agents.c.id == agent_id))
        return dict(row._mapping)
