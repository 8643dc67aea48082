"""Calibration samples (core/calibration.py): cal_samples, cal_items, cal_reviews,
cal_answers, cal_misses, and the audited conversations a sample is drawn from.

Plain rows in, plain dicts out; JSON columns stay text here.  The rules (who may
review, what a complete review is, the agreement figures) are in core/calibration.py.
"""

from __future__ import annotations

import sqlalchemy as sa

from . import schema
from .agent_audits import not_moved
from .database import Database

_samples = schema.cal_samples
_citems = schema.cal_items
_reviews = schema.cal_reviews
_answers = schema.cal_answers
_misses = schema.cal_misses
_items = schema.qa_items
_runs = schema.qa_runs


def _dicts(result) -> list[dict]:
    return [dict(r._mapping) for r in result]


# -- what a sample is drawn from --------------------------------------------------------


def candidates(
    db: Database,
    *,
    since: str | None,
    before: str | None,
    run_id: int | None,
    agents: list[str],
    limit: int,
) -> list[dict]:
    """Checked conversations to draw from, as (id, agent): of one run, or else the
    latest audit of each agent's conversation among runs made in [since, before);
    of the agents named (all if none); by agent, then id; `limit` rows at most."""
    if run_id is not None:
        ids = sa.select(_items.c.id).select_from(_items.join(_runs, _runs.c.id == _items.c.run_id))
        ids = ids.where(_items.c.run_id == run_id, _items.c.status == "done")
    else:
        ids = (
            sa.select(sa.func.max(_items.c.id))
            .select_from(_items.join(_runs, _runs.c.id == _items.c.run_id))
            .where(_items.c.status == "done", not_moved())
            .group_by(_items.c.agent, _items.c.conv_id)
        )
    if since:
        ids = ids.where(_runs.c.created_at >= since)
    if before:
        ids = ids.where(_runs.c.created_at < before)
    if agents:
        ids = ids.where(_items.c.agent.in_(agents))
    stmt = (
        sa.select(_items.c.id, _items.c.agent)
        .where(_items.c.id.in_(ids))
        .order_by(_items.c.agent, _items.c.id)
        .limit(limit)
    )
    with db.read() as conn:
        return [{"id": int(r.id), "agent": r.agent or ""} for r in conn.execute(stmt)]


def audited_items(db: Database, ids: list[int]) -> list[dict]:
    """id, run_id, agent, conv_id, turns and findings (JSON text) of these items."""
    if not ids:
        return []
    stmt = sa.select(
        _items.c.id,
        _items.c.run_id,
        _items.c.agent,
        _items.c.conv_id,
        _items.c.turns,
        _items.c.findings,
    ).where(_items.c.id.in_(ids))
    with db.read() as conn:
        return _dicts(conn.execute(stmt))


def run_exists(db: Database, run_id: int) -> bool:
    with db.read() as conn:
        return conn.execute(sa.select(_runs.c.id).where(_runs.c.id == run_id)).first() is not None


# -- samples ----------------------------------------------------------------------------


def create_sample(db: Database, sample: dict, items: list[dict]) -> int:
    """Store a sample and its conversations (each row: seq, item_id, run_id, agent,
    conv_id, turns, findings) in one transaction; returns its id."""
    with db.begin() as conn:
        sample_id = int(
            conn.execute(sa.insert(_samples).values(**sample).returning(_samples.c.id)).scalar_one()
        )
        if items:
            conn.execute(sa.insert(_citems), [{**r, "sample_id": sample_id} for r in items])
    return sample_id


def get_sample(db: Database, sample_id: int) -> dict | None:
    with db.read() as conn:
        row = conn.execute(sa.select(_samples).where(_samples.c.id == sample_id)).first()
    return dict(row._mapping) if row else None


def samples(db: Database, limit: int, offset: int) -> list[dict]:
    """Samples, newest first, each with `submitted`: how many reviews are submitted."""
    submitted = (
        sa.select(sa.func.count())
        .select_from(_reviews)
        .where(_reviews.c.sample_id == _samples.c.id, _reviews.c.status == "submitted")
        .scalar_subquery()
        .label("submitted")
    )
    stmt = sa.select(_samples, submitted).order_by(_samples.c.id.desc()).limit(limit).offset(offset)
    with db.read() as conn:
        return _dicts(conn.execute(stmt))


def sample_count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(_samples)).scalar_one())


def sample_items(db: Database, sample_id: int) -> list[dict]:
    """A sample's conversations in order (findings as JSON text)."""
    stmt = sa.select(_citems).where(_citems.c.sample_id == sample_id).order_by(_citems.c.seq)
    with db.read() as conn:
        return _dicts(conn.execute(stmt))


