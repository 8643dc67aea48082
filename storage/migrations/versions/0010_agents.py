"""Remembered waivers: an accepted appeal's rule and flagged wording (normalised),
so the same wording under the same rule is waived automatically in later runs.

qa_waivers: rule, wording (normalised: coach/waivers.py), the appeal that taught it,
its conversation, who accepted it and when.
qa_reaudits: a run that re-audits an earlier run (of_run) with a rule version.

Revision ID: 0010_agents
Revises: 0008_accounts_admin
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_agents"
down_revision = "0009_review"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "qa_waivers",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("rule", sa.Text()),
        sa.Column("wording", sa.Text()),
        sa.Column("appeal_id", ID),
        sa.Column("item_id", ID),
        sa.Column("created_by", sa.Text()),
        sa.Column("created_at", sa.Text()),
    )
    op.create_index("idx_qa_waivers_rule_wording", "qa_waivers", ["rule", "wording"])
    op.create_table(
        "qa_reaudits",
        sa.Column("run_id", ID, primary_key=True, autoincrement=False),
        sa.Column("of_run", ID),
        sa.Column("rules_version", sa.Integer()),
    )
    op.create_index("idx_qa_reaudits_of_run", "qa_reaudits", ["of_run"])


def downgrade() -> None:
    op.drop_index("idx_qa_reaudits_of_run", "qa_reaudits")
    op.drop_table("qa_reaudits")
    op.drop_index("idx_qa_waivers_rule_wording", "qa_waivers")
    op.drop_table("qa_waivers")
