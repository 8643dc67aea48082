"""The database of an instance: one SQLAlchemy engine per URL per process.

SQLite (a file in the instance folder, WAL mode) is the embedded default; a
``postgresql://`` URL makes several nodes share one store.  The schema is brought to
the newest migration when a process first opens a database (``kbcoach migrate`` does
it on demand); concurrent starters wait for each other.

Transactions are ambient per thread: ``with db.begin() as conn`` starts a write
transaction (``BEGIN IMMEDIATE`` on SQLite, so a read-then-write never fails half way
with "database is locked"), and any ``db.begin()`` or ``db.read()`` inside it, in the
same thread, joins it.  ``db.read()`` alone reads committed data, one snapshot per
statement on both backends (autocommit: no BEGIN/ROLLBACK around the request path's
one-query reads).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url

from kb.errors import KbError

from . import schema

MIGRATIONS = Path(__file__).parent / "migrations"
DB_FILE = "kbcoach.db"
# any constant: every migrating process of one PostgreSQL database takes this lock
MIGRATION_LOCK = 7_215_001
PRIVATE_FILE = 0o600

_open: dict[str, Database] = {}
_open_lock = threading.Lock()


class DatabaseError(KbError):
    """The database cannot be opened or upgraded."""

    status = 503


def sqlite_url(instance: str | Path) -> str:
    return f"sqlite:///{Path(instance).resolve() / DB_FILE}"


def normalize_url(url: str) -> str:
    """``postgresql://`` (what people write) means psycopg 3, the driver installed."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise DatabaseError(
            f"无法识别的数据库地址：{url}（应形如 postgresql://用户:密码@主机/库名）"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _private_file(path: str) -> None:
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        pass
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            if os.stat(path + suffix).st_mode & 0o077:
                os.chmod(path + suffix, PRIVATE_FILE)
        except FileNotFoundError:
            pass


