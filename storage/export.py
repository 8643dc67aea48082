"""Export an instance's database (SQLite or PostgreSQL) as a standalone SQLite file
that opens in Datasette or any SQLite tool: every table but the secrets, with their
primary keys and the links between them as foreign keys.  Written with sqlite-utils,
which is the tool made for building such a file."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
import sqlite_utils

from . import schema
from .database import Database, _private_file

CHUNK = 2000
# never leave the instance: login material and the cookie-signing key
SECRET_TABLES = {"sessions", "login_failures", "tokens"}
SECRET_COLUMNS = {"users": {"password_hash"}}
SECRET_META_KEYS = {"web.secret_key"}
FOREIGN_KEYS = [
    ("revisions", "article_id", "articles", "id"),
    ("pins", "article_id", "articles", "id"),
    ("qa_items", "run_id", "qa_runs", "id"),
    ("qa_errors", "run_id", "qa_runs", "id"),
    ("qa_findings", "run_id", "qa_runs", "id"),
    ("qa_findings", "item_id", "qa_items", "id"),
    ("qa_appeals", "item_id", "qa_items", "id"),
    ("qa_duplicates", "run_id", "qa_runs", "id"),
    ("personal_scripts", "user_id", "users", "id"),
    ("script_usage", "user_id", "users", "id"),
]
TYPES = {sa.Integer: int, sa.BigInteger: int, sa.Float: float, sa.Text: str}


def _py_type(column: sa.Column) -> type:
    for sql_type, py in TYPES.items():
        if isinstance(column.type, sql_type):
            return py
    return str


def export_sqlite(source: Database, dest: str | Path) -> dict[str, int]:
    """Write `dest` (replaced atomically; owner-only); returns rows per table."""
    dest = Path(dest)
    tmp = dest.with_name(dest.name + ".partial")
    tmp.unlink(missing_ok=True)
    _private_file(str(tmp))
    out = sqlite_utils.Database(tmp)
    counts: dict[str, int] = {}
    try:
        for table in schema.metadata.sorted_tables:
            if table.name in SECRET_TABLES:
                continue
            hidden = SECRET_COLUMNS.get(table.name, set())
            columns = [c for c in table.columns if c.name not in hidden]
            pk = [c.name for c in table.primary_key.columns]
            out[table.name].create(
                {c.name: _py_type(c) for c in columns}, pk=pk[0] if len(pk) == 1 else pk
            )
            stmt = sa.select(*columns).order_by(*table.primary_key.columns)
            if table.name == "meta":
                stmt = stmt.where(table.c.key.not_in(SECRET_META_KEYS))
            n = 0
            with source.read() as conn:
                rows = conn.execute(stmt).mappings()
                while chunk := rows.fetchmany(CHUNK):
                    out[table.name].insert_all([dict(r) for r in chunk], batch_size=CHUNK)
                    n += len(chunk)
            counts[table.name] = n
            for index in table.indexes:
                out[table.name].create_index(
                    [c.name for c in index.columns], index_name=index.name, unique=index.unique
                )
        out.add_foreign_keys([fk for fk in FOREIGN_KEYS if fk[0] in out.table_names()])
        out.conn.commit()
    finally:
        out.close()
    tmp.replace(dest)
    return counts
