"""Long-running jobs (kb/runs.py): the runs table of imports and rebuilds.

A job is a row with its machine and process id; kb/runs.py decides which `running`
rows belong to a process that is gone and marks them interrupted here.
"""

from __future__ import annotations

import sqlalchemy as sa

from . import schema
from .database import Database

_runs = schema.runs


def running(db: Database) -> list[dict]:
    """Jobs still marked running, oldest first."""
    stmt = sa.select(_runs).where(_runs.c.status == "running").order_by(_runs.c.id)
    with db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def any_running(db: Database) -> bool:
    stmt = sa.select(_runs.c.id).where(_runs.c.status == "running").limit(1)
    with db.read() as conn:
        return conn.execute(stmt).first() is not None


def mark_interrupted(db: Database, ids: list[int], at: str) -> None:
    """These jobs (if still running) become interrupted."""
    if not ids:
        return
    stmt = (
        sa.update(_runs)
        .where(_runs.c.id.in_(ids), _runs.c.status == "running")
        .values(status="interrupted", finished_at=at)
    )
    with db.begin() as conn:
        conn.execute(stmt)


def start(db: Database, kind: str, source: str, host: str, pid: int, at: str) -> int:
    """A new running job; returns its id."""
    stmt = (
        sa.insert(_runs)
        .values(
            kind=kind,
            source=source,
            host=host,
            pid=pid,
            started_at=at,
            finished_at="",
            status="running",
            detail="{}",
        )
        .returning(_runs.c.id)
    )
    with db.begin() as conn:
        return int(conn.execute(stmt).scalar_one())


def finish(db: Database, run_id: int, status: str, at: str, detail: str) -> None:
    stmt = (
        sa.update(_runs)
        .where(_runs.c.id == run_id)
        .values(status=status, finished_at=at, detail=detail)
    )
    with db.begin() as conn:
        conn.execute(stmt)


def recent(db: Database, limit: int = 20) -> list[dict]:
    """The newest jobs first."""
    stmt = sa.select(_runs).order_by(_runs.c.id.desc()).limit(limit)
    with db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]
