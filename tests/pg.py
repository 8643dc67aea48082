"""A throwaway PostgreSQL server for the tests and the bench scripts (`tests.pg`).

    server = PostgresServer().start()   # initdb + pg_ctl start in a fresh temp dir
    name = server.new_database()        # or create_database("mine")
    engine = sqlalchemy.create_engine(server.url(name))
    ...
    server.stop()                       # also run at exit if forgotten

It runs the Debian server binaries (/usr/lib/postgresql/<version>/bin, installed by
`.ci/system-deps`) on a free loopback port, trusting every local connection as user
`postgres`, with durability switched off (fsync, synchronous_commit, full_page_writes):
the data is thrown away anyway. PostgreSQL refuses to run as root, so as root the
server runs as the `postgres` system user through `runuser`.
"""

from __future__ import annotations

import atexit
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_ROOT = Path("/usr/lib/postgresql")
SYSTEM_USER = "postgres"  # the OS account the server runs as when we are root
DB_USER = "postgres"  # the database superuser initdb creates
READY_TIMEOUT = 60  # seconds pg_ctl waits for the server to accept connections
LOG_TAIL_LINES = 40

_names = itertools.count(1)


def find_bin_dir(root: Path = PG_ROOT) -> Path:
    """The bin directory of the newest PostgreSQL under `root` that has initdb and pg_ctl."""

    def version(bin_dir: Path) -> tuple[int, ...]:
        try:
            return tuple(int(part) for part in bin_dir.parent.name.split("."))
        except ValueError:
            return (-1,)

    found = [
        d for d in Path(root).glob("*/bin") if (d / "initdb").is_file() and (d / "pg_ctl").is_file()
    ]
    if not found:
        raise RuntimeError(
            f"no PostgreSQL server binaries in {root}/<version>/bin: "
            "install the Debian package `postgresql` (run .ci/system-deps as root)"
        )
    return max(found, key=version)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One PostgreSQL server in its own temp dir; start() it, stop() it (idempotent)."""

    locale = "C.UTF-8"  # initdb falls back to --no-locale where the system lacks it

    def __init__(self, root: Path = PG_ROOT, settings: dict[str, str] | None = None):
        self.bin_dir = find_bin_dir(root)
        self.settings = dict(settings or {})  # extra `-c name=value` server settings
        self.port: int | None = None
        self.dir: Path | None = None
        self.as_root = os.geteuid() == 0
        self._owner = os.getpid()

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> PostgresServer:
        """initdb a fresh cluster and start it; returns once it accepts connections."""
        if self.dir is not None:
            raise RuntimeError("PostgresServer already started")
        self._owner = os.getpid()
        self.dir = self._make_dir()
        atexit.register(self.stop)
        try:
            self._initdb()
            self._pg_ctl_start()
            self._wait_connectable()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server at once (no checkpoint) and remove its temp dir; safe to repeat."""
        atexit.unregister(self.stop)
        if self.dir is None or os.getpid() != self._owner:
            # a forked child (a gunicorn worker, say) exiting through atexit must not stop
            # the parent's server
            return
        directory, self.dir, self.port = self.dir, None, None
        if (directory / "data" / "postmaster.pid").exists():
            self._run(
                [self._bin("pg_ctl"), "-D", str(directory / "data"), "-m", "immediate", "-w"]
                + ["stop"],
                cwd=directory,
                check=False,
            )
        shutil.rmtree(directory, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- databases ------------------------------------------------------------------------

    def url(self, dbname: str) -> str:
        """The SQLAlchemy URL of database `dbname` (psycopg 3 driver)."""
        self._require_started()
        return f"postgresql+psycopg://{DB_USER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """Create an empty database `name` (UTF8, from template1); returns the name."""
        from psycopg import sql

        self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        """Drop `name` if it exists, closing any connection still open on it."""
        from psycopg import sql

        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def new_database(self, prefix: str = "t") -> str:
        """Create a database with a name unique to this process (`t_<counter>_<pid>`)."""
        return self.create_database(f"{prefix}_{next(_names)}_{os.getpid()}")

    def databases(self) -> set[str]:
        """The names of the non-template databases."""
        import psycopg

        with psycopg.connect(**self._conninfo("postgres")) as conn:
            rows = conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate")
            return {name for (name,) in rows}

    # -- internals ------------------------------------------------------------------------

    def _require_started(self) -> None:
        if self.dir is None or self.port is None:
            raise RuntimeError("PostgresServer not started")

    def _conninfo(self, dbname: str) -> dict:
        self._require_started()
        return {"host": "127.0.0.1", "port": self.port, "user": DB_USER, "dbname": dbname}

    def _admin(self, statement) -> None:
        import psycopg

        with psycopg.connect(**self._conninfo("postgres"), autocommit=True) as conn:
            conn.execute(statement)

    def _bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _make_dir(self) -> Path:
        if not self.as_root:
            return Path(tempfile.mkdtemp(prefix="kbcoach-pg-"))
        try:
            account = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            raise RuntimeError(
                f"PostgreSQL will not run as root and there is no `{SYSTEM_USER}` system user "
                "to run it as: install the Debian package `postgresql` (.ci/system-deps)"
            ) from None
        # the server runs as `postgres`, which must reach its dir: not under TMPDIR or
        # pytest's tmp_path (mode 0700, root's), but in /tmp (1777) or a 0755 dir below it
        parent = Path("/tmp")
        for p in (parent, *parent.parents):
            if not p.stat().st_mode & 0o001:
                raise RuntimeError(f"{p} is not traversable by {SYSTEM_USER}")
        directory = Path(tempfile.mkdtemp(prefix="kbcoach-pg-", dir=parent))
        os.chown(directory, account.pw_uid, account.pw_gid)
        return directory

    def _run(self, args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
        if self.as_root:
            args = ["runuser", "-u", SYSTEM_USER, "--", *args]
        proc = subprocess.run(
            args,
            cwd=cwd,  # the server user may not be allowed into our working directory
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=READY_TIMEOUT + 30,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
                + self._log_tail()
            )
        return proc

    def _initdb(self) -> None:
        assert self.dir is not None
        base = [self._bin("initdb"), "-D", str(self.dir / "data"), "--auth=trust", "-U", DB_USER]
        base += ["--encoding=UTF8"]
        proc = self._run([*base, f"--locale={self.locale}"], cwd=self.dir, check=False)
        if proc.returncode != 0 and "locale" in proc.stdout + proc.stderr:
            # a system without the C.UTF-8 locale: byte-order collation, UTF-8 data
            shutil.rmtree(self.dir / "data", ignore_errors=True)
            self._run([*base, "--no-locale"], cwd=self.dir)
        elif proc.returncode != 0:
            raise RuntimeError(f"initdb exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")

    def _pg_ctl_start(self) -> None:
        assert self.dir is not None
        log = self.dir / "log"
        for attempt in range(3):
            log.unlink(missing_ok=True)  # so the checks below read this attempt's log only
            self.port = free_port()
            options = [
                "-c listen_addresses=127.0.0.1",
                f"-p {self.port}",
                f"-k '{self.dir}'",  # the Unix socket, out of /var/run/postgresql
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
                *(f"-c {name}={value}" for name, value in self.settings.items()),
            ]
            proc = self._run(
                [self._bin("pg_ctl"), "-D", str(self.dir / "data"), "-l", str(log)]
                + ["-w", "-t", str(READY_TIMEOUT), "-o", " ".join(options), "start"],
                cwd=self.dir,
                check=False,
            )
            if proc.returncode == 0:
                return
            # another process took the free port between free_port() and the bind: retry
            if "could not bind" not in self._log_tail() or attempt == 2:
                raise RuntimeError(
                    f"pg_ctl start exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
                    + self._log_tail()
                )

    def _wait_connectable(self, timeout: float = 10) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(**self._conninfo("postgres"), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"PostgreSQL on port {self.port} not answering: {exc}" + self._log_tail()
                    ) from exc
                time.sleep(0.1)

    def _log_tail(self) -> str:
        log = self.dir / "log" if self.dir else None
        if log is None or not log.exists():
            return ""
        lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        return f"\n--- server log {log} (tail) ---\n" + "\n".join(lines)
