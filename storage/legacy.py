"""The sqlite-utils handle ``Store.db`` that modules not yet moved into storage/ use.

Goes away once every module speaks through a repository; SQLite only (None otherwise).
"""

from __future__ import annotations

import sqlite3

import sqlite_utils

from .database import Database


def sqlite_utils_handle(database: Database) -> sqlite_utils.Database | None:
    if database.dialect != "sqlite":
        return None
    conn = sqlite3.connect(database.path, timeout=30, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=30000")
    return sqlite_utils.Database(conn)
