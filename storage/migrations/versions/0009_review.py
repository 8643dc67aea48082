"""Review with comments (issue 12, item 4): a comment thread per article.

article_comments: one row per comment (kind: comment / send_back / approve / submit),
with who wrote it and when.

Revision ID: 0009_review
Revises: 0008_accounts_admin
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_review"
down_revision = "0008_accounts_admin"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "article_comments",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("article_id", sa.Text()),
        sa.Column("version", sa.Integer()),
        sa.Column("kind", sa.Text()),
        sa.Column("body", sa.Text()),
        sa.Column("by", sa.Text()),
        sa.Column("at", sa.Text()),
    )
    op.create_index("idx_article_comments_article_id_id", "article_comments", ["article_id", "id"])


def downgrade() -> None:
    op.drop_index("idx_article_comments_article_id_id", "article_comments")
    op.drop_table("article_comments")
