"""Remembered waivers (coach/waivers.py): qa_waivers rows, their look-up by rule and
normalised wording, and the appeal and waiver figures per rule for the rules page."""

from __future__ import annotations

import sqlalchemy as sa

from . import schema
from .database import Database

_waivers = schema.qa_waivers
_items = schema.qa_items
_findings = schema.qa_findings
_appeals = schema.qa_appeals


def remember(db: Database, row: dict) -> bool:
    """Keep a rule and wording unless it is kept already; True if it was new."""
    exists = sa.select(_waivers.c.id).where(
        _waivers.c.rule == row["rule"], _waivers.c.wording == row["wording"]
    )
    with db.begin() as conn:
        if conn.execute(exists.limit(1)).first() is not None:
            return False
        conn.execute(sa.insert(_waivers).values(**row))
        return True


def lookup(db: Database, rules: list[str], wordings: list[str]) -> dict[tuple[str, str], int]:
    """(rule, wording) -> the first appeal that taught it, for the pairs asked."""
    if not rules or not wordings:
        return {}
    stmt = (
        sa.select(_waivers.c.rule, _waivers.c.wording, sa.func.min(_waivers.c.appeal_id))
        .where(
            _waivers.c.rule.in_(sorted(set(rules))), _waivers.c.wording.in_(sorted(set(wordings)))
        )
        .group_by(_waivers.c.rule, _waivers.c.wording)
    )
    with db.read() as conn:
        return {(r, w): int(a) for r, w, a in conn.execute(stmt)}


def rule_figures(db: Database) -> dict[str, dict]:
    """Per rule: findings and waived findings (of conversations not re-audited since),
    appeals, accepted appeals and remembered wordings."""
    out: dict[str, dict] = {}

    def row(rule: str) -> dict:
        return out.setdefault(
            rule, {"findings": 0, "waived": 0, "appeals": 0, "accepted": 0, "remembered": 0}
        )

    current = sa.select(_items.c.id).where(_items.c.replaced_by.is_(None))
    found = (
        sa.select(
            _findings.c.rule,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(_findings.c.waived), 0),
        )
        .where(_findings.c.item_id.in_(current))
        .group_by(_findings.c.rule)
    )
    accepted = sa.func.sum(sa.case((_appeals.c.status == "accepted", 1), else_=0))
    appeals = sa.select(_appeals.c.rule, sa.func.count(), accepted).group_by(_appeals.c.rule)
    kept = sa.select(_waivers.c.rule, sa.func.count()).group_by(_waivers.c.rule)
    with db.read() as conn:
        for rule, n, waived in conn.execute(found):
            row(rule).update(findings=int(n), waived=int(waived or 0))
        for rule, n, yes in conn.execute(appeals):
            row(rule).update(appeals=int(n), accepted=int(yes or 0))
        for rule, n in conn.execute(kept):
            row(rule)["remembered"] = int(n)
    return out