def sample_item(db: Database, sample_id: int, seq: int) -> dict | None:
    stmt = sa.select(_citems).where(_citems.c.sample_id == sample_id, _citems.c.seq == seq)
    with db.read() as conn:
        row = conn.execute(stmt).first()
    return dict(row._mapping) if row else None


# -- reviews ----------------------------------------------------------------------------


def get_review(db: Database, sample_id: int, reviewer: str) -> dict | None:
    stmt = sa.select(_reviews).where(
        _reviews.c.sample_id == sample_id, _reviews.c.reviewer == reviewer
    )
    with db.read() as conn:
        row = conn.execute(stmt).first()
    return dict(row._mapping) if row else None


def start_review(db: Database, sample_id: int, reviewer: str, status: str, at: str) -> dict:
    """The reviewer's review of the sample, made with `status` if there is none yet
    (two requests at once make one: the unique index settles it)."""
    row = get_review(db, sample_id, reviewer)
    if row is not None:
        return row
    try:
        with db.begin() as conn:
            conn.execute(
                sa.insert(_reviews).values(
                    sample_id=sample_id, reviewer=reviewer, status=status, started_at=at
                )
            )
    except sa.exc.IntegrityError:
        pass  # made by a request of the same reviewer in between
    row = get_review(db, sample_id, reviewer)
    assert row is not None
    return row


def submit_review(db: Database, review_id: int, at: str) -> bool:
    """Mark an open review submitted; False if it was not open."""
    stmt = (
        sa.update(_reviews)
        .where(_reviews.c.id == review_id, _reviews.c.status == "open")
        .values(status="submitted", submitted_at=at)
    )
    with db.begin() as conn:
        return conn.execute(stmt).rowcount == 1


def reviews(db: Database, sample_id: int) -> list[dict]:
    """The sample's reviews in the order they were started."""
    stmt = sa.select(_reviews).where(_reviews.c.sample_id == sample_id).order_by(_reviews.c.id)
    with db.read() as conn:
        return _dicts(conn.execute(stmt))


# -- answers and misses -----------------------------------------------------------------


def save_answer(
    db: Database, review_id: int, cal_item_id: int, rating: int, verdicts: str, at: str
) -> bool:
    """Keep a reviewer's rating and verdicts (JSON text) on one conversation, only
    while the review is open; False if it is not."""
    with db.begin() as conn:
        status = conn.execute(
            sa.select(_reviews.c.status).where(_reviews.c.id == review_id)
        ).scalar()
        if status != "open":
            return False
        values = {"rating": rating, "verdicts": verdicts, "saved_at": at}
        updated = conn.execute(
            sa.update(_answers)
            .where(_answers.c.review_id == review_id, _answers.c.cal_item_id == cal_item_id)
            .values(**values)
        ).rowcount
        if not updated:
            conn.execute(
                sa.insert(_answers).values(review_id=review_id, cal_item_id=cal_item_id, **values)
            )
        return True


def answers(db: Database, review_ids: list[int]) -> list[dict]:
    """review_id, cal_item_id, rating, verdicts (JSON text) of these reviews."""
    if not review_ids:
        return []
    stmt = (
        sa.select(
            _answers.c.review_id, _answers.c.cal_item_id, _answers.c.rating, _answers.c.verdicts
        )
        .where(_answers.c.review_id.in_(review_ids))
        .order_by(_answers.c.review_id, _answers.c.cal_item_id)
    )
    with db.read() as conn:
        return _dicts(conn.execute(stmt))


def add_miss(db: Database, row: dict) -> int | None:
    """Keep a missed finding while its review is open; its id, or None if not open."""
    with db.begin() as conn:
        status = conn.execute(
            sa.select(_reviews.c.status).where(_reviews.c.id == row["review_id"])
        ).scalar()
        if status != "open":
            return None
        return int(conn.execute(sa.insert(_misses).values(**row).returning(_misses.c.id)).scalar())


def delete_miss(db: Database, review_id: int, miss_id: int) -> bool:
    """Remove one of an open review's missed findings; False if there is none."""
    open_review = sa.select(_reviews.c.id).where(
        _reviews.c.id == review_id, _reviews.c.status == "open"
    )
    stmt = sa.delete(_misses).where(
        _misses.c.id == miss_id,
        _misses.c.review_id == review_id,
        _misses.c.review_id.in_(open_review),
    )
    with db.begin() as conn:
        return conn.execute(stmt).rowcount == 1


def misses(db: Database, review_ids: list[int]) -> list[dict]:
    if not review_ids:
        return []
    stmt = (
        sa.select(_misses)
        .where(_misses.c.review_id.in_(review_ids))
        .order_by(_misses.c.cal_item_id, _misses.c.turn, _misses.c.id)
    )
    with db.read() as conn:
        return _dicts(conn.execute(stmt))
