"""Audit claims: batches of a run's conversations are claimed in the database by
whichever process has a free worker, so several nodes check one run.

qa_items.claimed_by / claimed_until: who holds the item (``host:pid:worker``) and
until when (epoch seconds); a claim not renewed in time is taken by another worker.
qa_runs.claimed_by / claimed_until: the run's heartbeat, moved by every batch claimed
or renewed, so a run whose every worker is gone shows as interrupted.
runs.host: the machine an import or rebuild job runs on (its pid means something
there only: another node does not mark it interrupted).

Data step: an instance made before the findings table (one row per finding, written
with each checked batch) got it empty from the baseline; its checked conversations'
findings are filled in here, once (release 0.1 filled them itself when it opened one).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CHUNK = 1000


def upgrade() -> None:
    for table in ("qa_items", "qa_runs"):
        op.add_column(table, sa.Column("claimed_by", sa.Text(), nullable=True))
        op.add_column(table, sa.Column("claimed_until", sa.Float(), nullable=True))
    op.add_column("runs", sa.Column("host", sa.Text(), nullable=True))
    # the claims held on a run (who is still working on it) without reading its items
    op.create_index("idx_qa_items_run_id_claimed_until", "qa_items", ["run_id", "claimed_until"])
    _fill_findings()


def _fill_findings() -> None:
    bind = op.get_bind()
    meta = sa.MetaData()
    items = sa.Table(
        "qa_items",
        meta,
        sa.Column("id"),
        sa.Column("run_id"),
        sa.Column("agent"),
        sa.Column("status"),
        sa.Column("findings"),
    )
    findings = sa.Table(
        "qa_findings",
        meta,
        sa.Column("run_id"),
        sa.Column("item_id"),
        sa.Column("agent"),
        sa.Column("idx"),
        sa.Column("rule"),
        sa.Column("category"),
        sa.Column("match"),
        sa.Column("waived"),
    )
    if bind.execute(sa.select(findings.c.item_id).limit(1)).first() is not None:
        return  # filled already (every instance that ever checked with release 0.1)
    done = (
        sa.select(items.c.id, items.c.run_id, items.c.agent, items.c.findings)
        .where(items.c.status == "done", items.c.findings.notin_(["[]", ""]))
        .order_by(items.c.id)
        .limit(CHUNK)
    )
    last = -1
    while True:  # a page of conversations at a time: their findings may be large
        page = bind.execute(done.where(items.c.id > last)).all()
        if not page:
            return
        rows = [
            {
                "run_id": run_id,
                "item_id": item_id,
                "agent": agent or "",
                "idx": n,
                "rule": f["rule"],
                "category": f["category"],
                "match": (f.get("match") or "")[:100],
                "waived": int(bool(f.get("waived"))),
            }
            for item_id, run_id, agent, text in page
            for n, f in enumerate(json.loads(text or "[]"))
        ]
        if rows:
            bind.execute(sa.insert(findings), rows)
        last = page[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("host")
    op.drop_index("idx_qa_items_run_id_claimed_until", "qa_items")
    for table in ("qa_runs", "qa_items"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("claimed_until")
            batch.drop_column("claimed_by")
