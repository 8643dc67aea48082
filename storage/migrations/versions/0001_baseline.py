"""Baseline: the tables of release 0.1, which created them itself, module by module.

An instance made by release 0.1 already has every table (or all but a few that later
0.1 code added on open): only the missing ones are created, so it upgrades in place.
A fresh database gets them all.  Frozen: later changes go in later revisions.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TYPES = {"text": sa.Text, "int": sa.Integer, "real": sa.Float, "id": lambda: ID}

# name: "column type[ pk][ notnull], ..." as release 0.1 created them
TABLES = {
    "articles": "id text pk, title text, category text, body text, tags text, similar text, "
    "owner text, review_by text, status text, version int, created_at text, updated_at text, "
    "updated_by text",
    "revisions": "id id pk, article_id text, version int, action text, at text, by text, "
    "changed text, title text, category text, body text, tags text, similar text, owner text, "
    "review_by text, status text",
    "search_log": "id id pk, at text, q text, category text, tag text, hits int, took_ms real, "
    "via text",
    "meta": "key text pk, value text",
    "changes": "seq id pk, kind text notnull, doc_id text notnull, op text notnull, "
    "at text notnull",
    "runs": "id id pk, kind text, source text, pid int, started_at text, finished_at text, "
    "status text, detail text",
    "users": "id id pk, username text, password_hash text, roles text, disabled int, "
    "created_at text",
    "sessions": "id id pk, sid_hash text, user_id id, created_at real, last_seen real, "
    "expires_at real",
    "tokens": "id id pk, user_id id, token_hash text, name text, created_at text, "
    "revoked_at text, last_used_at text",
    "login_failures": "id id pk, key text, at real",
    "audit_log": "id id pk, at text, actor text, action text, target text, detail text",
    "pins": "id id pk, query text, match_key text, article_id text, created_at text, "
    "created_by text",
    "script_usage": "id id pk, at text, script_id text, user_id id, username text, "
    "channel text, via text",
    "personal_scripts": "id id pk, user_id id, title text, text text, shortcut text, "
    "tags text, channels text, created_at text, updated_at text",
    "qa_runs": "id id pk, name text, created_by text, created_at text, finished_at text, "
    "status text, pid int, total int, checked int, errors int, rules_version int, message text",
    "qa_items": "id id pk, run_id id, seq int, conv_id text, agent text, source text, "
    "status text, score real, turns int, agent_turns int, findings text, unchecked text, "
    "conversation text",
    "qa_errors": "id id pk, run_id id, path text, line int, reason text",
    "qa_appeals": "id id pk, item_id id, finding int, rule text, by text, reason text, at text, "
    "status text, decided_by text, decided_at text, note text",
    "qa_findings": "id id pk, run_id id, item_id id, agent text, idx int, rule text, "
    "category text, match text, waived int",
    "rule_packs": "id id pk, yaml text, by text, at text, note text",
}

# (name, table, columns, unique)
INDEXES = [
    ("idx_articles_category", "articles", ["category"], False),
    ("idx_articles_updated_at", "articles", ["updated_at"], False),
    ("idx_revisions_article_id_version", "revisions", ["article_id", "version"], False),
    ("idx_users_username", "users", ["username"], True),
    ("idx_sessions_sid_hash", "sessions", ["sid_hash"], True),
    ("idx_sessions_user_id", "sessions", ["user_id"], False),
    ("idx_tokens_token_hash", "tokens", ["token_hash"], True),
    ("idx_login_failures_key_at", "login_failures", ["key", "at"], False),
    ("idx_pins_match_key", "pins", ["match_key"], False),
    ("idx_script_usage_at", "script_usage", ["at"], False),
    ("idx_script_usage_script_id", "script_usage", ["script_id"], False),
    (
        "idx_personal_scripts_user_id_updated_at",
        "personal_scripts",
        ["user_id", "updated_at"],
        False,
    ),
    ("idx_qa_items_run_id_status_seq", "qa_items", ["run_id", "status", "seq"], False),
    ("idx_qa_items_agent", "qa_items", ["agent"], False),
    ("qa_errors_run", "qa_errors", ["run_id", "id"], False),
    ("idx_qa_appeals_item_id", "qa_appeals", ["item_id"], False),
    ("idx_qa_appeals_status", "qa_appeals", ["status"], False),
    ("idx_qa_findings_run_id_agent_rule", "qa_findings", ["run_id", "agent", "rule"], False),
    ("idx_qa_findings_item_id_idx", "qa_findings", ["item_id", "idx"], False),
]

APPEND_ONLY = "audit log is append-only"


def _columns(spec: str) -> list[sa.Column]:
    columns = []
    for part in spec.split(","):
        name, kind, *flags = part.split()
        columns.append(
            sa.Column(
                name,
                TYPES[kind](),
                primary_key="pk" in flags,
                nullable="notnull" not in flags and "pk" not in flags,
                autoincrement=kind == "id" and "pk" in flags,
            )
        )
    return columns


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    existing = set(inspector.get_table_names())
    for name, spec in TABLES.items():
        if name not in existing:
            kwargs = {"sqlite_autoincrement": True} if name == "changes" else {}
            op.create_table(name, *_columns(spec), **kwargs)
    for name, table, columns, unique in INDEXES:
        have = {ix["name"] for ix in sa.inspect(bind).get_indexes(table)}
        if name not in have:
            op.create_index(name, table, columns, unique=unique)
    if bind.dialect.name == "sqlite":
        for event, verb in (("no_update", "UPDATE"), ("no_delete", "DELETE")):
            op.execute(
                f"CREATE TRIGGER IF NOT EXISTS audit_log_{event} BEFORE {verb} ON audit_log "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
            )
    else:
        op.execute(
            "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )


def downgrade() -> None:
    raise NotImplementedError("the baseline is not undone: restore a backup instead")
