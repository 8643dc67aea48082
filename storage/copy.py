"""Copy every table of one database into another (SQLite to PostgreSQL, usually):
ids kept, rows the target already has left alone (so it is safe to re-run), counts
verified, PostgreSQL's id sequences moved past the copied ids."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from . import schema
from .database import Database

CHUNK = 1000


@dataclass
class CopyReport:
    tables: dict[str, tuple[int, int]] = field(default_factory=dict)  # name: (source, copied)
    mismatched: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatched


def _insert_missing(target: Database, table: sa.Table):
    """INSERT that skips rows whose primary key the target already holds."""
    dialect = postgresql if target.dialect == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(
        index_elements=[c.name for c in table.primary_key.columns]
    )


def copy_database(
    source: Database, target: Database, progress: Callable[[str, int], None] | None = None
) -> CopyReport:
    """Copy `source` into `target` (both migrated to the same head first)."""
    report = CopyReport()
    for table in schema.metadata.sorted_tables:
        pk = list(table.primary_key.columns)
        before = target.counts_of(table)
        with source.read() as src, target.begin() as dst:
            stmt = _insert_missing(target, table)
            rows = src.execute(sa.select(table).order_by(*pk)).mappings()
            while chunk := rows.fetchmany(CHUNK):
                dst.execute(stmt, [dict(r) for r in chunk])
                if progress:
                    progress(table.name, len(chunk))
            if target.dialect == "postgresql" and len(pk) == 1 and pk[0].autoincrement is True:
                _advance_sequence(dst, table, pk[0])
        n_source = source.counts_of(table)
        n_target = target.counts_of(table)
        report.tables[table.name] = (n_source, n_target - before)
        if n_target < n_source:
            report.mismatched.append(table.name)
    return report


def _advance_sequence(conn, table: sa.Table, column: sa.Column) -> None:
    """Ids were copied as they were: the next id the target hands out follows them."""
    seq = conn.execute(sa.select(sa.func.pg_get_serial_sequence(table.name, column.name))).scalar()
    if seq:
        top = conn.execute(sa.select(sa.func.max(column))).scalar()
        if top is not None:
            conn.execute(sa.select(sa.func.setval(seq, top)))
