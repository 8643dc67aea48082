"""Articles, their revisions, the change sequence, settings (``meta``) and the search log.

The ``changes`` table gets one row per write of something the search index holds, in
the same transaction as the write.  ``seq`` only grows and is never reused
(AUTOINCREMENT on SQLite, an identity on PostgreSQL).  Every writer of the sequence
holds ``Database.lock_changes`` from before its insert until commit, so numbers become
visible in order on both backends: a node that has applied everything up to N never
misses a change numbered <= N.

Rows come back as plain dicts (the article columns by name); ``kb.store`` turns them
into ``Article`` objects and keeps the versioning rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from . import schema
from .database import Database

A = schema.articles
R = schema.revisions
C = schema.changes
M = schema.meta
L = schema.search_log

ID_CHUNK = 500  # ids per IN (...) query
PAGE = 500  # rows per keyset page when iterating every article
ARTICLE_FIELDS = tuple(c.name for c in A.c)
REVISION_LIST = (R.c.id, R.c.version, R.c.action, R.c.at, R.c.by, R.c.changed, R.c.title)

# built once: the statements of the hot paths (a build costs more than a SQLite lookup)
_ID = sa.bindparam("id")
GET = sa.select(A).where(A.c.id == _ID)
META_ROW = sa.select(A.c.version, A.c.created_at, A.c.updated_at, A.c.updated_by).where(
    A.c.id == _ID
)
COUNT = sa.select(sa.func.count()).select_from(A)
STAMP = sa.select(sa.func.count(), sa.func.max(A.c.updated_at)).select_from(A)
PUBLISHED = (
    sa.select(A.c.id, A.c.title, A.c.similar).where(A.c.status == "published").order_by(A.c.id)
)
ID_TAKEN = (
    sa.select(A.c.id)
    .where(sa.func.lower(A.c.id) == sa.func.lower(_ID))
    .order_by(sa.case((A.c.id == _ID, 0), else_=1), A.c.id)
    .limit(1)
)
BY_IDS = sa.select(A).where(A.c.id.in_(sa.bindparam("ids", expanding=True)))
DELETE = sa.delete(A).where(A.c.id == _ID)
REVISION_COUNT = sa.select(sa.func.count()).select_from(R).where(R.c.article_id == _ID)
INSERT_REVISIONS = sa.insert(R)
INSERT_CHANGES = sa.insert(C)
RECORD_CHANGE = sa.insert(C).returning(C.c.seq)
LAST_CHANGE = sa.select(sa.func.max(C.c.seq))
FIRST_CHANGE = sa.select(sa.func.min(C.c.seq))
CHANGES_AFTER = (
    sa.select(C.c.seq, C.c.kind, C.c.doc_id, C.c.op)
    .where(C.c.seq > sa.bindparam("seq"))
    .order_by(C.c.seq)
    .limit(sa.bindparam("limit"))
)
SETTING = sa.select(M.c.value).where(M.c.key == sa.bindparam("key"))
INSERT_SEARCHES = sa.insert(L)


def _dicts(result) -> list[dict]:
    """Rows as plain dicts (zip is several times faster than dict(RowMapping))."""
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.fetchall()]


def _like_escape(text: str) -> str:
    """`text` matched literally by LIKE ... ESCAPE '\\'."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _insert(db: Database):
    """The dialect's INSERT (the one with ON CONFLICT)."""
    return postgresql.insert if db.dialect == "postgresql" else sqlite.insert


