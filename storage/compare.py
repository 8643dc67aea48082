"""Re-audit and compare (coach/compare.py): a run's stored conversations, the link
from a re-audit to the run it repeats, and both runs' results side by side."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa

from . import schema
from .database import Database

_runs = schema.qa_runs
_items = schema.qa_items
_reaudits = schema.qa_reaudits


def conversations(db: Database, run_id: int, batch: int = 500) -> Iterator[str]:
    """The conversation JSON texts of a run's items, in upload order, a batch at a time."""
    last = -1
    while True:
        stmt = (
            sa.select(_items.c.seq, _items.c.conversation)
            .where(_items.c.run_id == run_id, _items.c.seq > last)
            .order_by(_items.c.seq)
            .limit(batch)
        )
        with db.read() as conn:
            rows = conn.execute(stmt).all()
        if not rows:
            return
        for seq, text in rows:
            last = seq
            yield text


def link(db: Database, run_id: int, of_run: int, rules_version: int) -> None:
    with db.begin() as conn:
        conn.execute(
            sa.insert(_reaudits).values(run_id=run_id, of_run=of_run, rules_version=rules_version)
        )


def reaudit_of(db: Database, run_id: int) -> int | None:
    """The run this run re-audits (None: an upload)."""
    stmt = sa.select(_reaudits.c.of_run).where(_reaudits.c.run_id == run_id)
    with db.read() as conn:
        return conn.execute(stmt).scalar_one_or_none()


def reaudits(db: Database, run_id: int) -> list[int]:
    """The runs that re-audit this one, newest first."""
    stmt = (
        sa.select(_reaudits.c.run_id)
        .where(_reaudits.c.of_run == run_id)
        .order_by(_reaudits.c.run_id.desc())
    )
    with db.read() as conn:
        return [int(r) for (r,) in conn.execute(stmt)]


def results(db: Database, run_id: int, limit: int) -> list[dict]:
    """Checked items of a run (at most `limit`): id, conv_id, agent, score, findings
    (JSON text), in upload order."""
    stmt = (
        sa.select(_items.c.id, _items.c.conv_id, _items.c.agent, _items.c.score, _items.c.findings)
        .where(_items.c.run_id == run_id, _items.c.status == "done")
        .order_by(_items.c.seq)
        .limit(limit)
    )
    with db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]