class Database:
    """An engine, its dialect, and the ambient transaction of each thread."""

    def __init__(self, url: str, *, migrate: bool = True):
        self.url = normalize_url(url)
        parsed = make_url(self.url)
        if parsed.get_backend_name() == "sqlite" and not parsed.database:
            raise DatabaseError(
                "SQLite 数据库地址缺少文件路径（应为 sqlite:////绝对路径/kbcoach.db）"
            )
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise DatabaseError(
                f"不支持的数据库：{parsed.drivername}（仅支持 sqlite 与 postgresql）"
            )
        self.path: Path | None = None
        if self.dialect == "sqlite":
            self.path = Path(parsed.database or "")
            try:  # the instance folder itself, owner-only; never a chain of folders
                self.path.parent.mkdir(mode=0o700, exist_ok=True)
            except FileNotFoundError:
                raise DatabaseError(f"数据库所在目录不存在：{self.path.parent.parent}") from None
            _private_file(str(self.path))  # the database holds password hashes
            self.engine = sa.create_engine(
                self.url,
                connect_args={"timeout": 30, "check_same_thread": False},
                pool_size=8,
                max_overflow=32,
            )
            _sqlite_transactions(self.engine)
        else:
            self.engine = sa.create_engine(
                self.url, pool_size=8, max_overflow=32, pool_pre_ping=True
            )
        self._local = threading.local()
        self.pid = os.getpid()
        if migrate:
            self.migrate()

    # -- opening ---------------------------------------------------------------

    @classmethod
    def open(cls, url: str) -> Database:
        """The process's one Database for this URL (engines pool connections)."""
        key = normalize_url(url)
        with _open_lock:
            db = _open.get(key)
            if db is not None and db.pid != os.getpid():
                # inherited through fork (gunicorn workers): never share its connections
                db.engine.dispose(close=False)
                db = None
            if db is None:
                db = _open[key] = cls(key)
            return db

    @classmethod
    def for_instance(cls, instance: str | Path, url: str | None = None) -> Database:
        """The instance's database: `url` if given, else the SQLite file in the folder."""
        return cls.open(url or sqlite_url(instance))

    def dispose(self) -> None:
        """Close every pooled connection (after a fork, or when done)."""
        with _open_lock:
            if _open.get(self.url) is self:
                del _open[self.url]
        self.engine.dispose()

    @property
    def display_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    # -- transactions ------------------------------------------------------------

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction, or the thread's current one."""
        current = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        with self.engine.connect() as conn:
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                self._local.conn = conn
                try:
                    yield conn
                finally:
                    self._local.conn = None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read snapshot, or the thread's current transaction."""
        current = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        with self.engine.connect() as conn:
            # each statement its own snapshot: no BEGIN/ROLLBACK around the one-query
            # reads of the request path (session, token, article)
            if self.dialect == "postgresql":
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            else:
                conn = conn.execution_options(sqlite_begin=None)
            yield conn

    @property
    def in_transaction(self) -> bool:
        return getattr(self._local, "conn", None) is not None

    def lock_changes(self, conn: Connection) -> None:
        """Serialise writers of the change sequence until commit.

        SQLite's writers are serial already.  On PostgreSQL, sequence numbers are
        handed out at insert but become visible at commit, possibly out of order; a
        node that read up to N could then miss a late N-1.  Holding this lock from
        before the insert until commit makes numbers visible in order."""
        if self.dialect == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7215002)"))

    # -- schema ------------------------------------------------------------------

    def _alembic_config(self):
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        return cfg

    def head(self) -> str:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    def known_revisions(self) -> set[str]:
        from alembic.script import ScriptDirectory

        scripts = ScriptDirectory.from_config(self._alembic_config())
        return {rev.revision for rev in scripts.walk_revisions()}

    def current(self) -> str | None:
        """The revision this database is at (None before the first migration)."""
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def migrate(self, target: str = "head") -> tuple[str | None, str]:
        """Upgrade the schema; returns (before, after).  Safe to run concurrently."""
        try:
            return self._migrate(target)
        except sa.exc.OperationalError as exc:
            raise DatabaseError(f"无法连接数据库 {self.display_url}：{reason(exc)}") from None

    def _migrate(self, target: str) -> tuple[str | None, str]:
        from alembic import command

        head = self.head() if target == "head" else target
        before = self.current()
        if before == head:
            return before, head
        if before is not None and before not in self.known_revisions():
            raise DatabaseError(
                f"数据库 {self.display_url} 的结构版本 {before} 比本程序新（本程序最新为 "
                f"{head}）：请先把本节点升级到与其他节点相同的 kbcoach 版本"
            )
        cfg = self._alembic_config()
        with self.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, target)
        return before, self.current() or head

    def table_names(self) -> list[str]:
        with self.read() as conn:
            return sorted(sa.inspect(conn).get_table_names())

    def counts_of(self, table: sa.Table) -> int:
        with self.read() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()

    def counts(self) -> dict[str, int]:
        """Rows per table of the schema (what copy-instance and the upgrade test compare)."""
        with self.read() as conn:
            return {
                name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                for name, table in schema.metadata.tables.items()
            }


# what a lost or refused connection raises (web/ answers 503, the CLI says so)
UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError)


def reason(exc: BaseException) -> str:
    """The driver's own first line, without SQLAlchemy's statement and links."""
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


def close_all(url: str | None = None) -> None:
    """Dispose the process's open databases (only `url`'s, if given)."""
    with _open_lock:
        keys = [normalize_url(url)] if url else list(_open)
        dbs = [_open.pop(k) for k in keys if k in _open]
    for db in dbs:
        db.engine.dispose()


def _enter_wal(cur, patience: float = 30.0) -> None:
    """Switch a new database file to WAL (the mode persists in the file).  SQLite does not
    call the busy handler for this switch, so processes starting together on a fresh file
    get "database is locked" at once: retry until the first of them has made the switch."""
    deadline = time.monotonic() + patience
    while True:
        if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
            return
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _sqlite_transactions(engine: Engine) -> None:
    """pysqlite's own transaction handling begins late and never IMMEDIATE: take it over
    (the recipe in SQLAlchemy's SQLite dialect documentation)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # no implicit BEGIN from the driver
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=30000")
        _enter_wal(cur)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode is not None:  # None: a read, statement by statement (autocommit)
            conn.exec_driver_sql(f"BEGIN {mode}")
