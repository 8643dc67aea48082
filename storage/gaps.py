"""Content gaps (kb/gaps.py, core/gaps.py): the searches of a recent window, the
results opened from them, dismissed groups, and the customer questions of audited
conversations that the knowledge base could not answer.

Every read is bounded: the newest `limit` rows since a time, never the whole log.
"""

from __future__ import annotations

import sqlalchemy as sa

from . import schema
from .database import Database

L = schema.search_log
O = schema.search_opens  # noqa: E741 - the opens table, beside L (the log)
D = schema.gap_dismissals
S = schema.gap_scans
Q = schema.gap_questions
ITEMS = schema.qa_items
RUNS = schema.qa_runs


def _upsert(db: Database):
    if db.dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def recent_searches(db: Database, since: str, limit: int) -> list[tuple]:
    """(id, at, q, qkey, hits, via) of the newest `limit` searches at or after `since`,
    oldest first."""
    stmt = (
        sa.select(L.c.id, L.c.at, L.c.q, L.c.qkey, L.c.hits, L.c.via)
        .where(L.c.at >= since)
        .order_by(L.c.id.desc())
        .limit(limit)
    )
    with db.read() as conn:
        rows = [tuple(r) for r in conn.execute(stmt)]
    rows.reverse()
    return rows


def set_search_keys(db: Database, keys: list[tuple[int, str]]) -> None:
    """Store the group key of entries logged before keys were (id, key)."""
    if not keys:
        return
    stmt = sa.update(L).where(L.c.id == sa.bindparam("row_id")).values(qkey=sa.bindparam("key"))
    with db.begin() as conn:
        conn.execute(stmt, [{"row_id": i, "key": k} for i, k in keys])


def add_open(db: Database, entry: dict) -> None:
    with db.begin() as conn:
        conn.execute(sa.insert(O), [entry])


def open_counts(db: Database, since: str) -> dict[str, int]:
    """Opens per query key since a time."""
    stmt = (
        sa.select(O.c.qkey, sa.func.count())
        .where(O.c.at >= since, O.c.qkey.is_not(None))
        .group_by(O.c.qkey)
    )
    with db.read() as conn:
        return {k: int(n) for k, n in conn.execute(stmt)}


def dismissals(db: Database, kind: str, since: str) -> dict[str, str]:
    """key -> when it was last dismissed, for dismissals at or after `since` (an older
    one is older than every entry of the window: those groups show again anyway)."""
    stmt = sa.select(D.c.qkey, D.c.dismissed_at).where(D.c.kind == kind, D.c.dismissed_at >= since)
    with db.read() as conn:
        return dict(conn.execute(stmt).all())


def dismiss(db: Database, kind: str, key: str, at: str, by: str) -> None:
    stmt = _upsert(db)(D).values(kind=kind, qkey=key, dismissed_at=at, dismissed_by=by)
    stmt = stmt.on_conflict_do_update(
        index_elements=[D.c.kind, D.c.qkey], set_={"dismissed_at": at, "dismissed_by": by}
    )
    with db.begin() as conn:
        conn.execute(stmt)


# -- customer questions of audited conversations -------------------------------------


def _unscanned(since: str):
    scanned = sa.select(S.c.item_id).where(S.c.item_id == ITEMS.c.id).exists()
    return (
        sa.select(ITEMS.c.id, ITEMS.c.run_id, ITEMS.c.conversation, RUNS.c.created_at)
        .select_from(ITEMS.join(RUNS, RUNS.c.id == ITEMS.c.run_id))
        .where(ITEMS.c.status == "done", RUNS.c.created_at >= since, ~scanned)
    )


def unscanned_items(db: Database, since: str, limit: int) -> list[dict]:
    """Checked conversations of runs made since a time, not looked at yet, oldest first."""
    stmt = _unscanned(since).order_by(ITEMS.c.id).limit(limit)
    with db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def unscanned_count(db: Database, since: str) -> int:
    stmt = sa.select(sa.func.count()).select_from(_unscanned(since).subquery())
    with db.read() as conn:
        return int(conn.execute(stmt).scalar() or 0)


def record_scans(db: Database, scans: list[dict], questions: list[dict]) -> None:
    """Mark conversations as looked at ({item_id, at, questions}) with what they gave,
    in one transaction; one already marked (by another process meanwhile) is skipped."""
    if not scans:
        return
    with db.begin() as conn:
        have = set(
            conn.execute(
                sa.select(S.c.item_id).where(S.c.item_id.in_([s["item_id"] for s in scans]))
            ).scalars()
        )
        scans = [s for s in scans if s["item_id"] not in have]
        if not scans:
            return
        conn.execute(sa.insert(S), scans)
        keep = {s["item_id"] for s in scans}
        rows = [q for q in questions if q["item_id"] in keep]
        if rows:
            conn.execute(sa.insert(Q), rows)


def recent_questions(db: Database, since: str, limit: int) -> list[tuple]:
    """(id, at, text, qkey, score, article_id, run_id, item_id) of the newest `limit`
    unanswered questions at or after `since`, oldest first."""
    stmt = (
        sa.select(
            Q.c.id, Q.c.at, Q.c.text, Q.c.qkey, Q.c.score, Q.c.article_id, Q.c.run_id, Q.c.item_id
        )  # fmt: skip
        .where(Q.c.at >= since)
        .order_by(Q.c.id.desc())
        .limit(limit)
    )
    with db.read() as conn:
        rows = [tuple(r) for r in conn.execute(stmt)]
    rows.reverse()
    return rows
