"""Files round trip: the last sync of each article with a Markdown folder.

kb_sync: folder (the id in the folder's .kbcoach-sync file), article id, the file's
path in the folder, the article version and the content hash both sides had at the
last sync, and when.

Revision ID: 0015_kb_sync
Revises: 0010_agents
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_kb_sync"
down_revision = "0014_team_agents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kb_sync",
        sa.Column("folder", sa.Text(), primary_key=True),
        sa.Column("article_id", sa.Text(), primary_key=True),
        sa.Column("path", sa.Text()),
        sa.Column("version", sa.Integer()),
        sa.Column("sha256", sa.Text()),
        sa.Column("synced_at", sa.Text()),
    )


def downgrade() -> None:
    op.drop_table("kb_sync")
