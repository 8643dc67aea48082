"""The sync state of Markdown folders (kb/sync.py): per folder and article, the file's
path, the version and the content hash of the last sync."""

from __future__ import annotations

import sqlalchemy as sa

from . import schema
from .database import Database

_sync = schema.kb_sync


def sync_state(db: Database, folder: str) -> dict[str, dict]:
    """article id -> {"path", "version", "sha256", "synced_at"} for one folder."""
    stmt = sa.select(_sync).where(_sync.c.folder == folder)
    with db.read() as conn:
        return {
            row["article_id"]: {k: row[k] for k in ("path", "version", "sha256", "synced_at")}
            for row in conn.execute(stmt).mappings()
        }


def save_sync_state(
    db: Database, folder: str, entries: dict[str, dict], drop: list[str], at: str
) -> None:
    """Record (replace) the given articles' sync entries and forget `drop`, in one
    transaction."""
    with db.begin() as conn:
        ids = list(entries) + list(drop)
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            conn.execute(
                sa.delete(_sync).where(_sync.c.folder == folder, _sync.c.article_id.in_(part))
            )
        rows = [
            {
                "folder": folder,
                "article_id": article_id,
                "path": e["path"],
                "version": e["version"],
                "sha256": e["sha256"],
                "synced_at": at,
            }
            for article_id, e in entries.items()
        ]
        if rows:
            conn.execute(sa.insert(_sync), rows)
