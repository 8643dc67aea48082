"""Audit duplicates: a conversation already audited is recognised on upload.

qa_items.fingerprint: sha256 over the conversation's turns (role and text, NFKC and
whitespace-normalised), the same content uploaded again has the same one;
qa_items.replaced_by: the item that re-audited this conversation later (asked for by
the uploader), so statistics over several runs count it once.
qa_duplicates: the conversations of an upload skipped as duplicates, with the item
they duplicate and why (same id, same content, twice in the upload).

Data step: the fingerprint of every stored conversation, a page at a time (the
function is copied here, frozen, from coach/dupes.py).

Revision ID: 0006_audit_dupes
Revises: 0002
"""

from __future__ import annotations

import hashlib
import json
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0006_audit_dupes"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CHUNK = 500


def _fingerprint(turns: list) -> str:
    digest = hashlib.sha256()
    for t in turns:
        text = " ".join(unicodedata.normalize("NFKC", str(t.get("text") or "")).split())
        digest.update(f"{t.get('role') or ''}\x1f{text}\x1e".encode())
    return digest.hexdigest()


def upgrade() -> None:
    op.add_column("qa_items", sa.Column("fingerprint", sa.Text(), nullable=True))
    op.add_column("qa_items", sa.Column("replaced_by", ID, nullable=True))
    op.create_index("idx_qa_items_fingerprint", "qa_items", ["fingerprint"])
    op.create_index("idx_qa_items_conv_id", "qa_items", ["conv_id"])
    op.create_table(
        "qa_duplicates",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", ID),
        sa.Column("seq", sa.Integer()),
        sa.Column("conv_id", sa.Text()),
        sa.Column("agent", sa.Text()),
        sa.Column("fingerprint", sa.Text()),
        sa.Column("reason", sa.Text()),
        sa.Column("of_item", ID),
        sa.Column("of_run", ID),
    )
    op.create_index("idx_qa_duplicates_run_id_seq", "qa_duplicates", ["run_id", "seq"])
    _fill_fingerprints()


def _fill_fingerprints() -> None:
    bind = op.get_bind()
    items = sa.Table(
        "qa_items",
        sa.MetaData(),
        sa.Column("id"),
        sa.Column("conversation"),
        sa.Column("fingerprint"),
    )
    page = (
        sa.select(items.c.id, items.c.conversation)
        .where(items.c.fingerprint.is_(None))
        .order_by(items.c.id)
        .limit(CHUNK)
    )
    update = (
        sa.update(items)
        .where(items.c.id == sa.bindparam("item_id"))
        .values(fingerprint=sa.bindparam("fp"))
    )
    last = -1
    while True:  # a page of conversations at a time: they may be large
        rows = bind.execute(page.where(items.c.id > last)).all()
        if not rows:
            return
        values = []
        for item_id, text in rows:
            try:
                turns = json.loads(text or "{}").get("turns") or []
            except (ValueError, AttributeError):
                turns = []
            values.append({"item_id": item_id, "fp": _fingerprint(turns)})
        bind.execute(update, values)
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_index("idx_qa_duplicates_run_id_seq", "qa_duplicates")
    op.drop_table("qa_duplicates")
    op.drop_index("idx_qa_items_conv_id", "qa_items")
    op.drop_index("idx_qa_items_fingerprint", "qa_items")
    with op.batch_alter_table("qa_items") as batch:
        batch.drop_column("replaced_by")
        batch.drop_column("fingerprint")
