"""The team's agents: sender names as transcripts write them, each optionally the
alias of a user account (issue 15; core/team_agents.py).

team_agents: name (unique), username (None: a name only), who added it and when.

Revision ID: 0014_team_agents
Revises: 0010_agents
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_team_agents"
down_revision = "0011_calibration"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "team_agents",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text()),
        sa.Column("username", sa.Text()),
        sa.Column("created_by", sa.Text()),
        sa.Column("created_at", sa.Text()),
    )
    op.create_index("idx_team_agents_name", "team_agents", ["name"], unique=True)


def downgrade() -> None:
    op.drop_index("idx_team_agents_name", "team_agents")
    op.drop_table("team_agents")
