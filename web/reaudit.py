"""Re-audit a run with the current team rules and compare the two runs side by side
(coach/compare.py): POST /audits/<id>/reaudit starts the new run; GET
/audits/<id>/compare shows a re-audit against the run it repeats (or ?with=<id>)."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from coach import compare as cmp

from .auth import actor, requires
from .errors import ApiError
from .supervise import audits, rulebook, start_check

bp = Blueprint("reaudit", __name__)


@bp.post("/audits/<int:run_id>/reaudit")
@requires("coach.audit")
def reaudit(run_id: int):
    new = cmp.reaudit(audits(), run_id, by=actor(), rules_version=rulebook().version())
    start_check(new)
    return redirect(url_for("supervise.run", run_id=new))


@bp.get("/audits/<int:run_id>/compare")
@requires("coach.audit")
def compare(run_id: int):
    store = audits()
    other = request.args.get("with", type=int)
    if other is None:
        other = cmp.reaudit_of(store, run_id)
    if other is None:
        raise ApiError("该批次不是重新质检的结果，请用 ?with=批次编号 指定要对比的批次", 404)
    return render_template("audit_compare.html", view=cmp.compare(store, other, run_id))
