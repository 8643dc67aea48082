"""A web upload answers at once: its files are kept until the background worker
reads them into the run's conversations.

qa_uploads: the run, the file's place in the upload, its name, its bytes and the
upload form's fields (JSON text).

Revision ID: 0013_upload_progress
Revises: 0010_agents
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_upload_progress"
down_revision = "0015_kb_sync"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "qa_uploads",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", ID),
        sa.Column("seq", sa.Integer()),
        sa.Column("name", sa.Text()),
        sa.Column("data", sa.LargeBinary()),
        sa.Column("options", sa.Text()),
    )
    op.create_index("idx_qa_uploads_run", "qa_uploads", ["run_id"])


def downgrade() -> None:
    op.drop_index("idx_qa_uploads_run", "qa_uploads")
    op.drop_table("qa_uploads")
