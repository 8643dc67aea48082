"""Accounts on the admin pages: when a user last logged in, a password change forced
at the next login (after an admin reset it), and indexes for the audit-log filters.

users.last_login_at: ISO time of the last successful login (None: not since 0003).
users.must_change_password: 1 until the user picks a new password (None counts as 0).

Revision ID: 0008_accounts_admin
Revises: 0007_gaps_feedback
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_accounts_admin"
down_revision = "0007_gaps_feedback"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("last_login_at", sa.Text(), nullable=True))
    op.add_column("users", sa.Column("must_change_password", sa.Integer(), nullable=True))
    op.create_index("idx_audit_log_actor_id", "audit_log", ["actor", "id"])
    op.create_index("idx_audit_log_action_id", "audit_log", ["action", "id"])


def downgrade() -> None:
    op.drop_index("idx_audit_log_action_id", "audit_log")
    op.drop_index("idx_audit_log_actor_id", "audit_log")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("must_change_password")
        batch.drop_column("last_login_at")
