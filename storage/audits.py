"""Audit runs (coach/audits.py): qa_runs, qa_items, qa_errors, qa_appeals, qa_findings,
and qa_uploads (a web upload's files until the worker has read them).

Plain rows in, plain dicts out; the rules (what may be appealed, how a score is
recomputed, which run is stale) stay in coach/audits.py, which groups calls that must
be atomic in one ``with db.begin()`` (inner calls join it).

Conversations and their findings are JSON text.  Whole-item reads parse them in
Python; the conversation page reads one page of turns, and the findings of those
turns, in SQL: SQLite with JSON1 (``json_each``/``json_extract``), PostgreSQL with
``json_array_elements`` over the text cast to ``json`` (not ``jsonb``: it keeps each
finding's text as written).  Those two statements are the only dialect-specific SQL
here.  Counts of findings that still count (not waived by an accepted appeal) come
from the qa_findings table, one row per finding, written with each checked batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import schema
from .database import Database

_runs = schema.qa_runs
_items = schema.qa_items
_errors = schema.qa_errors
_appeals = schema.qa_appeals
_findings = schema.qa_findings
_dupes = schema.qa_duplicates
_uploads = schema.qa_uploads
# a queued run whose files the background worker has still to read
_READING = sa.select(_uploads.c.id).where(_uploads.c.run_id == _runs.c.id).exists()

CHUNK = 500  # rows per executemany of a large upload


def _dicts(result) -> list[dict]:
    return [dict(r._mapping) for r in result]


def _text_order(db: Database, column):
    """Order text by code point on both backends (SQLite's BINARY; PostgreSQL's
    database collation may be a language's, so say "C")."""
    return column.collate("C") if db.dialect == "postgresql" else column


def _chunks(rows: Iterable[dict], size: int = CHUNK) -> Iterator[list[dict]]:
    chunk: list[dict] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# -- runs ------------------------------------------------------------------------------


def create_run(db: Database, run: dict, items: Iterable[dict], errors: Iterable[dict]) -> int:
    """A run with its items and input errors, in one transaction; returns its id."""
    with db.begin():
        run_id = insert_run(db, run)
        for chunk in _chunks({**i, "run_id": run_id} for i in items):
            insert_items(db, chunk)
        insert_errors(db, run_id, errors)
    return run_id


def insert_run(db: Database, run: dict) -> int:
    """A run's row; returns its id."""
    with db.begin() as conn:
        return int(conn.execute(sa.insert(_runs).values(**run).returning(_runs.c.id)).scalar_one())


def insert_items(db: Database, items: list[dict]) -> list[int]:
    """Items (with their run_id) in one statement; returns their ids, in order."""
    if not items:
        return []
    stmt = sa.insert(_items).returning(_items.c.id, sort_by_parameter_order=True)
    with db.begin() as conn:
        return [int(i) for i in conn.execute(stmt, items).scalars()]


def insert_errors(db: Database, run_id: int, errors: Iterable[dict]) -> None:
    with db.begin() as conn:
        for chunk in _chunks(({**e, "run_id": run_id} for e in errors), 5000):
            conn.execute(sa.insert(_errors), chunk)


def set_total(db: Database, run_id: int, total: int) -> None:
    with db.begin() as conn:
        conn.execute(sa.update(_runs).where(_runs.c.id == run_id).values(total=total))


def set_errors(db: Database, run_id: int, errors: int) -> None:
    with db.begin() as conn:
        conn.execute(sa.update(_runs).where(_runs.c.id == run_id).values(errors=errors))


def audited(db: Database, conv_ids: list[str], fingerprints: list[str]) -> list[dict]:
    """Stored items with one of these conversation ids or fingerprints (id, run_id,
    conv_id, fingerprint), oldest first."""
    if not conv_ids and not fingerprints:
        return []
    stmt = (
        sa.select(_items.c.id, _items.c.run_id, _items.c.conv_id, _items.c.fingerprint)
        .where(
            sa.or_(
                _items.c.conv_id.in_(conv_ids or [""]),
                _items.c.fingerprint.in_(fingerprints or [""]),
            )
        )
        .order_by(_items.c.id)
    )
    with db.read() as conn:
        return _dicts(conn.execute(stmt))


def add_duplicates(db: Database, rows: list[dict]) -> None:
    """Conversations of an upload skipped as duplicates (run_id, seq, conv_id, agent,
    fingerprint, reason, of_item, of_run)."""
    if rows:
        with db.begin() as conn:
            conn.execute(sa.insert(_dupes), rows)


def replace_items(db: Database, replaced: list[dict]) -> None:
    """Earlier items re-audited by a later one: {"old": id, "new": id} each."""
    if replaced:
        stmt = (
            sa.update(_items)
            .where(_items.c.id == sa.bindparam("old"), _items.c.replaced_by.is_(None))
            .values(replaced_by=sa.bindparam("new"))
        )
        with db.begin() as conn:
            conn.execute(stmt, replaced)


def duplicates(db: Database, run_id: int, limit: int, offset: int) -> list[dict]:
    """A page of a run's skipped duplicates in upload order."""
    stmt = (
        sa.select(_dupes)
        .where(_dupes.c.run_id == run_id)
        .order_by(_dupes.c.seq, _dupes.c.id)
        .limit(limit)
        .offset(offset)
    )
    with db.read() as conn:
        return _dicts(conn.execute(stmt))


def duplicate_count(db: Database, run_id: int) -> int:
    stmt = sa.select(sa.func.count()).select_from(_dupes).where(_dupes.c.run_id == run_id)
    with db.read() as conn:
        return int(conn.execute(stmt).scalar_one())


def running_runs(db: Database) -> list[dict]:
    """The runs marked running: id, pid, and their heartbeat (claimed_by, claimed_until)."""
    stmt = sa.select(_runs.c.id, _runs.c.pid, _runs.c.claimed_by, _runs.c.claimed_until).where(
        _runs.c.status == "running"
    )
    with db.read() as conn:
        return _dicts(conn.execute(stmt.order_by(_runs.c.id)))


def claim_holders(db: Database, run_id: int, now: float) -> list[str]:
    """Who holds an unexpired claim on a pending item of the run."""
    stmt = (
        sa.select(_items.c.claimed_by)
        .where(
            _items.c.run_id == run_id,
            _items.c.status == "pending",
            _items.c.claimed_until >= now,
        )
        .distinct()
    )
    with db.read() as conn:
        return [h for h in conn.execute(stmt).scalars() if h]


def interrupt(db: Database, run_ids: list[int], dead: list[str]) -> None:
    """Running runs become interrupted; the claims of `dead` workers on their pending
    items are dropped (a resume takes those items at once, not when the claims expire)."""
    if not run_ids:
        return
    with db.begin() as conn:
        if dead:  # items before runs: the order every writer here takes its row locks in
            conn.execute(
                sa.update(_items)
                .where(
                    _items.c.run_id.in_(run_ids),
                    _items.c.status == "pending",
                    _items.c.claimed_by.in_(dead),
                )
                .values(claimed_by=None, claimed_until=None)
            )
        conn.execute(
            sa.update(_runs)
            .where(_runs.c.id.in_(run_ids), _runs.c.status == "running")
            .values(status="interrupted")
        )


def release(db: Database, run_id: int, claimer: str) -> None:
    """Drop the claims `claimer` holds on the run's items (it stops: failed or leaving)."""
    with db.begin() as conn:
        conn.execute(
            sa.update(_items)
            .where(
                _items.c.run_id == run_id,
                _items.c.claimed_until.is_not(None),
                _items.c.claimed_by == claimer,
                _items.c.status == "pending",
            )
            .values(claimed_until=None)
        )


def start_run(db: Database, run_id: int, pid: int, claimer: str, until: float) -> bool:
    """Queued, interrupted or failed → running, started by process `pid` (atomic);
    False if the run is in none of those states."""
    stmt = (
        sa.update(_runs)
        .where(
            _runs.c.id == run_id,
            _runs.c.status.in_(("queued", "interrupted", "failed")),
            ~_READING,  # its files are read first (read_upload), then it runs
        )
        .values(status="running", pid=pid, message="", claimed_by=claimer, claimed_until=until)
    )
    with db.begin() as conn:
        return conn.execute(stmt).rowcount == 1


# -- uploads read in the background ----------------------------------------------------


def add_uploads(db: Database, run_id: int, files: list[dict]) -> None:
    """A run's uploaded files (seq, name, data, options as JSON text)."""
    with db.begin() as conn:
        for f in files:  # one at a time: each may be megabytes
            conn.execute(sa.insert(_uploads).values(**f, run_id=run_id))


def claim_upload(
    db: Database, claimer: str, until: float, now: float, run_id: int | None = None
) -> int | None:
    """Claim a queued run whose files are still to be read (`run_id`, or the oldest
    one nobody holds or whose holder let the claim expire); returns its id or None."""
    stmt = sa.select(_runs.c.id).where(
        _runs.c.status == "queued",
        _READING,
        sa.or_(_runs.c.claimed_until.is_(None), _runs.c.claimed_until < now),
    )
    if run_id is not None:
        stmt = stmt.where(_runs.c.id == run_id)
    with db.read() as conn:  # a look first: an idle poll takes no write lock
        run_ids = list(conn.execute(stmt.order_by(_runs.c.id)).scalars())
    for rid in run_ids:
        with db.begin() as conn:
            claimed = conn.execute(
                sa.update(_runs)
                .where(
                    _runs.c.id == rid,
                    _runs.c.status == "queued",
                    sa.or_(_runs.c.claimed_until.is_(None), _runs.c.claimed_until < now),
                )
                .values(claimed_by=claimer, claimed_until=until)
            ).rowcount
        if claimed == 1:
            return rid
    return None


def upload_files(db: Database, run_id: int) -> list[dict]:
    """A run's stored files (seq, name, data, options), in upload order."""
    stmt = (
        sa.select(_uploads.c.seq, _uploads.c.name, _uploads.c.data, _uploads.c.options)
        .where(_uploads.c.run_id == run_id)
        .order_by(_uploads.c.seq, _uploads.c.id)
    )
    with db.read() as conn:
        return _dicts(conn.execute(stmt))


def upload_stats(db: Database, run_id: int) -> tuple[int, int]:
    """How many files of the run are still to be read, and their bytes."""
    stmt = sa.select(
        sa.func.count(), sa.func.coalesce(sa.func.sum(sa.func.length(_uploads.c.data)), 0)
    ).where(_uploads.c.run_id == run_id)
    with db.read() as conn:
        n, size = conn.execute(stmt).one()
    return int(n), int(size)


def hold_upload(db: Database, run_id: int, claimer: str) -> bool:
    """Inside the caller's transaction: lock the run and say whether `claimer` still
    holds it, queued with its files unread (another worker took an expired claim)."""
    with db.begin() as conn:
        row = conn.execute(
            sa.select(_runs.c.claimed_by, _runs.c.status, _READING.label("reading"))
            .where(_runs.c.id == run_id)
            .with_for_update(of=_runs)
        ).first()
    return row is not None and row.claimed_by == claimer and row.status == "queued" and row.reading


def drop_uploads(db: Database, run_id: int) -> None:
    with db.begin() as conn:
        conn.execute(sa.delete(_uploads).where(_uploads.c.run_id == run_id))


def set_read(db: Database, run_id: int, status: str, pid: int, claimer: str, until: float,
             at: str) -> None:  # fmt: skip
    """The run's files are read: running (its batches are claimed), or done when it
    has no conversation to check."""
    values = {"status": status, "pid": pid, "claimed_by": claimer, "claimed_until": until}
    if status == "done":
        values.update(finished_at=at, claimed_until=None)
    with db.begin() as conn:
        conn.execute(sa.update(_runs).where(_runs.c.id == run_id).values(**values))


def requeue_upload(db: Database, run_id: int) -> bool:
    """A failed run whose files were never read goes back to be read (atomic)."""
    stmt = (
        sa.update(_runs)
        .where(_runs.c.id == run_id, _runs.c.status == "failed", _READING)
        .values(status="queued", message="", finished_at="", claimed_by=None, claimed_until=None)
    )
    with db.begin() as conn:
        return conn.execute(stmt).rowcount == 1


def _claimable(run_id: int, size: int, now: float):
    return (
        sa.select(_items.c.id)
        .where(
            _items.c.run_id == run_id,
            _items.c.status == "pending",
            sa.or_(_items.c.claimed_until.is_(None), _items.c.claimed_until < now),
        )
        .order_by(_items.c.seq, _items.c.id)
        .limit(size)
        # PostgreSQL: rows another worker is claiming right now are passed over, not
        # waited for (SQLite has one writer at a time and no row locks)
        .with_for_update(skip_locked=True)
    )


def claim_batch(
    db: Database,
    claimer: str,
    size: int,
    lease_seconds: float,
    *,
    run_id: int | None = None,
    now: float,
) -> list[dict]:
    """Claim up to `size` unchecked items of one running run (`run_id`, or the oldest
    running run that has unclaimed ones) for `claimer` until now + lease_seconds:
    items nobody holds, or whose holder let the claim expire.  Returns them (id,
    run_id, agent, conversation) in order; [] if there is nothing to claim."""
    running = sa.select(_runs.c.id).where(_runs.c.status == "running")
    if run_id is not None:
        running = running.where(_runs.c.id == run_id)
    with db.read() as conn:  # a look first: an idle poll takes no write lock
        run_ids = list(conn.execute(running.order_by(_runs.c.id)).scalars())
    until = now + lease_seconds
    for rid in run_ids:
        with db.begin() as conn:
            ids = list(conn.execute(_claimable(rid, size, now)).scalars())
            if not ids:
                continue
            conn.execute(
                sa.update(_items)
                .where(_items.c.id.in_(ids))
                .values(claimed_by=claimer, claimed_until=until)
            )
            # the run's heartbeat (row locks: items first, then the run, everywhere)
            conn.execute(
                sa.update(_runs)
                .where(_runs.c.id == rid)
                .values(claimed_by=claimer, claimed_until=until)
            )
            stmt = (
                sa.select(_items.c.id, _items.c.run_id, _items.c.agent, _items.c.conversation)
                .where(_items.c.id.in_(ids))
                .order_by(_items.c.seq, _items.c.id)
            )
            return _dicts(conn.execute(stmt))
    return []


def renew(db: Database, claimer: str, run_id: int, item_ids: list[int], until: float) -> int:
    """Extend `claimer`'s claims on these items (and the run's heartbeat); returns how
    many it still holds."""
    with db.begin() as conn:
        held = conn.execute(
            sa.update(_items)
            .where(
                _items.c.id.in_(item_ids),
                _items.c.claimed_by == claimer,
                _items.c.status == "pending",
            )
            .values(claimed_until=until)
        ).rowcount
        if held:
            conn.execute(
                sa.update(_runs)
                .where(_runs.c.id == run_id)
                .values(claimed_by=claimer, claimed_until=until)
            )
    return held


def beat(db: Database, run_id: int, claimer: str, until: float) -> None:
    """The run's heartbeat from a worker that waits for the others' batches of it."""
    stmt = (
        sa.update(_runs)
        .where(_runs.c.id == run_id, _runs.c.status == "running")
        .values(claimed_by=claimer, claimed_until=until)
    )
    with db.begin() as conn:
        conn.execute(stmt)


_SAVE_ITEM = (
    sa.update(_items)
    .where(_items.c.id == sa.bindparam("item_id"))
    .values(
        status="done",
        score=sa.bindparam("score"),
        findings=sa.bindparam("findings"),
        unchecked=sa.bindparam("unchecked"),
        claimed_until=None,
    )
)


def _complete(conn: Connection, run_id: int, at: str) -> None:
    """The run is done once none of its items is pending (read after the run's row is
    locked: of two workers saving the last batches, the later one sees both)."""
    pending = sa.select(_items.c.id).where(_items.c.run_id == run_id, _items.c.status == "pending")
    conn.execute(
        sa.update(_runs)
        .where(
            _runs.c.id == run_id,
            _runs.c.status.in_(("running", "interrupted")),
            ~pending.exists(),
        )
        .values(status="done", finished_at=at, claimed_until=None)
    )


def save_checked(
    db: Database,
    run_id: int,
    claimer: str,
    done: list[dict],
    findings: list[dict],
    at: str,
    until: float | None = None,
) -> int:
    """Checked items (item_id, score, findings, unchecked as JSON text) and their rows
    of the findings table, saved for the items `claimer` still holds (one whose claim
    expired and was taken is the taker's to save), with the run's progress, and the
    run done if nothing is left: one transaction.  Returns how many were saved.
    `until`: the saver becomes the run's last worker (its claim on the run lasts until
    then), so between its batches the run is not taken for abandoned when the worker
    that claimed before it has died."""
    with db.begin() as conn:
        mine = set(
            conn.execute(
                sa.select(_items.c.id)
                .where(
                    _items.c.id.in_([d["item_id"] for d in done]),
                    _items.c.claimed_by == claimer,
                    _items.c.status == "pending",
                )
                .with_for_update()
            ).scalars()
        )
        done = [d for d in done if d["item_id"] in mine]
        findings = [f for f in findings if f["item_id"] in mine]
        if done:
            conn.execute(_SAVE_ITEM, done)
        if findings:
            conn.execute(sa.insert(_findings), findings)
        values: dict = {"checked": _runs.c.checked + len(done)}
        if until is not None and done:
            values.update(claimed_by=claimer, claimed_until=until)
        conn.execute(sa.update(_runs).where(_runs.c.id == run_id).values(**values))
        _complete(conn, run_id, at)
    return len(done)


def complete_run(db: Database, run_id: int, at: str) -> None:
    """Mark the run done if none of its items is pending (a run of no conversations)."""
    with db.begin() as conn:
        conn.execute(sa.select(_runs.c.id).where(_runs.c.id == run_id).with_for_update())
        _complete(conn, run_id, at)


def fail_run(db: Database, run_id: int, at: str, message: str) -> None:
    stmt = (
        sa.update(_runs)
        .where(_runs.c.id == run_id)
        .values(status="failed", finished_at=at, message=message)
    )
    with db.begin() as conn:
        conn.execute(stmt)


def get_run(db: Database, run_id: int) -> dict | None:
    """A run's row, with `reading`: whether its files are still to be read."""
    stmt = sa.select(_runs, _READING.label("reading")).where(_runs.c.id == run_id)
    with db.read() as conn:
        row = conn.execute(stmt).first()
    if row is None:
        return None
    out = dict(row._mapping)
    out["reading"] = bool(out["reading"])
    return out


def _mean(column):
    """round(avg(column), 1): PostgreSQL rounds to a digit only numeric, so both
    backends round the average as numeric/real and hand back a float."""
    return sa.func.round(sa.cast(sa.func.avg(column), sa.Numeric), 1)


def list_runs(db: Database, limit: int, offset: int) -> list[dict]:
    """Runs newest first, each with the mean score of its checked items."""
    mean = (
        sa.select(_mean(_items.c.score))
        .where(_items.c.run_id == _runs.c.id, _items.c.status == "done")
        .scalar_subquery()
        .label("mean_score")
    )
    stmt = (
        sa.select(_runs, mean, _READING.label("reading"))
        .order_by(_runs.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with db.read() as conn:
        out = _dicts(conn.execute(stmt))
    for r in out:
        r["reading"] = bool(r["reading"])
        if r["mean_score"] is not None:
            r["mean_score"] = float(r["mean_score"])
    return out


def count_runs(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(_runs)).scalar_one())


def errors(db: Database, run_id: int, limit: int, offset: int) -> list[dict]:
    stmt = (
        sa.select(_errors.c.path, _errors.c.line, _errors.c.reason)
        .where(_errors.c.run_id == run_id)
        .order_by(_errors.c.id)
        .limit(limit)
        .offset(offset)
    )
    with db.read() as conn:
        return _dicts(conn.execute(stmt))


def error_count(db: Database, run_id: int) -> int:
    stmt = sa.select(sa.func.count()).select_from(_errors).where(_errors.c.run_id == run_id)
    with db.read() as conn:
        return int(conn.execute(stmt).scalar_one())


# -- items -----------------------------------------------------------------------------

# findings of an item that still count: an accepted appeal waives one
_NFINDINGS = (
    sa.select(sa.func.count())
    .select_from(_findings)
    .where(_findings.c.item_id == _items.c.id, _findings.c.waived == 0)
    .scalar_subquery()
    .label("nfindings")
)
_LISTED_ITEM = [
    _items.c.id,
    _items.c.seq,
    _items.c.conv_id,
    _items.c.agent,
    _items.c.source,
    _items.c.status,
    _items.c.score,
    _items.c.turns,
    _items.c.agent_turns,
    _NFINDINGS,
]


def items(db: Database, run_id: int, agent: str | None, limit: int, offset: int) -> list[dict]:
    """A run's items, checked ones first, lowest score first."""
    stmt = sa.select(*_LISTED_ITEM).where(_items.c.run_id == run_id)
    if agent is not None:
        stmt = stmt.where(_items.c.agent == agent)
    stmt = stmt.order_by(_items.c.status == "pending", _items.c.score, _items.c.seq, _items.c.id)
    with db.read() as conn:
        return _dicts(conn.execute(stmt.limit(limit).offset(offset)))


def item_count(db: Database, run_id: int, agent: str | None = None) -> int:
    stmt = sa.select(sa.func.count()).select_from(_items).where(_items.c.run_id == run_id)
    if agent is not None:
        stmt = stmt.where(_items.c.agent == agent)
    with db.read() as conn:
        return int(conn.execute(stmt).scalar_one())


def get_item(db: Database, item_id: int) -> dict | None:
    """Every column of an item (JSON columns as text)."""
    with db.read() as conn:
        row = conn.execute(sa.select(_items).where(_items.c.id == item_id)).first()
    return dict(row._mapping) if row else None


def item_head(db: Database, item_id: int) -> dict | None:
    """An item's columns but the conversation and findings, with `nfindings`: the
    listed columns plus the run and the rules it could not check."""
    stmt = sa.select(*_LISTED_ITEM, _items.c.run_id, _items.c.unchecked).where(
        _items.c.id == item_id
    )
    with db.read() as conn:
        row = conn.execute(stmt).first()
    return dict(row._mapping) if row else None


_TURNS = {
    "sqlite": sa.text(
        "SELECT j.key AS n, json_extract(j.value, '$.role') AS role, "
        "substr(json_extract(j.value, '$.speaker'), 1, 200) AS speaker, "
        "json_extract(j.value, '$.ts') AS ts, "
        "substr(json_extract(j.value, '$.text'), 1, :clip) AS text, "
        "length(json_extract(j.value, '$.text')) AS size "
        "FROM qa_items, json_each(qa_items.conversation, '$.turns') AS j "
        "WHERE qa_items.id = :item_id ORDER BY j.key LIMIT :limit OFFSET :offset"
    ),
    # ts as JSON text (a number stays a number once decoded, as SQLite hands it back)
    "postgresql": sa.text(
        "SELECT j.n - 1 AS n, j.value ->> 'role' AS role, "
        "substr(j.value ->> 'speaker', 1, 200) AS speaker, "
        "CAST(j.value -> 'ts' AS text) AS ts, "
        "substr(j.value ->> 'text', 1, :clip) AS text, "
        "length(j.value ->> 'text') AS size "
        "FROM qa_items CROSS JOIN LATERAL "
        "json_array_elements(CAST(qa_items.conversation AS json) -> 'turns') "
        "WITH ORDINALITY AS j(value, n) "
        "WHERE qa_items.id = :item_id ORDER BY j.n LIMIT :limit OFFSET :offset"
    ),
}


def turns(db: Database, item_id: int, clip: int, limit: int, offset: int) -> list[dict]:
    """A page of a conversation's turns: n, role, speaker (200 characters at most), ts,
    text (`clip` characters at most) and size (the text's whole length)."""
    params = {"item_id": item_id, "clip": clip, "limit": limit, "offset": offset}
    with db.read() as conn:
        out = _dicts(conn.execute(_TURNS[db.dialect], params))
    if db.dialect == "postgresql":
        for t in out:
            t["ts"] = json.loads(t["ts"]) if t["ts"] is not None else None
    return out


_FINDINGS_OF_TURNS = {
    "sqlite": (
        "SELECT j.key AS n, j.value AS f FROM qa_items, json_each(qa_items.findings) AS j "
        "WHERE qa_items.id = :item_id AND json_extract(j.value, '$.turn') {cond} "
        "ORDER BY j.key LIMIT :limit"
    ),
    "postgresql": (
        "SELECT j.n - 1 AS n, CAST(j.value AS text) AS f FROM qa_items CROSS JOIN LATERAL "
        "json_array_elements(CAST(qa_items.findings AS json)) WITH ORDINALITY AS j(value, n) "
        "WHERE qa_items.id = :item_id AND CAST(j.value ->> 'turn' AS numeric) {cond} "
        "ORDER BY j.n LIMIT :limit"
    ),
}
_FINDINGS_BETWEEN = {
    d: sa.text(sql.format(cond="BETWEEN :first AND :last")) for d, sql in _FINDINGS_OF_TURNS.items()
}
_FINDINGS_FROM = {d: sa.text(sql.format(cond=">= :first")) for d, sql in _FINDINGS_OF_TURNS.items()}


def findings_of_turns(
    db: Database, item_id: int, first: int, last: int | None, limit: int
) -> list[dict]:
    """The findings (decoded, with their `index`) of turns first..last (None: first
    and after), in order, `limit` at most."""
    params = {"item_id": item_id, "first": first, "last": last, "limit": limit}
    stmt = (_FINDINGS_FROM if last is None else _FINDINGS_BETWEEN)[db.dialect]
    out = []
    with db.read() as conn:
        for n, text in conn.execute(stmt, params):
            finding = json.loads(text)
            finding["index"] = int(n)
            out.append(finding)
    return out


_FINDING_TURN = {
    "sqlite": sa.text("SELECT json_extract(findings, :path) FROM qa_items WHERE id = :item_id"),
    "postgresql": sa.text(
        "SELECT CAST(CAST(findings AS json) -> CAST(:n AS integer) -> 'turn' AS text) "
        "FROM qa_items WHERE id = :item_id"
    ),
}


def finding_turn(db: Database, item_id: int, finding: int) -> int | None:
    """The `turn` of an item's finding number `finding` (None if there is none)."""
    params = {"item_id": item_id, "path": f"$[{int(finding)}].turn", "n": int(finding)}
    with db.read() as conn:
        value = conn.execute(_FINDING_TURN[db.dialect], params).scalar()
    if isinstance(value, str):  # PostgreSQL: the JSON text of the value
        value = json.loads(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def items_of_agent(db: Database, agent: str, limit: int, offset: int) -> list[dict]:
    """An agent's checked items across runs, newest run first, lowest score first (a
    conversation re-audited later only once: its newest item)."""
    stmt = (
        sa.select(
            _items.c.id,
            _items.c.run_id,
            _items.c.conv_id,
            _items.c.score,
            _items.c.turns,
            _runs.c.name.label("run_name"),
            _runs.c.created_at,
            _NFINDINGS,
        )
        .select_from(_items.join(_runs, _runs.c.id == _items.c.run_id))
        .where(_items.c.agent == agent, _items.c.status == "done", _items.c.replaced_by.is_(None))
        .order_by(_items.c.run_id.desc(), _items.c.score, _items.c.id)
        .limit(limit)
        .offset(offset)
    )
    with db.read() as conn:
        return _dicts(conn.execute(stmt))


def items_of_agent_count(db: Database, agent: str) -> int:
    stmt = (
        sa.select(sa.func.count())
        .select_from(_items)
        .where(_items.c.agent == agent, _items.c.status == "done", _items.c.replaced_by.is_(None))
    )
    with db.read() as conn:
        return int(conn.execute(stmt).scalar_one())


def agent_count(db: Database, run_id: int) -> int:
    stmt = sa.select(sa.func.count(sa.distinct(_items.c.agent))).where(
        _items.c.run_id == run_id, _items.c.status == "done"
    )
    with db.read() as conn:
        return int(conn.execute(stmt).scalar_one())


def agent_figures(
    db: Database, run_id: int, limit: int | None, offset: int
) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Per-agent aggregates of a run's checked items, lowest mean score first (then by
    agent), `limit` agents from `offset` (None: all):
    (agents: (agent, conversations, mean score, agent turns),
     rules: (agent, rule, category, count) most frequent first,
     matches: (agent, rule, match) most frequent first) of the findings that count."""
    mean = _mean(_items.c.score)
    stmt = (
        sa.select(_items.c.agent, sa.func.count(), mean, sa.func.sum(_items.c.agent_turns))
        .where(_items.c.run_id == run_id, _items.c.status == "done")
        .group_by(_items.c.agent)
        .order_by(mean, _text_order(db, _items.c.agent))
    )
    if limit is not None:
        stmt = stmt.limit(limit).offset(offset)
    with db.read() as conn:
        agents = [
            (a, int(n), float(m) if m is not None else None, int(t or 0))
            for a, n, m, t in conn.execute(stmt)
        ]
        if not agents:
            return [], [], []
        names = [a[0] for a in agents]
        counted = sa.and_(
            _findings.c.run_id == run_id, _findings.c.waived == 0, _findings.c.agent.in_(names)
        )
        n = sa.func.count()
        rules = conn.execute(
            sa.select(_findings.c.agent, _findings.c.rule, sa.func.min(_findings.c.category), n)
            .where(counted)
            .group_by(_findings.c.agent, _findings.c.rule)
            .order_by(_findings.c.agent, n.desc(), sa.func.min(_findings.c.id))
        ).all()
        matches = conn.execute(
            sa.select(_findings.c.agent, _findings.c.rule, _findings.c.match)
            .where(counted, _findings.c.match != "")
            .group_by(_findings.c.agent, _findings.c.rule, _findings.c.match)
            .order_by(_findings.c.agent, _findings.c.rule, n.desc(), sa.func.min(_findings.c.id))
        ).all()
    return agents, [tuple(r) for r in rules], [tuple(m) for m in matches]


# -- appeals ---------------------------------------------------------------------------


def lock_item(db: Database, item_id: int) -> dict | None:
    """An item's id, findings (JSON text) and score, its row locked until the
    transaction ends on PostgreSQL (SQLite's writer is alone already): appeals and
    decisions on one conversation take turns."""
    stmt = sa.select(_items.c.id, _items.c.findings, _items.c.score).where(_items.c.id == item_id)
    with db.begin() as conn:
        row = conn.execute(stmt.with_for_update()).first()
    return dict(row._mapping) if row else None


def add_appeal(db: Database, appeal: dict) -> int:
    stmt = sa.insert(_appeals).values(**appeal).returning(_appeals.c.id)
    with db.begin() as conn:
        return int(conn.execute(stmt).scalar_one())


def appeal_row(db: Database, appeal_id: int, *, lock: bool = False) -> dict | None:
    """The appeal's own columns (locked until the transaction ends, with `lock`)."""
    stmt = sa.select(_appeals).where(_appeals.c.id == appeal_id)
    with db.begin() if lock else db.read() as conn:
        row = conn.execute(stmt.with_for_update() if lock else stmt).first()
    return dict(row._mapping) if row else None


def decide_appeal(db: Database, appeal_id: int, status: str, by: str, at: str, note: str) -> bool:
    """An open appeal gets its decision; False if it was decided already."""
    stmt = (
        sa.update(_appeals)
        .where(_appeals.c.id == appeal_id, _appeals.c.status == "open")
        .values(status=status, decided_by=by, decided_at=at, note=note)
    )
    with db.begin() as conn:
        return conn.execute(stmt).rowcount == 1


def waive(db: Database, item_id: int, finding: int, findings: str, score: float) -> None:
    """A finding waived: the item's findings (JSON text) and score rewritten, and its
    row of the findings table no longer counted."""
    with db.begin() as conn:
        conn.execute(
            sa.update(_items).where(_items.c.id == item_id).values(findings=findings, score=score)
        )
        conn.execute(
            sa.update(_findings)
            .where(_findings.c.item_id == item_id, _findings.c.idx == finding)
            .values(waived=1)
        )


_APPEAL_LISTED = sa.select(_appeals, _items.c.run_id, _items.c.conv_id, _items.c.agent).select_from(
    _appeals.join(_items, _items.c.id == _appeals.c.item_id)
)


def _appeal_filter(stmt, item_id, status, by, findings):
    for column, value in (
        (_appeals.c.item_id, item_id),
        (_appeals.c.status, status),
        (_appeals.c.by, by),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if findings is not None:
        stmt = stmt.where(_appeals.c.finding.in_(list(findings)))
    return stmt


def get_appeal(db: Database, appeal_id: int) -> dict | None:
    """One appeal with the run, conversation and agent it belongs to."""
    with db.read() as conn:
        row = conn.execute(_APPEAL_LISTED.where(_appeals.c.id == appeal_id)).first()
    return dict(row._mapping) if row else None


def appeals(
    db: Database,
    *,
    item_id: int | None = None,
    status: str | None = None,
    by: str | None = None,
    findings: list[int] | None = None,
    limit: int = 500,
    offset: int = 0,
) -> list[dict]:
    """Appeals newest first (with run, conversation and agent); limit < 0: all."""
    stmt = _appeal_filter(_APPEAL_LISTED, item_id, status, by, findings)
    stmt = stmt.order_by(_appeals.c.id.desc()).offset(max(offset, 0))
    if limit >= 0:
        stmt = stmt.limit(limit)
    with db.read() as conn:
        return _dicts(conn.execute(stmt))


def appeal_count(db: Database, *, status: str | None = None, by: str | None = None) -> int:
    stmt = sa.select(sa.func.count()).select_from(_appeals)
    stmt = _appeal_filter(stmt, None, status, by, None)
    with db.read() as conn:
        return int(conn.execute(stmt).scalar_one())


# -- exports ---------------------------------------------------------------------------

_COUNTED = (
    sa.select(sa.func.count())
    .select_from(_findings)
    .where(_findings.c.item_id == _items.c.id, _findings.c.waived == 0)
    .scalar_subquery()
)


def _scoped(stmt, run_id: int | None, agent: str | None, since: str | None, until: str | None):
    """Checked items of one run, or (run_id None) of every run but each conversation
    once (not replaced by a later audit); of one agent; of runs made in [since, until)."""
    stmt = stmt.where(_items.c.status == "done")
    if run_id is not None:
        stmt = stmt.where(_items.c.run_id == run_id)
    else:
        stmt = stmt.where(_items.c.replaced_by.is_(None))
    if agent is not None:
        stmt = stmt.where(_items.c.agent == agent)
    if since:
        stmt = stmt.where(_runs.c.created_at >= since)
    if until:
        stmt = stmt.where(_runs.c.created_at < until)
    return stmt


def export_items(
    db: Database,
    scope: dict,
    after: int,
    limit: int,
    *,
    conversation: bool = False,
) -> list[dict]:
    """A page of the items of `scope` (run_id, agent, since, until) with id > `after`,
    by id (keyset paging: each page costs the same however far the export is): the
    item's columns, `nfindings` (still counted), `findings` (JSON text), the run's
    name and date, and the conversation (JSON text) if asked."""
    columns = [
        _items.c.id,
        _items.c.run_id,
        _items.c.conv_id,
        _items.c.agent,
        _items.c.source,
        _items.c.score,
        _items.c.turns,
        _items.c.agent_turns,
        _items.c.findings,
        _COUNTED.label("nfindings"),
        _runs.c.name.label("run_name"),
        _runs.c.created_at.label("run_at"),
    ]
    if conversation:
        columns.append(_items.c.conversation)
    stmt = sa.select(*columns).select_from(_items.join(_runs, _runs.c.id == _items.c.run_id))
    stmt = _scoped(stmt, **scope).where(_items.c.id > after).order_by(_items.c.id).limit(limit)
    with db.read() as conn:
        return _dicts(conn.execute(stmt))


def appeals_of(db: Database, item_ids: list[int]) -> list[dict]:
    """The appeals of these items (item_id, finding, status), oldest first."""
    if not item_ids:
        return []
    stmt = (
        sa.select(_appeals.c.item_id, _appeals.c.finding, _appeals.c.status)
        .where(_appeals.c.item_id.in_(item_ids))
        .order_by(_appeals.c.id)
    )
    with db.read() as conn:
        return _dicts(conn.execute(stmt))


def export_agents(db: Database, scope: dict) -> list[dict]:
    """Per agent of `scope`: conversations, agent turns, mean score, findings still
    counted; lowest mean score first."""
    mean = _mean(_items.c.score)
    stmt = sa.select(
        _items.c.agent,
        sa.func.count().label("conversations"),
        sa.func.sum(_items.c.agent_turns).label("agent_turns"),
        mean.label("mean_score"),
        sa.func.sum(_COUNTED).label("findings"),
    ).select_from(_items.join(_runs, _runs.c.id == _items.c.run_id))
    stmt = (
        _scoped(stmt, **scope)
        .group_by(_items.c.agent)
        .order_by(mean, _text_order(db, _items.c.agent))
    )
    with db.read() as conn:
        out = _dicts(conn.execute(stmt))
    for r in out:
        r["mean_score"] = float(r["mean_score"]) if r["mean_score"] is not None else None
        r["agent_turns"] = int(r["agent_turns"] or 0)
        r["findings"] = int(r["findings"] or 0)
    return out
