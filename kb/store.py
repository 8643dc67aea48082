"""SQLite store (sqlite-utils, WAL): articles, every revision, the search log, and the
change sequence that feeds every node's search index.

The ``changes`` table gets one row per write of something the index holds, in the
same transaction as the write; ``seq`` is AUTOINCREMENT, so it only grows and is
never reused.  SQLite serialises writers, so rows become visible in ``seq`` order:
a node that has applied everything up to N never misses a change numbered <= N.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import sqlite3
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import sqlite_utils

from .errors import NotFound
from .models import Article

if TYPE_CHECKING:
    from storage import Database

ARTICLE_COLUMNS = {
    "id": str,
    "title": str,
    "category": str,
    "body": str,
    "tags": str,
    "similar": str,
    "owner": str,
    "review_by": str,
    "status": str,
    "version": int,
    "created_at": str,
    "updated_at": str,
    "updated_by": str,
}
EPOCH_KEY = "changes.epoch"
CHANGE_FIELDS = ("title", "category", "body", "tags", "similar", "owner", "review_by", "status")


PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def make_private(path: str | Path, mode: int = PRIVATE_FILE) -> None:
    """Owner-only access for an existing file or folder (the database holds password
    hashes); a no-op when it is already so or the file is gone."""
    try:
        if stat.S_IMODE(os.stat(path).st_mode) & 0o077:
            os.chmod(path, mode)
    except FileNotFoundError:
        pass


def create_private(path: str | Path) -> None:
    """Create an empty owner-only file if it does not exist yet."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        pass


