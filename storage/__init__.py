"""Storage: the one schema, its migrations, and the repositories.

Only this package speaks SQL or creates tables (tests/test_layers.py checks it).
"""

from .database import UNAVAILABLE, Database, DatabaseError, normalize_url, reason, sqlite_url

__all__ = [
    "UNAVAILABLE",
    "Database",
    "DatabaseError",
    "normalize_url",
    "reason",
    "sqlite_url",
]
