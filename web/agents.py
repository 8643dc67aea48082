"""Agents over time, for supervisors: the team ranking for a month with each
agent's KPI figure (/agents), and one agent's figures per day, week or month with
a trend chart and their habits (/agents/<name>).  The figures come from
core/agent_trends.py; this module only reads the query string and renders."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from coach.scoring import KPI_RULE
from core.agent_trends import GRAINS, AgentTrends, parse_team_args

from . import get_kb
from .auth import requires

bp = Blueprint("agents", __name__)


def trends() -> AgentTrends:
    return AgentTrends(get_kb().store.database)


@bp.get("/agents")
@requires("coach.audit")
def team():
    t = trends()
    months = t.months()
    args, errors = parse_team_args(request.args, months)
    return render_template(
        "agents.html",
        agents=t.team(args["month"], sort=args["sort"], order=args["order"]),
        months=months,
        errors=errors,
        kpi_rule=KPI_RULE,
        **args,
    ), (400 if errors else 200)


@bp.get("/agents/<name>")
@requires("coach.audit")
def agent(name: str):
    name = name.strip()[:200]
    view, errors = trends().agent(name, request.args)
    return render_template(
        "agent.html", view=view, errors=errors, grains=GRAINS, kpi_rule=KPI_RULE
    ), (400 if errors else 200)
