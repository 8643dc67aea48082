"""Layering: only storage/ speaks SQL or creates tables; the libraries import neither
Flask nor click; web/ and cli.py reach storage only through the core and libraries."""

from __future__ import annotations

import ast
import re

import pytest

from .conftest import REPO

LIBRARIES = ("kb", "coach", "scripts_lib", "core", "storage")
SURFACES = ("web", "cli.py")
SQL_MODULES = {"sqlite3", "sqlite_utils", "sqlalchemy", "alembic", "psycopg"}
# a statement in a string: a verb followed by what it acts on
SQL_TEXT = re.compile(
    r"\b(SELECT\b.+\bFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|"
    r"CREATE\s+(TABLE|INDEX|TRIGGER)|ALTER\s+TABLE|DROP\s+TABLE|PRAGMA\s+\w+)",
    re.DOTALL,  # SQL is written in capitals here; prose is not
)
# modules still moving into storage/ (issue 11): this list only shrinks
PENDING: set[str] = set()


def python_files(*roots: str):
    for root in roots:
        path = REPO / root
        yield from [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))


def rel(path) -> str:
    return str(path.relative_to(REPO))


def imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def sql_strings(tree: ast.AST) -> list[str]:
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and SQL_TEXT.search(node.value)
    ]


OUTSIDE_STORAGE = [
    p
    for p in python_files("kb", "coach", "scripts_lib", "core", "web", "cli.py")
    if rel(p) not in PENDING
]


@pytest.mark.parametrize("path", OUTSIDE_STORAGE, ids=rel)
def test_no_sql_outside_storage(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert not imported_modules(tree) & SQL_MODULES, "database access belongs in storage/"
    assert sql_strings(tree) == [], "SQL belongs in storage/"


@pytest.mark.parametrize("path", list(python_files(*LIBRARIES)), ids=rel)
def test_libraries_import_no_web_or_cli(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert not imported_modules(tree) & {"flask", "flask_login", "flask_wtf", "click", "web"}


def test_the_checks_catch_what_they_are_for():
    sample = ast.parse(
        "import sqlite3\nq = 'SELECT id FROM users WHERE x = ?'\n"
        "ddl = 'CREATE TABLE t (a)'\nfine = 'please select a file from the list'\n"
    )
    assert imported_modules(sample) & SQL_MODULES == {"sqlite3"}
    assert len(sql_strings(sample)) == 2


def test_pending_modules_still_exist():
    for name in PENDING:
        assert (REPO / name).exists(), f"{name} is gone: drop it from PENDING"
