"""The team's agents (/settings/agents, supervisors and admins): the sender names
agents have in exported chats, each optionally the alias of a user account
(core/team_agents.py).  Every upload adds them to the names typed on the form."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from core.team_agents import TeamAgentError
from kb.errors import NotFound

from .auth import accounts, actor, requires
from .supervise import team_agents

bp = Blueprint("team", __name__)
MAX_FIELD = 200


def _page(form: dict | None = None, errors: dict | None = None, status: int = 200):
    agent_accounts = [u.username for u in accounts().list() if "agent" in u.roles]
    return render_template(
        "team_agents.html",
        entries=team_agents().list(),
        accounts=agent_accounts,
        form=form or {"name": "", "username": ""},
        errors=errors or {},
    ), status


@bp.get("/settings/agents")
@requires("coach.audit")
def agents_page():
    return _page()


@bp.post("/settings/agents")
@requires("coach.audit")
def agent_add():
    form = {k: (request.form.get(k) or "")[: MAX_FIELD + 1] for k in ("name", "username")}
    try:
        row = team_agents().add(form["name"], form["username"], actor=actor())
    except TeamAgentError as exc:
        return _page(form, {exc.field: str(exc)}, 400)
    linked = f"（账号 {row['username']}）" if row["username"] else ""
    flash(f"已添加客服名称「{row['name']}」{linked}")
    return redirect(url_for("team.agents_page"))


@bp.post("/settings/agents/remove")
@requires("coach.audit")
def agent_remove():
    raw = request.form.get("id") or ""
    if not raw.isdigit():
        return _page(errors={"list": "请选择要删除的客服名称"}, status=400)
    try:
        row = team_agents().remove(int(raw), actor=actor())
    except NotFound as exc:
        return _page(errors={"list": str(exc)}, status=404)
    flash(f"已删除客服名称「{row['name']}」")
    return redirect(url_for("team.agents_page"))
