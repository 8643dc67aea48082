"""The one schema of an instance, for SQLite and PostgreSQL alike.

This module describes the tables as the newest migration leaves them; the repositories
build their queries from it.  Migrations (``storage/migrations/versions``) never import
it: each keeps the shape of its own time.  ``tests/test_storage.py`` checks that a
database migrated to head matches this description on both backends.

Types: ids are 64-bit (``Id``: SQLite's INTEGER PRIMARY KEY rowid alias, BIGINT with an
identity on PostgreSQL); times are ISO-8601 text in UTC, except the session and
throttling clocks, which are epoch seconds (``Float``).  JSON documents are text.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
)

# SQLite only aliases the rowid (and so numbers rows itself) for "INTEGER PRIMARY KEY"
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()


def _id() -> Column:
    return Column("id", Id, primary_key=True, autoincrement=True)


articles = Table(
    "articles",
    metadata,
    Column("id", Text, primary_key=True),
    Column("title", Text),
    Column("category", Text),
    Column("body", Text),
    Column("tags", Text),
    Column("similar", Text),
    Column("owner", Text),
    Column("review_by", Text),
    Column("status", Text),
    Column("version", Integer),
    Column("created_at", Text),
    Column("updated_at", Text),
    Column("updated_by", Text),
    Index("idx_articles_category", "category"),
    Index("idx_articles_updated_at", "updated_at"),
)

revisions = Table(
    "revisions",
    metadata,
    _id(),
    Column("article_id", Text),
    Column("version", Integer),
    Column("action", Text),
    Column("at", Text),
    Column("by", Text),
    Column("changed", Text),
    Column("title", Text),
    Column("category", Text),
    Column("body", Text),
    Column("tags", Text),
    Column("similar", Text),
    Column("owner", Text),
    Column("review_by", Text),
    Column("status", Text),
    Index("idx_revisions_article_id_version", "article_id", "version"),
)

search_log = Table(
    "search_log",
    metadata,
    _id(),
    Column("at", Text),
    Column("q", Text),
    Column("category", Text),
    Column("tag", Text),
    Column("hits", Integer),
    Column("took_ms", Float),
    Column("via", Text),
    # the query's group key (kb/gaps.py query_key), filled when the entry is written
    Column("qkey", Text),
    Index("idx_search_log_at", "at"),
)

# a result an agent opened from a search: which query, which document, which position
search_opens = Table(
    "search_opens",
    metadata,
    _id(),
    Column("at", Text),
    Column("q", Text),
    Column("qkey", Text),
    Column("doc_id", Text),
    Column("doctype", Text),
    Column("position", Integer),
    Column("user_id", Id),
    Column("via", Text),
    Index("idx_search_opens_at", "at"),
    Index("idx_search_opens_qkey", "qkey"),
)

# a content-gap group a trainer dismissed: hidden until searched (or asked) again after
gap_dismissals = Table(
    "gap_dismissals",
    metadata,
    _id(),
    Column("kind", Text),  # search | transcript
    Column("qkey", Text),
    Column("dismissed_at", Text),
    Column("dismissed_by", Text),
    Index("idx_gap_dismissals_kind_qkey", "kind", "qkey", unique=True),
)

# audited conversations already looked at for unanswered customer questions
gap_scans = Table(
    "gap_scans",
    metadata,
    Column("item_id", Id, primary_key=True, autoincrement=False),
    Column("at", Text),
    Column("questions", Integer),
)

# a customer question of an audited conversation the knowledge base could not answer
gap_questions = Table(
    "gap_questions",
    metadata,
    _id(),
    Column("item_id", Id),
    Column("run_id", Id),
    Column("turn", Integer),
    Column("text", Text),
    Column("qkey", Text),
    Column("score", Float),
    Column("article_id", Text),
    Column("at", Text),
    Index("idx_gap_questions_at", "at"),
    Index("idx_gap_questions_item_id", "item_id"),
)

# one vote per user per article (有用 / 没用), changeable, with an optional comment
article_feedback = Table(
    "article_feedback",
    metadata,
    _id(),
    Column("article_id", Text),
    Column("user_id", Id),
    Column("username", Text),
    Column("useful", Integer),  # 1 有用, 0 没用
    Column("comment", Text),
    Column("created_at", Text),
    Column("updated_at", Text),
    Index("idx_article_feedback_article_id_user_id", "article_id", "user_id", unique=True),
    Index("idx_article_feedback_updated_at", "updated_at"),
)

# review comments per article (kb/review.py): plain comments and review decisions
article_comments = Table(
    "article_comments",
    metadata,
    _id(),
    Column("article_id", Text),
    Column("version", Integer),  # the article's version when written
    Column("kind", Text),  # comment / submit / send_back / approve
    Column("body", Text),
    Column("by", Text),
    Column("at", Text),
    Index("idx_article_comments_article_id_id", "article_id", "id"),
)

meta = Table(
    "meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text),
)

# the change sequence every node's search index follows (see storage/articles.py)
changes = Table(
    "changes",
    metadata,
    Column("seq", Id, primary_key=True, autoincrement=True),
    Column("kind", Text, nullable=False),
    Column("doc_id", Text, nullable=False),
    Column("op", Text, nullable=False),
    Column("at", Text, nullable=False),
    sqlite_autoincrement=True,  # never reuse a number, even after the newest row is gone
)

runs = Table(
    "runs",
    metadata,
    _id(),
    Column("kind", Text),
    Column("source", Text),
    Column("pid", Integer),
    Column("started_at", Text),
    Column("finished_at", Text),
    Column("status", Text),
    Column("detail", Text),
    Column("host", Text),  # the machine of the job's process (None: made before 0002)
)

users = Table(
    "users",
    metadata,
    _id(),
    Column("username", Text),
    Column("password_hash", Text),
    Column("roles", Text),
    Column("disabled", Integer),
    Column("created_at", Text),
    Column("last_login_at", Text),  # None: never logged in since 0003
    Column("must_change_password", Integer),  # 1 after an admin reset (None: 0)
    Index("idx_users_username", "username", unique=True),
)

sessions = Table(
    "sessions",
    metadata,
    _id(),
    Column("sid_hash", Text),
    Column("user_id", Id),
    Column("created_at", Float),
    Column("last_seen", Float),
    Column("expires_at", Float),
    Index("idx_sessions_sid_hash", "sid_hash", unique=True),
    Index("idx_sessions_user_id", "user_id"),
)

tokens = Table(
    "tokens",
    metadata,
    _id(),
    Column("user_id", Id),
    Column("token_hash", Text),
    Column("name", Text),
    Column("created_at", Text),
    Column("revoked_at", Text),
    Column("last_used_at", Text),
    Index("idx_tokens_token_hash", "token_hash", unique=True),
)

login_failures = Table(
    "login_failures",
    metadata,
    _id(),
    Column("key", Text),
    Column("at", Float),
    Index("idx_login_failures_key_at", "key", "at"),
)

# append-only: a trigger refuses UPDATE and DELETE on both backends
audit_log = Table(
    "audit_log",
    metadata,
    _id(),
    Column("at", Text),
    Column("actor", Text),
    Column("action", Text),
    Column("target", Text),
    Column("detail", Text),
    # the admin page's filters (who, what), newest first
    Index("idx_audit_log_actor_id", "actor", "id"),
    Index("idx_audit_log_action_id", "action", "id"),
)

pins = Table(
    "pins",
    metadata,
    _id(),
    Column("query", Text),
    Column("match_key", Text),
    Column("article_id", Text),
    Column("created_at", Text),
    Column("created_by", Text),
    Index("idx_pins_match_key", "match_key"),
)

script_usage = Table(
    "script_usage",
    metadata,
    _id(),
    Column("at", Text),
    Column("script_id", Text),
    Column("user_id", Id),
    Column("username", Text),
    Column("channel", Text),
    Column("via", Text),
    Index("idx_script_usage_at", "at"),
    Index("idx_script_usage_script_id", "script_id"),
)

personal_scripts = Table(
    "personal_scripts",
    metadata,
    _id(),
    Column("user_id", Id),
    Column("title", Text),
    Column("text", Text),
    Column("shortcut", Text),
    Column("tags", Text),
    Column("channels", Text),
    Column("created_at", Text),
    Column("updated_at", Text),
    Index("idx_personal_scripts_user_id_updated_at", "user_id", "updated_at"),
)

qa_runs = Table(
    "qa_runs",
    metadata,
    _id(),
    Column("name", Text),
    Column("created_by", Text),
    Column("created_at", Text),
    Column("finished_at", Text),
    Column("status", Text),
    Column("pid", Integer),
    Column("total", Integer),
    Column("checked", Integer),
    Column("errors", Integer),
    Column("rules_version", Integer),
    Column("message", Text),
    # the run's heartbeat: the last worker to claim or renew a batch, and until when
    Column("claimed_by", Text),
    Column("claimed_until", Float),
)

qa_items = Table(
    "qa_items",
    metadata,
    _id(),
    Column("run_id", Id),
    Column("seq", Integer),
    Column("conv_id", Text),
    Column("agent", Text),
    Column("source", Text),
    Column("status", Text),
    Column("score", Float),
    Column("turns", Integer),
    Column("agent_turns", Integer),
    Column("findings", Text),
    Column("unchecked", Text),
    Column("conversation", Text),
    # a pending item claimed by a worker (host:pid:n) until a time (epoch seconds)
    Column("claimed_by", Text),
    Column("claimed_until", Float),
    # sha256 over the turns (coach/dupes.py): the same content uploaded again
    Column("fingerprint", Text),
    # the later item that re-audited this conversation (statistics over runs skip this one)
    Column("replaced_by", Id),
    Index("idx_qa_items_run_id_status_seq", "run_id", "status", "seq"),
    Index("idx_qa_items_agent", "agent"),
    Index("idx_qa_items_run_id_claimed_until", "run_id", "claimed_until"),
    Index("idx_qa_items_fingerprint", "fingerprint"),
    Index("idx_qa_items_conv_id", "conv_id"),
)

# conversations of an upload skipped as already audited: why, and the item they repeat
qa_duplicates = Table(
    "qa_duplicates",
    metadata,
    _id(),
    Column("run_id", Id),
    Column("seq", Integer),
    Column("conv_id", Text),
    Column("agent", Text),
    Column("fingerprint", Text),
    Column("reason", Text),  # id | content | upload
    Column("of_item", Id),
    Column("of_run", Id),
    Index("idx_qa_duplicates_run_id_seq", "run_id", "seq"),
)

qa_errors = Table(
    "qa_errors",
    metadata,
    _id(),
    Column("run_id", Id),
    Column("path", Text),
    Column("line", Integer),
    Column("reason", Text),
    Index("qa_errors_run", "run_id", "id"),
)

qa_appeals = Table(
    "qa_appeals",
    metadata,
    _id(),
    Column("item_id", Id),
    Column("finding", Integer),
    Column("rule", Text),
    Column("by", Text),
    Column("reason", Text),
    Column("at", Text),
    Column("status", Text),
    Column("decided_by", Text),
    Column("decided_at", Text),
    Column("note", Text),
    Index("idx_qa_appeals_item_id", "item_id"),
    Index("idx_qa_appeals_status", "status"),
)

qa_findings = Table(
    "qa_findings",
    metadata,
    _id(),
    Column("run_id", Id),
    Column("item_id", Id),
    Column("agent", Text),
    Column("idx", Integer),
    Column("rule", Text),
    Column("category", Text),
    Column("match", Text),
    Column("waived", Integer),
    Index("idx_qa_findings_run_id_agent_rule", "run_id", "agent", "rule"),
    Index("idx_qa_findings_item_id_idx", "item_id", "idx"),
)

# accepted appeals remembered: the same rule and wording is waived in later runs
qa_waivers = Table(
    "qa_waivers",
    metadata,
    _id(),
    Column("rule", Text),
    Column("wording", Text),  # normalised (coach/waivers.py)
    Column("appeal_id", Id),
    Column("item_id", Id),
    Column("created_by", Text),
    Column("created_at", Text),
    Index("idx_qa_waivers_rule_wording", "rule", "wording"),
)

# a run made by re-auditing an earlier run's conversations with the current rules
qa_reaudits = Table(
    "qa_reaudits",
    metadata,
    Column("run_id", Id, primary_key=True, autoincrement=False),
    Column("of_run", Id),
    Column("rules_version", Integer),
    Index("idx_qa_reaudits_of_run", "of_run"),
)

# the team's agents (issue 15): a sender name as transcripts write it, and the user
# account it stands for (None: a known agent name, linked by equal names as before)
team_agents = Table(
    "team_agents",
    metadata,
    _id(),
    Column("name", Text),
    Column("username", Text),
    Column("created_by", Text),
    Column("created_at", Text),
    Index("idx_team_agents_name", "name", unique=True),
)

# a web upload's files, kept until the background worker has read them into the
# run's conversations (coach/audits.py: read_upload); options: the form's fields (JSON)
qa_uploads = Table(
    "qa_uploads",
    metadata,
    _id(),
    Column("run_id", Id),
    Column("seq", Integer),
    Column("name", Text),
    Column("data", LargeBinary),
    Column("options", Text),
    Index("idx_qa_uploads_run", "run_id"),
)

rule_packs = Table(
    "rule_packs",
    metadata,
    _id(),
    Column("yaml", Text),
    Column("by", Text),
    Column("at", Text),
    Column("note", Text),
)

# -- calibration (core/calibration.py): samples of audited conversations that several
# supervisors review independently, to measure their agreement and the checker's precision

cal_samples = Table(
    "cal_samples",
    metadata,
    _id(),
    Column("name", Text),
    Column("created_by", Text),
    Column("created_at", Text),
    Column("seed", Text),  # the draw is repeatable: same seed, same period, same sample
    Column("per_agent", Integer),
    Column("since", Text),  # audit dates, inclusive (YYYY-MM-DD), or NULL
    Column("until", Text),
    Column("run_id", Id),  # drawn from one run only, or NULL
    Column("agents", Text),  # JSON list of the agents asked for; [] = all
    Column("size", Integer),
)

# a conversation of a sample: the audited item and its checker findings as drawn
cal_items = Table(
    "cal_items",
    metadata,
    _id(),
    Column("sample_id", Id),
    Column("seq", Integer),
    Column("item_id", Id),
    Column("run_id", Id),
    Column("agent", Text),
    Column("conv_id", Text),
    Column("turns", Integer),
    Column("findings", Text),  # JSON: [{index, rule, category, turn, match, message}]
    Index("idx_cal_items_sample_id_seq", "sample_id", "seq"),
)

# one supervisor's review of a sample: open, submitted, or observer (reads the report
# without reviewing)
cal_reviews = Table(
    "cal_reviews",
    metadata,
    _id(),
    Column("sample_id", Id),
    Column("reviewer", Text),
    Column("status", Text),
    Column("started_at", Text),
    Column("submitted_at", Text),
    Index("idx_cal_reviews_sample_id_reviewer", "sample_id", "reviewer", unique=True),
)

# a reviewer's answers on one conversation: rating 1-5, verdict per checker finding
cal_answers = Table(
    "cal_answers",
    metadata,
    _id(),
    Column("review_id", Id),
    Column("cal_item_id", Id),
    Column("rating", Integer),
    Column("verdicts", Text),  # JSON: {"<finding index>": "confirm" | "reject"}
    Column("saved_at", Text),
    Index("idx_cal_answers_review_id_cal_item_id", "review_id", "cal_item_id", unique=True),
)

# a finding the checker missed, added by a reviewer
cal_misses = Table(
    "cal_misses",
    metadata,
    _id(),
    Column("review_id", Id),
    Column("cal_item_id", Id),
    Column("rule", Text),
    Column("category", Text),
    Column("turn", Integer),  # 0-based, as findings' `turn`
    Column("note", Text),
    Column("at", Text),
    Index("idx_cal_misses_review_id_cal_item_id", "review_id", "cal_item_id"),
)

# the last sync of each article with a Markdown folder (kb/sync.py): the folder's id
# (from its .kbcoach-sync file), where the file is, the version and the hash of the
# content both sides had then
kb_sync = Table(
    "kb_sync",
    metadata,
    Column("folder", Text, primary_key=True),
    Column("article_id", Text, primary_key=True),
    Column("path", Text),
    Column("version", Integer),
    Column("sha256", Text),
    Column("synced_at", Text),
)
