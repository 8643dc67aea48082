"""Copy every table of one database into another (SQLite to PostgreSQL, usually).

The target ends as a copy of the source: ids kept, rows the source changed since a
previous copy updated, rows it no longer has removed (the append-only audit log only
grows), counts verified, PostgreSQL's id sequences moved past the copied ids.  A target
that holds data of another instance is refused: copying would mix two instances."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from . import schema
from .database import Database, DatabaseError

CHUNK = 1000
EPOCH_KEY = "changes.epoch"  # a database's identity (kb/store.py)
COPIED_FROM_KEY = "copy.source"  # in the target: the epoch of the source it copies
APPEND_ONLY = {"audit_log"}


@dataclass
class CopyReport:
    # name: (rows in the source, rows added, rows removed from the target)
    tables: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    mismatched: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatched


def _meta(db: Database, key: str) -> str | None:
    with db.read() as conn:
        return conn.execute(sa.select(schema.meta.c.value).where(schema.meta.c.key == key)).scalar()


def _is_empty(db: Database) -> bool:
    with db.read() as conn:
        return not any(
            conn.execute(sa.select(sa.literal(1)).select_from(t).limit(1)).first()
            for t in (schema.articles, schema.users, schema.qa_runs)
        )


def _upsert(target: Database, table: sa.Table):
    """INSERT, or UPDATE the row the target has under the same key (append-only
    tables: leave it)."""
    dialect = postgresql if target.dialect == "postgresql" else sqlite
    stmt = dialect.insert(table)
    keys = [c.name for c in table.primary_key.columns]
    others = [c.name for c in table.columns if c.name not in keys]
    if table.name in APPEND_ONLY or not others:
        return stmt.on_conflict_do_nothing(index_elements=keys)
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={name: stmt.excluded[name] for name in others}
    )


def copy_database(source: Database, target: Database) -> CopyReport:
    """Make `target` a copy of `source` (both migrated to the same head first)."""
    source_id = _meta(source, EPOCH_KEY)
    if not _is_empty(target) and _meta(target, COPIED_FROM_KEY) != (source_id or ""):
        raise DatabaseError(
            f"目标数据库 {target.display_url} 已有另一个实例的数据：复制会把两个实例混在一起。"
            "请换一个空库（或先清空它）"
        )
    report = CopyReport()
    for table in schema.metadata.sorted_tables:
        pk = list(table.primary_key.columns)
        before = target.counts_of(table)
        seen: set = set()
        with source.read() as src, target.begin() as dst:
            stmt = _upsert(target, table)
            rows = src.execute(sa.select(table).order_by(*pk)).mappings()
            while chunk := rows.fetchmany(CHUNK):
                dst.execute(stmt, [dict(r) for r in chunk])
                seen.update(tuple(r[c.name] for c in pk) for r in chunk)
            removed = 0
            if table.name not in APPEND_ONLY:
                have = dst.execute(sa.select(*pk)).all()
                gone = [tuple(k) for k in have if tuple(k) not in seen]
                for start in range(0, len(gone), CHUNK):
                    part = gone[start : start + CHUNK]
                    where = (
                        pk[0].in_([k[0] for k in part])
                        if len(pk) == 1
                        else sa.tuple_(*pk).in_(part)
                    )
                    dst.execute(sa.delete(table).where(where))
                removed = len(gone)
            if target.dialect == "postgresql" and len(pk) == 1 and pk[0].autoincrement is True:
                _advance_sequence(dst, table, pk[0])
        n_source, n_target = len(seen), target.counts_of(table)
        report.tables[table.name] = (n_source, n_target - before + removed, removed)
        if n_target != n_source and table.name not in APPEND_ONLY:
            report.mismatched.append(table.name)
    with target.begin() as conn:
        conn.execute(
            _upsert(target, schema.meta), [{"key": COPIED_FROM_KEY, "value": source_id or ""}]
        )
    return report


def _advance_sequence(conn, table: sa.Table, column: sa.Column) -> None:
    """Ids were copied as they were: the next id the target hands out follows them."""
    seq = conn.execute(sa.select(sa.func.pg_get_serial_sequence(table.name, column.name))).scalar()
    if seq:
        top = conn.execute(sa.select(sa.func.max(column))).scalar()
        if top is not None:
            conn.execute(sa.select(sa.func.setval(seq, top)))
