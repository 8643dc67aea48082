"""Sampling and calibration: samples of audited conversations drawn per agent and
period, reviewed independently by several supervisors.

cal_samples: name, who, when, the draw's seed and parameters, size.
cal_items: a sampled conversation (qa_items id) and its checker findings as drawn.
cal_reviews: one supervisor's review of a sample (open / submitted / observer).
cal_answers: a reviewer's rating and finding verdicts on one conversation.
cal_misses: a finding the checker missed, added by a reviewer.

Revision ID: 0011_calibration
Revises: 0010_agents
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_calibration"
down_revision = "0010_agents"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cal_samples",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text()),
        sa.Column("created_by", sa.Text()),
        sa.Column("created_at", sa.Text()),
        sa.Column("seed", sa.Text()),
        sa.Column("per_agent", sa.Integer()),
        sa.Column("since", sa.Text()),
        sa.Column("until", sa.Text()),
        sa.Column("run_id", ID),
        sa.Column("agents", sa.Text()),
        sa.Column("size", sa.Integer()),
    )
    op.create_table(
        "cal_items",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("sample_id", ID),
        sa.Column("seq", sa.Integer()),
        sa.Column("item_id", ID),
        sa.Column("run_id", ID),
        sa.Column("agent", sa.Text()),
        sa.Column("conv_id", sa.Text()),
        sa.Column("turns", sa.Integer()),
        sa.Column("findings", sa.Text()),
    )
    op.create_index("idx_cal_items_sample_id_seq", "cal_items", ["sample_id", "seq"])
    op.create_table(
        "cal_reviews",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("sample_id", ID),
        sa.Column("reviewer", sa.Text()),
        sa.Column("status", sa.Text()),
        sa.Column("started_at", sa.Text()),
        sa.Column("submitted_at", sa.Text()),
    )
    op.create_index(
        "idx_cal_reviews_sample_id_reviewer",
        "cal_reviews",
        ["sample_id", "reviewer"],
        unique=True,
    )
    op.create_table(
        "cal_answers",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("review_id", ID),
        sa.Column("cal_item_id", ID),
        sa.Column("rating", sa.Integer()),
        sa.Column("verdicts", sa.Text()),
        sa.Column("saved_at", sa.Text()),
    )
    op.create_index(
        "idx_cal_answers_review_id_cal_item_id",
        "cal_answers",
        ["review_id", "cal_item_id"],
        unique=True,
    )
    op.create_table(
        "cal_misses",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("review_id", ID),
        sa.Column("cal_item_id", ID),
        sa.Column("rule", sa.Text()),
        sa.Column("category", sa.Text()),
        sa.Column("turn", sa.Integer()),
        sa.Column("note", sa.Text()),
        sa.Column("at", sa.Text()),
    )
    op.create_index(
        "idx_cal_misses_review_id_cal_item_id", "cal_misses", ["review_id", "cal_item_id"]
    )


def downgrade() -> None:
    op.drop_index("idx_cal_misses_review_id_cal_item_id", "cal_misses")
    op.drop_table("cal_misses")
    op.drop_index("idx_cal_answers_review_id_cal_item_id", "cal_answers")
    op.drop_table("cal_answers")
    op.drop_index("idx_cal_reviews_sample_id_reviewer", "cal_reviews")
    op.drop_table("cal_reviews")
    op.drop_index("idx_cal_items_sample_id_seq", "cal_items")
    op.drop_table("cal_items")
    op.drop_table("cal_samples")
