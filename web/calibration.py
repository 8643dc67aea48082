"""Sampling and calibration pages for supervisors (core/calibration.py,
core/calibration_reviews.py): /calibration lists the samples and draws a new one;
/calibration/<id> is one supervisor's own review of a sample (a page per
conversation); /calibration/<id>/report compares the submitted reviews with each
other and with the checker.  This module reads forms and renders; the rules are in
the core."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from core.calibration import (
    MAX_PER_AGENT,
    RATINGS,
    VERDICTS,
    CalibrationError,
    figure,
    new_seed,
    parse_sample_form,
    percent,
)
from core.calibration_reviews import Calibration, FormErrors

from . import get_kb
from .auth import accounts, actor, requires
from .coach import checker
from .supervise import LIST_PER_PAGE, audits, page_arg

bp = Blueprint("calibration", __name__)
MAX_TURNS = 200  # turns of a conversation shown on its review page
FORM_FIELDS = ("name", "from", "to", "agents", "per_agent", "seed", "run")


def calibration() -> Calibration:
    return Calibration(get_kb().store.database, log=accounts().audit)


@bp.app_template_global()
def calibration_percent(value):
    return percent(value)


@bp.app_template_global()
def calibration_figure(value, digits: int = 2):
    return figure(value, digits)


def _render_samples(form: dict | None = None, errors: dict | None = None, status: int = 200):
    cal, page = calibration(), page_arg()
    if form is None:  # a link "draw again" fills the form with a sample's parameters
        form = {k: request.args.get(k, "")[:4000] for k in FORM_FIELDS}
        form["per_agent"] = form["per_agent"] or "5"
        form["seed"] = form["seed"] or str(new_seed())
    return render_template(
        "calibration.html",
        samples=cal.samples(LIST_PER_PAGE, (page - 1) * LIST_PER_PAGE),
        count=cal.count(),
        page=page,
        per_page=LIST_PER_PAGE,
        runs=audits().runs(LIST_PER_PAGE, 0),
        form=form,
        errors=errors or {},
        max_per_agent=MAX_PER_AGENT,
    ), status


@bp.get("/calibration")
@requires("coach.calibrate")
def samples():
    return _render_samples()


@bp.post("/calibration")
@requires("coach.calibrate")
def create():
    form = {k: (request.form.get(k) or "")[:4000] for k in FORM_FIELDS}
    params, errors = parse_sample_form(form)
    if errors:
        return _render_samples(form, errors, 400)
    try:
        sample_id = calibration().create(params, by=actor())
    except CalibrationError as exc:
        if exc.status == 404 or not exc.field:
            raise
        return _render_samples(form, {exc.field: exc.message}, exc.status)
    flash("已抽取校准样本：请逐个会话评审，评完后提交")
    return redirect(url_for("calibration.sample", sample_id=sample_id))


@bp.get("/calibration/<int:sample_id>")
@requires("coach.calibrate")
def sample(sample_id: int):
    cal, me = calibration(), actor()
    info = cal.sample(sample_id)
    answers, misses = cal.answers(sample_id, me)
    left = set(cal.unfinished(sample_id, me))
    return render_template(
        "calibration_sample.html",
        sample=info,
        items=cal.items(sample_id),
        answers=answers,
        misses=misses,
        left=left,
        review=cal.review(sample_id, me),
        reviews=cal.reviews(sample_id),
    )


def _render_item(sample_id: int, seq: int, form=None, errors=None, miss_form=None, status=200):
    cal, me = calibration(), actor()
    info = cal.sample(sample_id)
    item = cal.item(sample_id, seq)
    answers, misses = cal.answers(sample_id, me)
    mine = answers.get(item["id"], {"rating": None, "verdicts": {}})
    if form is None:
        form = {f"v{k}": v for k, v in mine["verdicts"].items()}
        form["rating"] = str(mine["rating"] or "")
    conv = audits().item_page(item["item_id"], limit=MAX_TURNS, offset=0)
    by_turn: dict[int, list] = {}
    for f in item["findings"]:
        by_turn.setdefault(f["turn"] if f["turn"] is not None else -1, []).append(f)
    shown = {t["n"] for t in conv["turn_list"]}
    general = [f for f in item["findings"] if f["turn"] not in shown]
    review = cal.review(sample_id, me)
    pack = checker().pack
    return render_template(
        "calibration_item.html",
        sample=info,
        item=item,
        turns=conv["turn_list"],
        by_turn=by_turn,
        general=general,
        more_turns=max(0, int(item["turns"] or 0) - len(conv["turn_list"])),
        form=form,
        errors=errors or {},
        miss_form=miss_form or {},
        misses=misses.get(item["id"], []),
        locked=review is not None and review["status"] != "open",
        review=review,
        verdicts=VERDICTS,
        ratings=RATINGS,
        rules=sorted(pack.rules, key=lambda r: (r.category, r.id)),
        next_seq=seq + 1 if seq < int(info["size"] or 0) else None,
        prev_seq=seq - 1 if seq > 1 else None,
    ), status


@bp.get("/calibration/<int:sample_id>/items/<int:seq>")
@requires("coach.calibrate")
def item(sample_id: int, seq: int):
    return _render_item(sample_id, seq)


@bp.post("/calibration/<int:sample_id>/items/<int:seq>")
@requires("coach.calibrate")
def save(sample_id: int, seq: int):
    cal = calibration()
    form = {k: (v or "")[:20] for k, v in request.form.items() if k != "csrf_token"}
    try:
        cal.save(sample_id, seq, actor(), request.form)
    except FormErrors as exc:
        return _render_item(sample_id, seq, form, exc.errors, status=400)
    left = [s for s in cal.unfinished(sample_id, actor()) if s != seq]
    after = [s for s in left if s > seq] or left
    if after:
        flash(f"已保存第 {seq} 个会话的评审")
        return redirect(url_for("calibration.item", sample_id=sample_id, seq=after[0]))
    flash("所有会话都已评完：确认无误后请提交评审")
    return redirect(url_for("calibration.sample", sample_id=sample_id))


@bp.post("/calibration/<int:sample_id>/items/<int:seq>/misses")
@requires("coach.calibrate")
def add_miss(sample_id: int, seq: int):
    miss_form = {k: (request.form.get(k) or "")[:400] for k in ("rule", "turn", "note")}
    rules = {r.id: r.category for r in checker().pack.rules}
    try:
        calibration().add_miss(sample_id, seq, actor(), request.form, rules)
    except FormErrors as exc:
        return _render_item(sample_id, seq, errors=exc.errors, miss_form=miss_form, status=400)
    flash("已记录漏检问题")
    return redirect(url_for("calibration.item", sample_id=sample_id, seq=seq) + "#misses")


@bp.post("/calibration/<int:sample_id>/items/<int:seq>/misses/<int:miss_id>/delete")
@requires("coach.calibrate")
def delete_miss(sample_id: int, seq: int, miss_id: int):
    calibration().delete_miss(sample_id, seq, actor(), miss_id)
    flash("已删除漏检问题")
    return redirect(url_for("calibration.item", sample_id=sample_id, seq=seq) + "#misses")


@bp.post("/calibration/<int:sample_id>/submit")
@requires("coach.calibrate")
def submit(sample_id: int):
    calibration().submit(sample_id, actor())
    flash("评审已提交：现在可以查看各主管之间及与自动质检的一致性")
    return redirect(url_for("calibration.report", sample_id=sample_id))


@bp.post("/calibration/<int:sample_id>/observe")
@requires("coach.calibrate")
def observe(sample_id: int):
    calibration().observe(sample_id, actor())
    return redirect(url_for("calibration.report", sample_id=sample_id))


@bp.get("/calibration/<int:sample_id>/report")
@requires("coach.calibrate")
def report(sample_id: int):
    cal = calibration()
    info = cal.sample(sample_id)
    if not cal.may_read_report(sample_id, actor()):
        return render_template(
            "calibration_report.html",
            sample=info,
            locked=True,
            review=cal.review(sample_id, actor()),
        )
    return render_template("calibration_report.html", locked=False, **cal.report(sample_id))