def make_database_private(db_path: str | Path) -> None:
    """The database and its -wal/-shm files, owner-only."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        make_private(f"{db_path}{suffix}")


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _row(article: Article) -> dict:
    return {
        "id": article.id,
        "title": article.title,
        "category": article.category,
        "body": article.body,
        "tags": json.dumps(article.tags, ensure_ascii=False),
        "similar": json.dumps(article.similar, ensure_ascii=False),
        "owner": article.owner,
        "review_by": article.review_by,
        "status": article.status,
    }


def article_from_row(row: dict) -> Article:
    return Article(
        id=row["id"],
        title=row["title"],
        category=row["category"],
        body=row["body"] or "",
        tags=json.loads(row["tags"] or "[]"),
        similar=json.loads(row["similar"] or "[]"),
        owner=row["owner"] or "",
        review_by=row["review_by"] or "",
        status=row["status"] or "published",
    )


class Store:
    """The one database of an instance; open one per thread or request."""

    def __init__(self, target: str | Path | Database):
        """`target`: the instance's Database, or (for tools) an SQLite file's path."""
        from storage import Database

        if not isinstance(target, Database):
            target = Database.open(f"sqlite:///{Path(target).resolve()}")
        self.database = target
        self.path = target.path
        self.db = None  # sqlite-utils, for the modules not yet moved into storage/
        if target.dialect == "sqlite":
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")
            self.db = sqlite_utils.Database(conn)

    def close(self) -> None:
        if self.db is not None:
            self.db.conn.close()

    def _ensure_schema(self) -> None:
        db = self.db
        if "articles" in db.table_names():
            self._ensure_changes()  # instances created before the change sequence
            return
        with db.conn:
            db["articles"].create(ARTICLE_COLUMNS, pk="id", if_not_exists=True)
            db["articles"].create_index(["category"], if_not_exists=True)
            db["articles"].create_index(["updated_at"], if_not_exists=True)
            db["revisions"].create(
                {
                    "id": int,
                    "article_id": str,
                    "version": int,
                    "action": str,
                    "at": str,
                    "by": str,
                    "changed": str,
                    **{k: str for k in CHANGE_FIELDS},
                },
                pk="id",
                if_not_exists=True,
            )
            db["revisions"].create_index(["article_id", "version"], if_not_exists=True)
            db["search_log"].create(
                {
                    "id": int,
                    "at": str,
                    "q": str,
                    "category": str,
                    "tag": str,
                    "hits": int,
                    "took_ms": float,
                    "via": str,
                },
                pk="id",
                if_not_exists=True,
            )
            db["meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
        self._ensure_changes()

    def _ensure_changes(self) -> None:
        if "changes" in self.db.table_names():
            return
        with self.db.conn:
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                "kind TEXT NOT NULL, doc_id TEXT NOT NULL, op TEXT NOT NULL, at TEXT NOT NULL)"
            )

    # -- articles -----------------------------------------------------------

    def get(self, article_id: str) -> Article:
        """One article by id, or NotFound."""
        row = self.db.execute("SELECT * FROM articles WHERE id = ?", [article_id]).fetchone()
        if row is None:
            raise NotFound(f"文章「{article_id}」不存在")
        cols = [c[0] for c in self.db.execute("SELECT * FROM articles LIMIT 0").description]
        return article_from_row(dict(zip(cols, row, strict=True)))

    def get_meta_row(self, article_id: str) -> dict:
        """Version and change stamps of one article."""
        rows = list(
            self.db.query(
                "SELECT version, created_at, updated_at, updated_by FROM articles WHERE id = ?",
                [article_id],
            )
        )
        if not rows:
            raise NotFound(f"文章「{article_id}」不存在")
        return rows[0]

    def iter_articles(self, *, since: str | None = None) -> Iterator[Article]:
        """Every article (optionally only those changed at or after `since`)."""
        if since:
            rows = self.db.query(
                "SELECT * FROM articles WHERE updated_at >= ? ORDER BY id", [since]
            )
        else:
            rows = self.db.query("SELECT * FROM articles ORDER BY id")
        for row in rows:
            yield article_from_row(row)

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM articles").fetchone()[0]

    def id_taken(self, article_id: str) -> str | None:
        """The stored id equal to `article_id` without regard to case, if any (the exact
        one first)."""
        row = self.db.execute(
            "SELECT id FROM articles WHERE lower(id) = lower(?) ORDER BY id = ? DESC LIMIT 1",
            [article_id, article_id],
        ).fetchone()
        return row[0] if row else None

    def save(self, article: Article, *, by: str = "system") -> str:
        """Insert or update one article, keeping a revision; returns added/changed/unchanged."""
        return self.save_many([article], by=by)[0]

    def save_many(self, articles: Iterable[Article], *, by: str = "system") -> list[str]:
        """Batched upsert in one transaction; a revision for every real change."""
        batch = list(articles)
        if not batch:
            return []
        existing = {row["id"]: row for row in self._rows_by_id(a.id for a in batch)}
        stamp = now_iso()
        outcomes: list[str] = []
        upserts: list[dict] = []
        revisions: list[dict] = []
        for art in batch:
            new = _row(art)
            old = existing.get(art.id)
            if old is None:
                version, action, changed = 1, "create", list(CHANGE_FIELDS)
                created = stamp
                outcomes.append("added")
            else:
                changed = [k for k in CHANGE_FIELDS if (old[k] or "") != new[k]]
                if not changed:
                    outcomes.append("unchanged")
                    continue
                version, action, created = old["version"] + 1, "update", old["created_at"]
                outcomes.append("changed")
            row = {
                **new,
                "version": version,
                "created_at": created,
                "updated_at": stamp,
                "updated_by": by,
            }
            existing[art.id] = row
            upserts.append(row)
            revisions.append(
                {
                    "article_id": art.id,
                    "version": version,
                    "action": action,
                    "at": stamp,
                    "by": by,
                    "changed": ",".join(changed),
                    **{k: new[k] for k in CHANGE_FIELDS},
                }
            )
        if upserts:
            with self.db.conn:
                self.db["articles"].insert_all(upserts, pk="id", replace=True, batch_size=500)
                self.db["revisions"].insert_all(revisions, batch_size=500)
                self._append_changes("article", [r["id"] for r in upserts], "save", stamp)
        return outcomes

    def delete(self, article_id: str, *, by: str = "system") -> None:
        """Remove an article; its history stays, ending in a delete revision."""
        art = self.get(article_id)
        meta = self.get_meta_row(article_id)
        with self.db.conn:
            self.db["revisions"].insert(
                {
                    "article_id": article_id,
                    "version": meta["version"] + 1,
                    "action": "delete",
                    "at": now_iso(),
                    "by": by,
                    "changed": "",
                    **{k: v for k, v in _row(art).items() if k in CHANGE_FIELDS},
                }
            )
            self.db.execute("DELETE FROM articles WHERE id = ?", [article_id])
            self._append_changes("article", [article_id], "delete", now_iso())

    def revisions(self, article_id: str, limit: int = -1, offset: int = 0) -> list[dict]:
        """History of one article, newest first (`limit` -1: all of it)."""
        return list(
            self.db.query(
                "SELECT id, version, action, at, by, changed, title FROM revisions "
                "WHERE article_id = ? ORDER BY version DESC, id DESC LIMIT ? OFFSET ?",
                [article_id, limit, offset],
            )
        )

    def revision_count(self, article_id: str) -> int:
        row = self.db.execute(
            "SELECT count(*) FROM revisions WHERE article_id = ?", [article_id]
        ).fetchone()
        return int(row[0])

    def get_many(self, ids: Iterable[str]) -> dict[str, Article]:
        """The articles among `ids` that exist, by id."""
        return {row["id"]: article_from_row(row) for row in self._rows_by_id(ids)}

    def _rows_by_id(self, ids: Iterable[str]) -> Iterator[dict]:
        """The article rows among `ids`, read 500 ids a query (SQLite's variable limit)."""
        wanted = list(dict.fromkeys(ids))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            yield from self.db.query(
                f"SELECT * FROM articles WHERE id IN ({marks})",  # noqa: S608 - placeholders only
                chunk,
            )

    # -- change sequence ----------------------------------------------------

    def _append_changes(self, kind: str, doc_ids: list[str], op: str, at: str) -> None:
        """Inside the caller's transaction: one change row per document."""
        self.db.conn.executemany(
            "INSERT INTO changes (kind, doc_id, op, at) VALUES (?, ?, ?, ?)",
            [(kind, doc_id, op, at) for doc_id in doc_ids],
        )

    def record_change(self, kind: str, doc_id: str, op: str) -> int:
        """Append one change in its own transaction; returns its sequence number."""
        with self.db.conn:
            cur = self.db.execute(
                "INSERT INTO changes (kind, doc_id, op, at) VALUES (?, ?, ?, ?)",
                [kind, doc_id, op, now_iso()],
            )
            return cur.lastrowid

    def last_change(self) -> int:
        """The newest sequence number (0 when nothing was ever recorded)."""
        return self.db.execute("SELECT max(seq) FROM changes").fetchone()[0] or 0

    def first_change(self) -> int:
        """The oldest sequence number still kept (0 when the table is empty)."""
        return self.db.execute("SELECT min(seq) FROM changes").fetchone()[0] or 0

    def change_epoch(self) -> str:
        """Names this database's sequence: a restore gives it a new one, so indexes
        positioned in the old numbering rebuild instead of trusting their numbers."""
        epoch = self.get_setting(EPOCH_KEY)
        if not epoch:
            with self.db.conn:
                self.db.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                    [EPOCH_KEY, secrets.token_hex(8)],
                )
            epoch = self.get_setting(EPOCH_KEY)
        return epoch

    def changes_after(self, seq: int, limit: int) -> list[tuple[int, str, str, str]]:
        """Up to `limit` changes numbered above `seq`, oldest first: (seq, kind, doc_id, op)."""
        return [
            tuple(r)
            for r in self.db.execute(
                "SELECT seq, kind, doc_id, op FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
                [seq, limit],
            )
        ]

    # -- search log and meta ------------------------------------------------

    def log_searches(self, entries: list[dict]) -> None:
        """Record queries (text, filters, hit count, latency) for analytics."""
        if entries:
            with self.db.conn:
                self.db["search_log"].insert_all(entries, batch_size=1000)

    def top_queries(self, limit: int = 20) -> list[dict]:
        return list(
            self.db.query(
                "SELECT q, count(*) AS n, avg(hits) AS avg_hits FROM search_log "
                "GROUP BY q ORDER BY n DESC LIMIT ?",
                [limit],
            )
        )

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else default

    def set_setting(self, key: str, value: str) -> None:
        with self.db.conn:
            self.db["meta"].insert({"key": key, "value": value}, pk="key", replace=True)


def backup(db_path: str | Path, dest: str | Path) -> Path:
    """Consistent copy of a live database through SQLite's online backup API."""
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


def restore(backup_path: str | Path, db_path: str | Path) -> None:
    """Replace the instance database with a backup (the service must be stopped)."""
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
        with dst:  # a new numbering: every index positioned in the old one rebuilds
            dst.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [EPOCH_KEY, secrets.token_hex(8)],
            )
    finally:
        src.close()
        dst.close()