class ArticleRepository:
    """The SQL of ``kb.store.Store``.  Methods join the thread's current transaction
    (``Database.begin``), so a caller can group several of them in one."""

    def __init__(self, database: Database):
        self.db = database
        insert = _insert(database)
        upsert = insert(A)
        self._upsert_article = upsert.on_conflict_do_update(
            index_elements=[A.c.id],
            set_={name: upsert.excluded[name] for name in ARTICLE_FIELDS if name != "id"},
        )
        upsert = insert(M)
        self._upsert_meta = upsert.on_conflict_do_update(
            index_elements=[M.c.key], set_={"value": upsert.excluded.value}
        )
        self._insert_meta_if_absent = insert(M).on_conflict_do_nothing(index_elements=[M.c.key])

    # -- transactions ------------------------------------------------------------

    @contextmanager
    def writing(self) -> Iterator[None]:
        """A write transaction that may append changes (or the thread's current one).

        The change lock is taken first: article writers are serial on PostgreSQL as they
        are on SQLite (BEGIN IMMEDIATE), so a read-diff-write never works on a row
        another writer is changing, and change numbers become visible in order."""
        with self.db.begin() as conn:
            self.db.lock_changes(conn)
            yield

    # -- articles ----------------------------------------------------------------

    def get(self, article_id: str) -> dict | None:
        with self.db.read() as conn:
            rows = _dicts(conn.execute(GET, {"id": article_id}))
        return rows[0] if rows else None

    def meta_row(self, article_id: str) -> dict | None:
        """Version and change stamps of one article."""
        with self.db.read() as conn:
            rows = _dicts(conn.execute(META_ROW, {"id": article_id}))
        return rows[0] if rows else None

    def iter_rows(self, *, since: str | None = None) -> Iterator[dict]:
        """Every article row in id order (only those changed at or after `since`), read
        a page at a time so no connection stays open while the caller works."""
        query = sa.select(A).order_by(A.c.id).limit(PAGE)
        if since:
            query = query.where(A.c.updated_at >= since)
        last: str | None = None
        while True:
            page = query if last is None else query.where(A.c.id > last)
            with self.db.read() as conn:
                rows = _dicts(conn.execute(page))
            yield from rows
            if len(rows) < PAGE:
                return
            last = rows[-1]["id"]

    def count(self) -> int:
        with self.db.read() as conn:
            return conn.execute(COUNT).scalar_one()

    def stamp(self) -> tuple[int, str | None]:
        """(number of articles, newest updated_at): changes when any article does."""
        with self.db.read() as conn:
            count, latest = conn.execute(STAMP).one()
        return int(count), latest

    def published_titles(self) -> list[tuple[str, str, str | None]]:
        """(id, title, similar JSON) of every published article, by id."""
        with self.db.read() as conn:
            return [tuple(r) for r in conn.execute(PUBLISHED)]

    def id_taken(self, article_id: str) -> str | None:
        """The stored id equal to `article_id` without regard to case (the exact one first)."""
        with self.db.read() as conn:
            return conn.execute(ID_TAKEN, {"id": article_id}).scalar()

    def rows_by_id(self, ids: Iterable[str]) -> Iterator[dict]:
        """The article rows among `ids`, ID_CHUNK ids a query."""
        wanted = list(dict.fromkeys(ids))
        for start in range(0, len(wanted), ID_CHUNK):
            chunk = wanted[start : start + ID_CHUNK]
            with self.db.read() as conn:
                rows = _dicts(conn.execute(BY_IDS, {"ids": chunk}))
            yield from rows

    # -- the management list ------------------------------------------------------

    @staticmethod
    def _filters(f: dict, *, with_status: bool = True) -> list:
        """WHERE clauses of the management list's filters (kb/catalog.py checks them):
        status, category, owner, mine (owner or last editor), review (overdue / soon /
        none, against today and soon), updated_since, q (id or title, LIKE escaped)."""
        where = []
        if with_status and f.get("status"):
            where.append(A.c.status == f["status"])
        if f.get("category"):
            where.append(A.c.category == f["category"])
        if f.get("owner"):
            where.append(A.c.owner == f["owner"])
        if f.get("mine"):
            where.append(sa.or_(A.c.owner == f["mine"], A.c.updated_by == f["mine"]))
        if f.get("not_by"):
            where.append(sa.or_(A.c.updated_by.is_(None), A.c.updated_by != f["not_by"]))
        review = f.get("review")
        has_date = sa.and_(A.c.review_by.is_not(None), A.c.review_by != "")
        if review == "overdue":
            where.append(sa.and_(has_date, A.c.review_by < f["today"]))
        elif review == "soon":
            where.append(sa.and_(has_date, A.c.review_by >= f["today"], A.c.review_by <= f["soon"]))
        elif review == "none":
            where.append(sa.not_(has_date))
        if f.get("updated_since"):
            where.append(A.c.updated_at >= f["updated_since"])
        if f.get("q"):
            pattern = "%" + _like_escape(f["q"].lower()) + "%"
            where.append(
                sa.or_(
                    sa.func.lower(A.c.id).like(pattern, escape="\\"),
                    sa.func.lower(A.c.title).like(pattern, escape="\\"),
                )
            )
        return where

    def listing(self, f: dict, order: str, limit: int, offset: int) -> tuple[list[dict], int, dict]:
        """(rows of one page, rows matching, {status: count} under the other filters)."""
        columns = (
            A.c.id, A.c.title, A.c.category, A.c.owner, A.c.review_by, A.c.status,
            A.c.version, A.c.updated_at, A.c.updated_by,
        )  # fmt: skip
        orders = {
            "updated": (A.c.updated_at.desc(), A.c.id),
            "review": (sa.case((A.c.review_by.is_(None), 1), (A.c.review_by == "", 1), else_=0),
                       A.c.review_by, A.c.id),
            "title": (A.c.title, A.c.id),
            "id": (A.c.id,),
        }  # fmt: skip
        where = self._filters(f)
        page = (
            sa.select(*columns).where(*where).order_by(*orders[order]).limit(limit).offset(offset)
        )
        total = sa.select(sa.func.count()).select_from(A).where(*where)
        by_status = (
            sa.select(A.c.status, sa.func.count())
            .where(*self._filters(f, with_status=False))
            .group_by(A.c.status)
        )
        with self.db.read() as conn:
            rows = _dicts(conn.execute(page))
            count = conn.execute(total).scalar_one()
            counts = {status or "": int(n) for status, n in conn.execute(by_status)}
        return rows, int(count), counts

    def owners(self) -> list[str]:
        """Every owner named on an article, sorted."""
        query = (
            sa.select(A.c.owner)
            .where(A.c.owner.is_not(None), A.c.owner != "")
            .group_by(A.c.owner)
            .order_by(A.c.owner)
            .limit(1000)
        )
        with self.db.read() as conn:
            return [r[0] for r in conn.execute(query)]

    def write(self, upserts: list[dict], revisions: list[dict], changes: list[dict]) -> None:
        """Upsert article rows, add revisions and append changes, in one transaction."""
        with self.writing(), self.db.begin() as conn:
            # executemany: sqlite3's loop; psycopg pipelines the statements (multi-row
            # VALUES through RETURNING was slower: psycopg re-parses each huge statement)
            if upserts:
                conn.execute(self._upsert_article, upserts)
            if revisions:
                conn.execute(INSERT_REVISIONS, revisions)
            self._append(conn, changes)

    def delete(self, article_id: str, revision: dict, change: dict) -> None:
        with self.writing(), self.db.begin() as conn:
            conn.execute(INSERT_REVISIONS, [revision])
            conn.execute(DELETE, {"id": article_id})
            self._append(conn, [change])

    # -- revisions ---------------------------------------------------------------

    def revisions(self, article_id: str, limit: int = -1, offset: int = 0) -> list[dict]:
        """History of one article, newest first (`limit` < 0: all of it)."""
        query = (
            sa.select(*REVISION_LIST)
            .where(R.c.article_id == article_id)
            .order_by(R.c.version.desc(), R.c.id.desc())
            .offset(offset)
        )
        if limit >= 0:
            query = query.limit(limit)
        with self.db.read() as conn:
            return _dicts(conn.execute(query))

    def revision(self, article_id: str, version: int) -> dict | None:
        """Every column of the newest revision row of one version of an article."""
        query = (
            sa.select(R)
            .where(R.c.article_id == article_id, R.c.version == version)
            .order_by(R.c.id.desc())
            .limit(1)
        )
        with self.db.read() as conn:
            rows = _dicts(conn.execute(query))
        return rows[0] if rows else None

    def revision_count(self, article_id: str) -> int:
        with self.db.read() as conn:
            return conn.execute(REVISION_COUNT, {"id": article_id}).scalar_one()

    # -- change sequence ---------------------------------------------------------

    @staticmethod
    def _append(conn: Connection, changes: list[dict]) -> None:
        """Inside a `writing()` transaction (which holds the change lock)."""
        if changes:
            conn.execute(INSERT_CHANGES, changes)

    def record_change(self, change: dict) -> int:
        """Append one change (in its own transaction, or the caller's); returns its number."""
        with self.db.begin() as conn:
            self.db.lock_changes(conn)
            return conn.execute(RECORD_CHANGE, change).scalar_one()

    def last_change(self) -> int:
        with self.db.read() as conn:
            return conn.execute(LAST_CHANGE).scalar() or 0

    def first_change(self) -> int:
        with self.db.read() as conn:
            return conn.execute(FIRST_CHANGE).scalar() or 0

    def changes_after(self, seq: int, limit: int) -> list[tuple[int, str, str, str]]:
        """Up to `limit` changes numbered above `seq`, oldest first: (seq, kind, doc_id, op)."""
        with self.db.read() as conn:
            return [tuple(r) for r in conn.execute(CHANGES_AFTER, {"seq": seq, "limit": limit})]

    # -- settings ------------------------------------------------------------------

    def get_setting(self, key: str) -> str | None:
        with self.db.read() as conn:
            return conn.execute(SETTING, {"key": key}).scalar()

    def set_setting(self, key: str, value: str) -> None:
        with self.db.begin() as conn:
            conn.execute(self._upsert_meta, [{"key": key, "value": value}])

    def add_setting(self, key: str, value: str) -> str:
        """Store `value` unless the key has one already; returns the value that stands."""
        with self.db.begin() as conn:
            conn.execute(self._insert_meta_if_absent, [{"key": key, "value": value}])
            return conn.execute(SETTING, {"key": key}).scalar_one()


