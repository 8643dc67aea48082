"""The real PostgreSQL server the suite starts (tests/pg.py) and its fixtures (conftest.py)."""

from __future__ import annotations

import os

import psycopg
import pytest
import sqlalchemy
from sqlalchemy.engine import make_url

from .pg import PostgresServer, find_bin_dir

seen_databases: list[str] = []


def test_server_answers_version(pg_url):
    engine = sqlalchemy.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(sqlalchemy.text("SELECT version()")).scalar_one()
            encoding = conn.execute(sqlalchemy.text("SHOW server_encoding")).scalar_one()
            collate = conn.execute(
                sqlalchemy.text("SELECT datcollate FROM pg_database WHERE datname = :n"),
                {"n": make_url(pg_url).database},
            ).scalar_one()
    finally:
        engine.dispose()
    assert version.startswith("PostgreSQL ")
    assert encoding == "UTF8"
    assert collate in ("C.UTF-8", "C")  # C where the system has no C.UTF-8 locale


def test_pg_url_databases_are_separate(pg_server, pg_url):
    other = pg_server.new_database()
    try:
        assert other != make_url(pg_url).database
        first = sqlalchemy.create_engine(pg_url)
        second = sqlalchemy.create_engine(pg_server.url(other))
        with first.begin() as conn:
            conn.execute(sqlalchemy.text("CREATE TABLE only_here (x int)"))
        with second.connect() as conn:
            tables = sqlalchemy.inspect(conn).get_table_names()
        first.dispose()
        second.dispose()
        assert tables == []
    finally:
        pg_server.drop_database(other)


@pytest.mark.parametrize("run", [1, 2])
def test_pg_url_is_fresh_and_dropped_after(pg_server, pg_url, run):
    name = make_url(pg_url).database
    assert name not in seen_databases
    for earlier in seen_databases:  # the fixture dropped them at teardown
        assert earlier not in pg_server.databases()
    seen_databases.append(name)
    engine = sqlalchemy.create_engine(pg_url)
    with engine.begin() as conn:  # the same table in each run: fails if a database is reused
        conn.execute(sqlalchemy.text("CREATE TABLE marker (x int)"))
    engine.dispose()


def test_backend_defaults_to_sqlite(backend, database_url, request):
    assert backend == "sqlite"
    assert database_url is None
    assert "pg_server" not in request.fixturenames  # a sqlite test starts no server


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_database_url_per_backend(backend, database_url):
    if backend == "sqlite":
        assert database_url is None
        return
    engine = sqlalchemy.create_engine(database_url)
    with engine.connect() as conn:
        current = conn.execute(sqlalchemy.text("SELECT current_database()")).scalar_one()
    engine.dispose()
    assert current == make_url(database_url).database


@pytest.mark.parametrize("backend", ["oracle"], indirect=True)
def test_unknown_backend_is_an_error(backend, request):
    with pytest.raises(ValueError, match="oracle"):
        request.getfixturevalue("database_url")


def test_drop_while_a_connection_is_open(pg_server):
    name = pg_server.new_database()
    engine = sqlalchemy.create_engine(pg_server.url(name))
    conn = engine.connect()
    conn.execute(sqlalchemy.text("SELECT 1"))
    pg_server.drop_database(name)  # WITH (FORCE): ends the open session
    assert name not in pg_server.databases()
    with pytest.raises(sqlalchemy.exc.OperationalError):
        conn.execute(sqlalchemy.text("SELECT 1"))
    conn.close()
    engine.dispose()
    pg_server.drop_database(name)  # IF EXISTS: a second drop is harmless


def test_missing_binaries_name_system_deps(tmp_path):
    (tmp_path / "15" / "bin").mkdir(parents=True)  # a version dir without initdb
    with pytest.raises(RuntimeError, match=r"\.ci/system-deps"):
        find_bin_dir(tmp_path)
    with pytest.raises(RuntimeError, match=r"\.ci/system-deps"):
        PostgresServer(root=tmp_path)


def test_newest_version_wins(tmp_path):
    for version in ("9.6", "15", "13"):
        bin_dir = tmp_path / version / "bin"
        bin_dir.mkdir(parents=True)
        for prog in ("initdb", "pg_ctl"):
            (bin_dir / prog).touch()
    assert find_bin_dir(tmp_path) == tmp_path / "15" / "bin"


@pytest.mark.slow
def test_failed_start_reports_the_log_and_cleans_up():
    server = PostgresServer(settings={"no_such_setting": "1"})
    with pytest.raises(RuntimeError, match="no_such_setting") as info:
        server.start()
    assert "server log" in str(info.value)
    assert server.dir is None


@pytest.mark.slow
def test_stop_twice_and_locale_fallback():
    server = PostgresServer()
    server.locale = "xx_XX.UTF-8"  # missing everywhere: initdb must fall back to --no-locale
    server.start()
    directory = server.dir
    with psycopg.connect(server.url("postgres").replace("+psycopg", "")) as conn:
        assert conn.execute("SHOW lc_collate").fetchone() == ("C",)
    server.stop()
    server.stop()
    assert not directory.exists()
    with pytest.raises(RuntimeError, match="not started"):
        server.url("postgres")


def test_forked_child_exiting_does_not_stop_the_server(pg_server, pg_url):
    pid = os.fork()
    if pid == 0:  # the child runs the atexit handlers (PostgresServer.stop) as it exits
        try:
            pg_server.stop()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    engine = sqlalchemy.create_engine(pg_url)
    with engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("SELECT 1")).scalar_one() == 1
    engine.dispose()
