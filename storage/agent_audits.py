"""One agent's audits across runs (我的质检, a supervisor's look at one agent).

Every figure counts a conversation once: its latest checked audit (the item of the
newest run among those in the period; the same conversation id uploaded in several
runs is one conversation).  Aggregates are SQL over qa_items (its `agent` index),
qa_runs (the run's `created_at` is the audit's date) and qa_findings (findings that
still count: not waived by an accepted appeal); Python only folds days into weeks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import sqlalchemy as sa

from . import schema
from .database import Database

_runs = schema.qa_runs
_items = schema.qa_items
_findings = schema.qa_findings


@dataclass(frozen=True)
class Period:
    """Audit dates `since` <= date < `before` (ISO text, UTC; None: open)."""

    since: str | None = None
    before: str | None = None


def not_moved():
    """The item was not re-audited under another agent (an alias added later, a
    corrected name): the conversation belongs to that agent now, in every period."""
    newer = _items.alias("newer")
    return ~sa.exists().where(newer.c.id == _items.c.replaced_by, newer.c.agent != _items.c.agent)


def _latest(agent: str, period: Period):
    """(id of the latest checked item, audits) per conversation of the agent."""
    stmt = (
        sa.select(sa.func.max(_items.c.id).label("id"), sa.func.count().label("audits"))
        .select_from(_items.join(_runs, _runs.c.id == _items.c.run_id))
        .where(_items.c.agent == agent, _items.c.status == "done", not_moved())
        .group_by(_items.c.conv_id)
    )
    if period.since:
        stmt = stmt.where(_runs.c.created_at >= period.since)
    if period.before:
        stmt = stmt.where(_runs.c.created_at < period.before)
    return stmt.subquery("latest")


def _counted_findings():
    return (
        sa.select(sa.func.count())
        .select_from(_findings)
        .where(_findings.c.item_id == _items.c.id, _findings.c.waived == 0)
        .scalar_subquery()
    )


def _latest_items(agent: str, period: Period):
    latest = _latest(agent, period)
    joined = _items.join(latest, latest.c.id == _items.c.id).join(
        _runs, _runs.c.id == _items.c.run_id
    )
    return latest, joined


def summary(db: Database, agent: str, period: Period) -> dict:
    """conversations, audits (all runs of them), mean score, conversations with
    findings, findings that count, agent turns and findings per 100 agent turns,
    over the latest audits."""
    latest, joined = _latest_items(agent, period)
    nfind = _counted_findings()
    stmt = sa.select(
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(latest.c.audits), 0),
        sa.func.avg(_items.c.score),
        sa.func.coalesce(sa.func.sum(sa.case((nfind > 0, 1), else_=0)), 0),
        sa.func.coalesce(sa.func.sum(nfind), 0),
        sa.func.coalesce(sa.func.sum(_items.c.agent_turns), 0),
    ).select_from(joined)
    with db.read() as conn:
        n, audits, mean, flagged, findings, turns = conn.execute(stmt).one()
    return {
        "conversations": int(n),
        "audits": int(audits),
        "mean_score": round(float(mean), 1) if mean is not None else None,
        "with_findings": int(flagged),
        "findings": int(findings),
        "agent_turns": int(turns),
        "findings_per_100_turns": round(100.0 * int(findings) / int(turns), 1) if turns else 0.0,
    }


def per_day(db: Database, agent: str, period: Period) -> list[tuple[str, int, float]]:
    """(day YYYY-MM-DD, conversations, sum of scores) by audit day, oldest first."""
    latest, joined = _latest_items(agent, period)
    day = sa.func.substr(_runs.c.created_at, 1, 10)
    stmt = (
        sa.select(day, sa.func.count(), sa.func.sum(_items.c.score))
        .select_from(joined)
        .group_by(day)
        .order_by(day)
    )
    with db.read() as conn:
        return [(d, int(n), float(s or 0)) for d, n, s in conn.execute(stmt)]


def habits(db: Database, agent: str, period: Period, limit: int) -> list[dict]:
    """The rules the agent trips most in the latest audits: rule, category, count
    (findings) and conversations, most frequent first."""
    latest = _latest(agent, period)
    n = sa.func.count()
    stmt = (
        sa.select(
            _findings.c.rule,
            sa.func.min(_findings.c.category).label("category"),
            n.label("count"),
            sa.func.count(sa.distinct(_findings.c.item_id)).label("conversations"),
        )
        .where(_findings.c.item_id.in_(sa.select(latest.c.id)), _findings.c.waived == 0)
        .group_by(_findings.c.rule)
        .order_by(n.desc(), _findings.c.rule)
        .limit(limit)
    )
    with db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def habit_examples(
    db: Database, agent: str, period: Period, rules: list[str], per_rule: int
) -> list[tuple[str, int, int]]:
    """(rule, item id, finding index) of the newest `per_rule` findings of each rule
    in the latest audits (one per conversation), newest first."""
    if not rules:
        return []
    latest = _latest(agent, period)
    # one example per conversation: the first finding of the rule in each item
    first = (
        sa.select(
            _findings.c.rule,
            _findings.c.item_id,
            sa.func.min(_findings.c.idx).label("idx"),
        )
        .where(
            _findings.c.item_id.in_(sa.select(latest.c.id)),
            _findings.c.waived == 0,
            _findings.c.rule.in_(rules),
        )
        .group_by(_findings.c.rule, _findings.c.item_id)
        .subquery("first")
    )
    rank = (
        sa.func.row_number()
        .over(partition_by=first.c.rule, order_by=first.c.item_id.desc())
        .label("rank")
    )
    ranked = sa.select(first.c.rule, first.c.item_id, first.c.idx, rank).subquery("ranked")
    stmt = (
        sa.select(ranked.c.rule, ranked.c.item_id, ranked.c.idx)
        .where(ranked.c.rank <= per_rule)
        .order_by(ranked.c.rule, ranked.c.rank)
    )
    with db.read() as conn:
        return [(r, int(i), int(x)) for r, i, x in conn.execute(stmt)]


_FINDING_AND_TURN = {
    "sqlite": sa.text(
        "SELECT json_extract(findings, '$[' || :n || ']') AS f, "
        "substr(json_extract(conversation, '$.turns[' || "
        "json_extract(findings, '$[' || :n || '].turn') || '].text'), 1, :clip) AS text "
        "FROM qa_items WHERE id = :item_id"
    ),
    "postgresql": sa.text(
        "SELECT CAST(CAST(findings AS json) -> CAST(:n AS integer) AS text) AS f, "
        "substr(CAST(conversation AS json) -> 'turns' -> "
        "CAST(CAST(findings AS json) -> CAST(:n AS integer) ->> 'turn' AS integer) ->> 'text', "
        "1, :clip) AS text FROM qa_items WHERE id = :item_id"
    ),
}


def finding_with_turn(db: Database, item_id: int, finding: int, clip: int) -> dict | None:
    """One finding of an item (decoded) with its turn's text (`clip` characters at
    most) as `turn_text`; None if there is none."""
    params = {"item_id": item_id, "n": int(finding), "clip": clip}
    with db.read() as conn:
        row = conn.execute(_FINDING_AND_TURN[db.dialect], params).first()
    if row is None or row.f is None:
        return None
    out = json.loads(row.f)
    if not isinstance(out, dict):
        return None
    out["turn_text"] = row.text or ""
    return out


def _list_filter(stmt, min_score, max_score, with_findings):
    if min_score is not None:
        stmt = stmt.where(_items.c.score >= min_score)
    if max_score is not None:
        stmt = stmt.where(_items.c.score <= max_score)
    if with_findings:
        stmt = stmt.where(_counted_findings() > 0)
    return stmt


def conversations(
    db: Database,
    agent: str,
    period: Period,
    *,
    min_score: float | None = None,
    max_score: float | None = None,
    with_findings: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> list[dict]:
    """The latest audit of each conversation, newest audit first, lowest score first:
    id, run_id, conv_id, score, turns, run_name, created_at, nfindings, audits."""
    latest, joined = _latest_items(agent, period)
    stmt = sa.select(
        _items.c.id,
        _items.c.run_id,
        _items.c.conv_id,
        _items.c.score,
        _items.c.turns,
        _runs.c.name.label("run_name"),
        _runs.c.created_at,
        _counted_findings().label("nfindings"),
        latest.c.audits,
    ).select_from(joined)
    stmt = _list_filter(stmt, min_score, max_score, with_findings)
    stmt = stmt.order_by(_runs.c.created_at.desc(), _items.c.score, _items.c.id)
    with db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt.limit(limit).offset(offset))]


def conversation_count(
    db: Database,
    agent: str,
    period: Period,
    *,
    min_score: float | None = None,
    max_score: float | None = None,
    with_findings: bool = False,
) -> int:
    _, joined = _latest_items(agent, period)
    stmt = sa.select(sa.func.count()).select_from(joined)
    stmt = _list_filter(stmt, min_score, max_score, with_findings)
    with db.read() as conn:
        return int(conn.execute(stmt).scalar_one())


# -- the team and one agent over time (/agents) ----------------------------------------


def _team_latest(period: Period):
    """(id of the latest checked item, agent) per agent and conversation in the period."""
    stmt = (
        sa.select(sa.func.max(_items.c.id).label("id"))
        .select_from(_items.join(_runs, _runs.c.id == _items.c.run_id))
        .where(_items.c.status == "done", not_moved())
        .group_by(_items.c.agent, _items.c.conv_id)
    )
    if period.since:
        stmt = stmt.where(_runs.c.created_at >= period.since)
    if period.before:
        stmt = stmt.where(_runs.c.created_at < period.before)
    return stmt.subquery("team_latest")


def team(db: Database, period: Period) -> list[dict]:
    """Per agent over the latest audit of each of their conversations in the period:
    agent, conversations, score_sum, agent_turns, findings (that count)."""
    latest = _team_latest(period)
    nfind = _counted_findings()
    stmt = (
        sa.select(
            _items.c.agent,
            sa.func.count().label("conversations"),
            sa.func.sum(_items.c.score).label("score_sum"),
            sa.func.coalesce(sa.func.sum(_items.c.agent_turns), 0).label("agent_turns"),
            sa.func.coalesce(sa.func.sum(nfind), 0).label("findings"),
        )
        .select_from(_items.join(latest, latest.c.id == _items.c.id))
        .group_by(_items.c.agent)
        .order_by(_items.c.agent)
    )
    with db.read() as conn:
        return [
            {
                "agent": r.agent or "",
                "conversations": int(r.conversations),
                "score_sum": float(r.score_sum or 0),
                "agent_turns": int(r.agent_turns),
                "findings": int(r.findings),
            }
            for r in conn.execute(stmt)
        ]


def per_day_detail(db: Database, agent: str, period: Period) -> list[dict]:
    """By audit day, oldest first: day, conversations, score_sum, agent_turns,
    findings (that count), over the agent's latest audits."""
    _, joined = _latest_items(agent, period)
    day = sa.func.substr(_runs.c.created_at, 1, 10)
    stmt = (
        sa.select(
            day.label("day"),
            sa.func.count().label("convs"),
            sa.func.sum(_items.c.score).label("total"),
            sa.func.coalesce(sa.func.sum(_items.c.agent_turns), 0).label("turns"),
            sa.func.coalesce(sa.func.sum(_counted_findings()), 0).label("nfind"),
        )
        .select_from(joined)
        .group_by(day)
        .order_by(day)
    )
    with db.read() as conn:
        return [
            {
                "day": r.day,
                "conversations": int(r.convs),
                "score_sum": float(r.total or 0),
                "agent_turns": int(r.turns),
                "findings": int(r.nfind),
            }
            for r in conn.execute(stmt)
        ]


def per_day_categories(db: Database, agent: str, period: Period) -> list[tuple[str, str, int]]:
    """(day, category, findings that count) over the agent's latest audits."""
    latest = _latest(agent, period)
    day = sa.func.substr(_runs.c.created_at, 1, 10)
    stmt = (
        sa.select(day, _findings.c.category, sa.func.count())
        .select_from(_findings.join(_runs, _runs.c.id == _findings.c.run_id))
        .where(_findings.c.item_id.in_(sa.select(latest.c.id)), _findings.c.waived == 0)
        .group_by(day, _findings.c.category)
        .order_by(day, _findings.c.category)
    )
    with db.read() as conn:
        return [(d, c or "", int(n)) for d, c, n in conn.execute(stmt)]


def audit_months(db: Database) -> list[str]:
    """The months (YYYY-MM) with checked audits, newest first."""
    month = sa.func.substr(_runs.c.created_at, 1, 7)
    stmt = (
        sa.select(month)
        .select_from(_runs)
        .where(_runs.c.checked > 0)
        .group_by(month)
        .order_by(month.desc())
        .limit(120)
    )
    with db.read() as conn:
        return [m for (m,) in conn.execute(stmt) if m]