class SearchLogRepository:
    """The search log: written in batches, read for analytics and suggestions."""

    def __init__(self, database: Database):
        self.db = database

    def add(self, entries: list[dict]) -> None:
        """One transaction, one executemany."""
        if entries:
            with self.db.begin() as conn:
                conn.execute(INSERT_SEARCHES, entries)

    def top_queries(self, limit: int = 20) -> list[dict]:
        n = sa.func.count().label("n")
        query = (
            sa.select(L.c.q, n, sa.func.avg(L.c.hits).label("avg_hits"))
            .group_by(L.c.q)
            .order_by(n.desc(), L.c.q)
            .limit(limit)
        )
        with self.db.read() as conn:
            rows = conn.execute(query).mappings()
            return [
                {**r, "avg_hits": float(r["avg_hits"]) if r["avg_hits"] is not None else None}
                for r in rows
            ]

    def frequent_queries(self, window: int, min_seen: int, limit: int) -> list[tuple[str, int]]:
        """(query, times) of queries that found something, seen at least `min_seen` times
        among the newest `window` entries, most frequent first."""
        n = sa.func.count().label("n")
        newest = sa.select(sa.func.max(L.c.id)).scalar_subquery()
        query = (
            sa.select(L.c.q, n)
            .where(L.c.id > sa.func.coalesce(newest, 0) - window, L.c.hits > 0)
            .group_by(L.c.q)
            .having(sa.func.count() >= min_seen)
            .order_by(n.desc(), L.c.q)
            .limit(limit)
        )
        with self.db.read() as conn:
            return [(q, int(count)) for q, count in conn.execute(query)]
