"""Storage: the one schema, its migrations, and the repositories.

Only this package speaks SQL or creates tables (tests/test_layers.py checks it).
"""

from .database import Database, DatabaseError, normalize_url, sqlite_url

__all__ = ["Database", "DatabaseError", "normalize_url", "sqlite_url"]
