"""The store of an instance: articles, every revision, the search log, settings, and
the change sequence that feeds every node's search index.

The SQL lives in ``storage/articles.py`` (SQLite or PostgreSQL alike); this module keeps
the rules: what counts as a change, versions and revisions, the sequence's epoch.
Backup and restore (SQLite only) are in ``storage/backup.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import NotFound, StaleVersion
from .models import Article

if TYPE_CHECKING:
    from storage import Database

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
        from storage.articles import ArticleRepository, SearchLogRepository

        if not isinstance(target, Database):
            target = Database.open(f"sqlite:///{Path(target).resolve()}")
        self.database = target
        self.path = target.path
        self.articles = ArticleRepository(target)
        self.searches = SearchLogRepository(target)

    def close(self) -> None:
        """Nothing to release: connections return to the Database's pool after each use."""

    # -- articles -----------------------------------------------------------

    def get(self, article_id: str) -> Article:
        """One article by id, or NotFound."""
        row = self.articles.get(article_id)
        if row is None:
            raise NotFound(f"文章「{article_id}」不存在")
        return article_from_row(row)

    def find(self, article_id: str) -> tuple[Article, dict] | None:
        """(article, its version and change stamps) read together, or None."""
        row = self.articles.get(article_id)
        if row is None:
            return None
        meta = {k: row[k] for k in ("version", "created_at", "updated_at", "updated_by")}
        return article_from_row(row), meta

    def get_meta_row(self, article_id: str) -> dict:
        """Version and change stamps of one article."""
        row = self.articles.meta_row(article_id)
        if row is None:
            raise NotFound(f"文章「{article_id}」不存在")
        return row

    def iter_articles(self, *, since: str | None = None) -> Iterator[Article]:
        """Every article by id (optionally only those changed at or after `since`)."""
        for row in self.articles.iter_rows(since=since):
            yield article_from_row(row)

    def count(self) -> int:
        return self.articles.count()

    def id_taken(self, article_id: str) -> str | None:
        """The stored id equal to `article_id` without regard to case, if any (the exact
        one first)."""
        return self.articles.id_taken(article_id)

    def save(
        self, article: Article, *, by: str = "system", expected_version: int | None = None
    ) -> str:
        """Insert or update one article, keeping a revision; returns added/changed/unchanged.

        `expected_version`: the version the change was based on (0: the article must not
        exist yet); a stored version that differs raises StaleVersion and writes nothing.
        None: no check (imports, tools)."""
        expected = None if expected_version is None else {article.id: expected_version}
        return self.save_many([article], by=by, expected=expected)[0]

    def save_many(
        self,
        articles: Iterable[Article],
        *,
        by: str = "system",
        expected: dict[str, int] | None = None,
    ) -> list[str]:
        """Batched upsert in one transaction; a revision and a change for every real change.

        The stored rows are read inside the write transaction, which holds the writers'
        lock on both backends (``ArticleRepository.writing``), so concurrent writers of
        one article never both build on the same version.  `expected` (id -> version the
        change was based on) makes each save a compare-and-set on that version: a stale
        one raises StaleVersion and the whole batch is rolled back.  A change that leaves
        the article as it is now is "unchanged" whatever it was based on (nothing to lose)."""
        batch = list(articles)
        if not batch:
            return []
        with self.articles.writing():
            existing = {row["id"]: row for row in self.articles.rows_by_id(a.id for a in batch)}
            stamp = now_iso()
            outcomes: list[str] = []
            upserts: list[dict] = []
            revisions: list[dict] = []
            for art in batch:
                new = _row(art)
                old = existing.get(art.id)
                if expected is not None and art.id in expected:
                    _check_version(art.id, old, new, expected[art.id])
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
                # an id twice in one batch: the last save stands (one row per id)
                latest = list({r["id"]: r for r in upserts}.values())
                changes = [_change("article", r["id"], "save", stamp) for r in latest]
                self.articles.write(latest, revisions, changes)
        return outcomes

    def delete(self, article_id: str, *, by: str = "system") -> None:
        """Remove an article; its history stays, ending in a delete revision."""
        with self.articles.writing():
            art = self.get(article_id)
            meta = self.get_meta_row(article_id)
            at = now_iso()
            revision = {
                "article_id": article_id,
                "version": meta["version"] + 1,
                "action": "delete",
                "at": at,
                "by": by,
                "changed": "",
                **{k: v for k, v in _row(art).items() if k in CHANGE_FIELDS},
            }
            self.articles.delete(article_id, revision, _change("article", article_id, "delete", at))

    def revisions(self, article_id: str, limit: int = -1, offset: int = 0) -> list[dict]:
        """History of one article, newest first (`limit` -1: all of it)."""
        return self.articles.revisions(article_id, limit, offset)

    def revision_count(self, article_id: str) -> int:
        return self.articles.revision_count(article_id)

    def revision(self, article_id: str, version: int) -> Article | None:
        """The article as one revision left it (None when that version was never kept)."""
        row = self.articles.revision(article_id, version)
        if row is None:
            return None
        return article_from_row({**row, "id": article_id})

    def get_many(self, ids: Iterable[str]) -> dict[str, Article]:
        """The articles among `ids` that exist, by id."""
        return {row["id"]: article_from_row(row) for row in self.articles.rows_by_id(ids)}

    # -- change sequence ----------------------------------------------------

    def record_change(self, kind: str, doc_id: str, op: str) -> int:
        """Append one change in its own transaction; returns its sequence number."""
        return self.articles.record_change(_change(kind, doc_id, op, now_iso()))

    def last_change(self) -> int:
        """The newest sequence number (0 when nothing was ever recorded)."""
        return self.articles.last_change()

    def first_change(self) -> int:
        """The oldest sequence number still kept (0 when the table is empty)."""
        return self.articles.first_change()

    def change_epoch(self) -> str:
        """Names this database's sequence: a restore gives it a new one, so indexes
        positioned in the old numbering rebuild instead of trusting their numbers."""
        epoch = self.get_setting(EPOCH_KEY)
        if not epoch:
            epoch = self.articles.add_setting(EPOCH_KEY, secrets.token_hex(8))
        return epoch

    def changes_after(self, seq: int, limit: int) -> list[tuple[int, str, str, str]]:
        """Up to `limit` changes numbered above `seq`, oldest first: (seq, kind, doc_id, op)."""
        return self.articles.changes_after(seq, limit)

    # -- search log and meta ------------------------------------------------

    def log_searches(self, entries: list[dict]) -> None:
        """Record queries (text, filters, hit count, latency) for analytics."""
        self.searches.add(entries)

    def top_queries(self, limit: int = 20) -> list[dict]:
        return self.searches.top_queries(limit)

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        value = self.articles.get_setting(key)
        return default if value is None else value

    def set_setting(self, key: str, value: str) -> None:
        self.articles.set_setting(key, value)

    def setting_once(self, key: str, value: str) -> str:
        """`value` unless the key has one already (another node's): the one that stands."""
        return self.articles.add_setting(key, value)


