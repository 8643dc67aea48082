"""Backup and restore of an SQLite instance through SQLite's online backup API.

A PostgreSQL store is backed up with PostgreSQL's own tools (pg_dump / pg_restore);
these refuse it with a message saying so.
"""

from __future__ import annotations

import datetime as dt
import secrets
import sqlite3
from pathlib import Path

from kb.errors import KbError, NotFound
from kb.store import EPOCH_KEY, create_private, make_database_private

from .articles import ArticleRepository
from .database import Database

PG_MESSAGE = (
    "备份与恢复命令仅适用于 SQLite 数据库；当前实例使用 PostgreSQL，"
    "请用 pg_dump 备份、pg_restore（或 psql）恢复，恢复后运行 kbcoach migrate 并重建索引"
)


class BackupUnsupported(KbError):
    """The database is not SQLite: PostgreSQL has its own tools."""

    status = 400


def _sqlite_path(database: Database | str | Path) -> Path:
    if isinstance(database, Database):
        if database.dialect != "sqlite":
            raise BackupUnsupported(PG_MESSAGE)
        return database.path
    return Path(database)


def backup(database: Database | str | Path, dest: str | Path) -> Path:
    """Consistent copy of a live database; `dest` a folder (a timestamped name in it) or
    a file.  `database`: the instance's Database, or an SQLite file's path."""
    db_path = _sqlite_path(database)
    dest = Path(dest)
    if dest.is_dir():
        dest = dest / f"kbcoach-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}.db"
    tmp = dest.with_name(dest.name + ".partial")
    tmp.unlink(missing_ok=True)
    create_private(tmp)  # a backup holds the password hashes too
    src = sqlite3.connect(db_path, timeout=30)
    try:
        out = sqlite3.connect(tmp)
        try:
            src.backup(out, pages=1024)
            ok = out.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            out.close()
    finally:
        src.close()
    if ok != "ok":
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"backup integrity check failed: {ok}")
    make_database_private(tmp)
    tmp.replace(dest)
    return dest


def restore(backup_path: str | Path, database: Database | str | Path) -> None:
    """Replace the instance database with a backup (the service must be stopped).

    The backup may come from an older release: the schema is migrated afterwards.  The
    change sequence gets a new epoch, so every index positioned in the old numbering
    rebuilds."""
    db_path = _sqlite_path(database)
    check = sqlite3.connect(f"file:{backup_path}?mode=ro", uri=True)
    try:
        ok = check.execute("PRAGMA integrity_check").fetchone()[0]
        check.execute("SELECT count(*) FROM articles").fetchone()
    except sqlite3.DatabaseError as exc:
        raise NotFound(f"{backup_path} 不是有效的 kbcoach 备份：{exc}") from None
    finally:
        check.close()
    if ok != "ok":
        raise NotFound(f"{backup_path} 完整性检查失败：{ok}")
    src = sqlite3.connect(backup_path)
    dst = sqlite3.connect(db_path, timeout=30)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    make_database_private(db_path)
    restored = Database.open(f"sqlite:///{Path(db_path).resolve()}")
    restored.migrate()
    ArticleRepository(restored).set_setting(EPOCH_KEY, secrets.token_hex(8))


__all__ = ["BackupUnsupported", "PG_MESSAGE", "backup", "restore"]
