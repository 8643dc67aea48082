"""Content gaps and article feedback (issue 12, items 8 and 9).

search_log.qkey: the query's group key (sorted normalised terms), written with each
entry; entries logged before this revision have none and get it when first read.
search_opens: which result an agent opened from a search (query, document, position).
gap_dismissals: a trainer's dismissed gap groups (per kind and key, last dismissal).
gap_scans / gap_questions: audited conversations looked at for customer questions the
knowledge base could not answer, and those questions.
article_feedback: one 有用 / 没用 vote per user per article, with an optional comment.

Revision ID: 0007_gaps_feedback
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_gaps_feedback"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column:
    return sa.Column("id", ID, primary_key=True, autoincrement=True)


def upgrade() -> None:
    op.add_column("search_log", sa.Column("qkey", sa.Text(), nullable=True))
    op.create_index("idx_search_log_at", "search_log", ["at"])
    op.create_table(
        "search_opens",
        _id(),
        sa.Column("at", sa.Text()),
        sa.Column("q", sa.Text()),
        sa.Column("qkey", sa.Text()),
        sa.Column("doc_id", sa.Text()),
        sa.Column("doctype", sa.Text()),
        sa.Column("position", sa.Integer()),
        sa.Column("user_id", ID),
        sa.Column("via", sa.Text()),
    )
    op.create_index("idx_search_opens_at", "search_opens", ["at"])
    op.create_index("idx_search_opens_qkey", "search_opens", ["qkey"])
    op.create_table(
        "gap_dismissals",
        _id(),
        sa.Column("kind", sa.Text()),
        sa.Column("qkey", sa.Text()),
        sa.Column("dismissed_at", sa.Text()),
        sa.Column("dismissed_by", sa.Text()),
    )
    op.create_index("idx_gap_dismissals_kind_qkey", "gap_dismissals", ["kind", "qkey"], unique=True)
    op.create_table(
        "gap_scans",
        sa.Column("item_id", ID, primary_key=True, autoincrement=False),
        sa.Column("at", sa.Text()),
        sa.Column("questions", sa.Integer()),
    )
    op.create_table(
        "gap_questions",
        _id(),
        sa.Column("item_id", ID),
        sa.Column("run_id", ID),
        sa.Column("turn", sa.Integer()),
        sa.Column("text", sa.Text()),
        sa.Column("qkey", sa.Text()),
        sa.Column("score", sa.Float()),
        sa.Column("article_id", sa.Text()),
        sa.Column("at", sa.Text()),
    )
    op.create_index("idx_gap_questions_at", "gap_questions", ["at"])
    op.create_index("idx_gap_questions_item_id", "gap_questions", ["item_id"])
    op.create_table(
        "article_feedback",
        _id(),
        sa.Column("article_id", sa.Text()),
        sa.Column("user_id", ID),
        sa.Column("username", sa.Text()),
        sa.Column("useful", sa.Integer()),
        sa.Column("comment", sa.Text()),
        sa.Column("created_at", sa.Text()),
        sa.Column("updated_at", sa.Text()),
    )
    op.create_index(
        "idx_article_feedback_article_id_user_id",
        "article_feedback",
        ["article_id", "user_id"],
        unique=True,
    )
    op.create_index("idx_article_feedback_updated_at", "article_feedback", ["updated_at"])


def downgrade() -> None:
    for table in (
        "article_feedback",
        "gap_questions",
        "gap_scans",
        "gap_dismissals",
        "search_opens",
    ):
        op.drop_table(table)
    op.drop_index("idx_search_log_at", "search_log")
    with op.batch_alter_table("search_log") as batch:
        batch.drop_column("qkey")