def _check_version(article_id: str, old: dict | None, new: dict, based_on: int) -> None:
    """Compare-and-set: raise StaleVersion when the stored version is not `based_on`
    (unless the change would leave the stored article exactly as it is)."""
    current = old["version"] if old is not None else 0
    if current == based_on:
        return
    if old is not None and all((old[k] or "") == new[k] for k in CHANGE_FIELDS):
        return
    if old is None:
        message = f"文章「{article_id}」已被删除（你基于第 {based_on} 版修改），未保存"
    elif based_on == 0:
        message = (
            f"文章 ID「{article_id}」已存在（第 {current} 版，{old['updated_by']} 保存），未保存"
        )
    else:
        message = (
            f"文章「{article_id}」已被 {old['updated_by']} 于 {_shown_time(old['updated_at'])} "
            f"保存为第 {current} 版，你的修改基于第 {based_on} 版，未保存：请查看差异，"
            f"在当前版本上重新应用你的修改"
        )
    raise StaleVersion(
        message,
        current_version=current,
        details={
            "based_on": based_on,
            "current": article_from_row(old) if old is not None else None,
            "updated_at": old["updated_at"] if old is not None else None,
            "updated_by": old["updated_by"] if old is not None else None,
        },
    )


def _shown_time(iso: str | None) -> str:
    """An ISO time as people read it in messages (UTC, to the second)."""
    return (iso or "")[:19].replace("T", " ")


def _change(kind: str, doc_id: str, op: str, at: str) -> dict:
    return {"kind": kind, "doc_id": doc_id, "op": op, "at": at}
