"""Trainers' history and review pages: a revision as agents saw it, the diff between
two revisions, restore; submit / approve / send back with comments; the team rule
pack's diff between versions and rollback.  The rules live in kb/history.py,
kb/review.py and coach/rulebook.py; this module only translates HTTP."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from markupsafe import Markup

from kb import history, review
from kb.errors import KbError, NotFound, StaleVersion, ValidationError
from kb.models import CATEGORY_LABELS, STATUS_LABELS

from . import get_kb
from .auth import actor, requires

bp = Blueprint("review", __name__)


def forbid_self_approve() -> bool:
    """The instance setting REVIEW_FORBID_SELF_APPROVE (on unless set false)."""
    value = current_app.config.get("REVIEW_FORBID_SELF_APPROVE", True)
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off", "")
    return bool(value)


def _marked(diffs: list[dict]) -> list[dict]:
    return [{**d, "html": Markup(d["html"])} for d in diffs]


def _form_version(name: str = "version") -> int:
    """The article version a form was opened at (a hidden field)."""
    value = (request.form.get(name) or "").strip()
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise ValidationError("表单缺少有效的版本号：请重新打开页面再操作", field="version")
    return int(value)


# -- history -----------------------------------------------------------------------


@bp.get("/articles/<article_id>/revision")
@requires("article.edit")
def revision(article_id: str):
    """One kept revision (?v=N), rendered as the article page renders it."""
    return _revision_page(article_id, history.parse_version(request.args.get("v")))


def _revision_page(
    article_id: str, version: int, error: str = "", status: int = 200, field: str = ""
):
    from kb.render import render_markdown, without_title_heading

    kb = get_kb()
    art = history.revision(kb.store, article_id, version)
    found = kb.store.find(article_id)
    return render_template(
        "article_revision.html",
        art=art,
        version=version,
        row=history.saved_by(kb.store, article_id, version),
        current=found[1]["version"] if found else 0,
        html=Markup(render_markdown(without_title_heading(art.body, art.title))),
        category_label=CATEGORY_LABELS.get(art.category, art.category),
        status_label=STATUS_LABELS.get(art.status, art.status),
        error=error,
        field=field,
        override={
            "checked": request.form.get("lint_override") == "1",
            "reason": request.form.get("lint_reason", "")[:2000],
        },
    ), status


@bp.get("/articles/<article_id>/diff")
@requires("article.edit")
def diff(article_id: str):
    """The change from revision ?from=A to revision ?to=B (default: the current one)."""
    kb = get_kb()
    found = kb.store.find(article_id)
    current = found[1]["version"] if found else 0
    error, status, diffs = "", 200, []
    old = request.args.get("from") or ""
    new = request.args.get("to") or str(current)
    try:
        a = history.parse_version(old, "起始版本")
        b = history.parse_version(new, "目标版本")
        diffs = history.compare(kb.store, article_id, a, b)
    except KbError as exc:
        error, status = str(exc), exc.status
        if isinstance(exc, NotFound) and not kb.store.revision_count(article_id):
            raise
    return render_template(
        "article_diff.html",
        article_id=article_id,
        title=found[0].title if found else article_id,
        old=old,
        new=new,
        current=current,
        diffs=_marked(diffs),
        error=error,
    ), status


@bp.post("/articles/<article_id>/restore")
@requires("article.edit")
def restore(article_id: str):
    """Revision `from_version` saved again as a new version (based on `version`); old
    wording restored into a published phrasing or norm article passes the phrasing lint
    (an error-level finding needs the override checkbox and a reason)."""
    from kb.phrasing_lint import PublishLint, override_reason

    from .coach import checker

    kb = get_kb()
    try:
        old = history.parse_version(request.form.get("from_version"))
    except KbError as exc:
        return _article_with(article_id, str(exc), "version", exc.status)
    try:
        override = override_reason(
            request.form.get("lint_override") == "1", request.form.get("lint_reason", "")
        )
        now = history.restore(
            kb, article_id, old, actor(), base_version=_form_version(),
            lint=PublishLint(checker(), override),
        )  # fmt: skip
    except NotFound:
        raise
    except KbError as exc:
        return _revision_page(article_id, old, str(exc), exc.status, exc.field)
    flash(f"已把第 {old} 版恢复为第 {now} 版")
    return redirect(url_for("pages.article", article_id=article_id) + "#history")


# -- review ------------------------------------------------------------------------


def _article_with(article_id: str, error: str, field: str, status: int):
    """The article page again, with the message next to the review form's field."""
    from .pages import article

    body = article(
        article_id,
        review_error=error,
        review_field=field or "comment",
        review_comment=request.form.get("comment", ""),
    )
    return body, status


def _decide(article_id: str, step):
    kb = get_kb()
    try:
        kb.store.get(article_id)  # NotFound: 404 like any unknown article
        step(kb, article_id, _form_version())
    except NotFound:
        raise
    except KbError as exc:
        return _article_with(article_id, str(exc), exc.field, exc.status)
    return redirect(url_for("pages.article", article_id=article_id) + "#review")


@bp.post("/articles/<article_id>/submit")
@requires("article.edit")
def submit(article_id: str):
    def step(kb, aid, base):
        review.submit(kb, aid, actor(), base_version=base, comment=request.form.get("comment"))
        flash("已提交审核")

    return _decide(article_id, step)


@bp.post("/articles/<article_id>/approve")
@requires("article.review")
def approve(article_id: str):
    """Approve and publish; a phrasing or norm article whose standard wordings have an
    error-level finding needs the override checkbox and a reason (kb/phrasing_lint.py)."""
    from kb.phrasing_lint import PublishLint, override_reason

    from .coach import checker

    def step(kb, aid, base):
        override = override_reason(
            request.form.get("lint_override") == "1", request.form.get("lint_reason", "")
        )
        review.approve(
            kb, aid, actor(), base_version=base, comment=request.form.get("comment") or "",
            forbid_self=forbid_self_approve(), lint=PublishLint(checker(), override),
        )  # fmt: skip
        flash("已审核通过并发布")

    return _decide(article_id, step)


@bp.post("/articles/<article_id>/send-back")
@requires("article.review")
def send_back(article_id: str):
    def step(kb, aid, base):
        review.send_back(kb, aid, actor(), base_version=base, comment=request.form.get("comment"))
        flash("已退回修改")

    return _decide(article_id, step)


@bp.post("/articles/<article_id>/comments")
@requires("article.edit")
def comment(article_id: str):
    kb = get_kb()
    try:
        review.add_comment(kb.store, article_id, actor(), request.form.get("comment"))
    except NotFound:
        raise
    except KbError as exc:
        return _article_with(article_id, str(exc), "comment", exc.status)
    flash("评论已发表")
    return redirect(url_for("pages.article", article_id=article_id) + "#review")


# -- the team rule pack --------------------------------------------------------------


@bp.get("/rules/diff")
@requires("rules.edit")
def rules_diff():
    """The change from rule-pack version ?from=A to ?to=B (0: the default pack alone)."""
    from .supervise import rulebook

    book = rulebook()
    current = book.version()
    old, new = request.args.get("from") or "", request.args.get("to") or str(current)
    error, status, diffs = "", 200, []
    try:
        a, b = (_rules_version(v) for v in (old, new))
        diffs = book.diff(a, b)
    except KbError as exc:
        error, status = str(exc), exc.status
    return render_template(
        "rules_diff.html", old=old, new=new, current=current, diffs=_marked(diffs), error=error
    ), status


def _rules_version(raw: str) -> int:
    value = (raw or "").strip()
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise ValidationError("版本应为数字（0 为默认规则包）", field="version")
    return int(value)


@bp.post("/rules/rollback")
@requires("rules.edit")
def rules_rollback():
    """A new rule-pack version equal to version `to` (based on `version`)."""
    from coach.rules import RuleError

    from .auth import accounts
    from .supervise import rulebook

    book = rulebook()
    try:
        target = _rules_version(request.form.get("to"))
        base = _rules_version(request.form.get("version"))
        version = book.rollback(target, by=actor(), base_version=base)
    except StaleVersion as exc:
        flash(exc.message)
        return redirect(url_for("supervise.rules") + "#history")
    except RuleError as exc:
        flash("无法回滚：该版本在当前默认规则包上无法加载：" + "；".join(exc.problems[:3]))
        return redirect(url_for("supervise.rules") + "#history")
    except KbError as exc:
        flash(str(exc))
        return redirect(url_for("supervise.rules") + "#history")
    if version is None:
        flash(f"当前规则与 v{target} 相同，未保存新版本")
    else:
        accounts().audit(actor(), "rules.rollback", f"v{version}", {"to": target})
        current_app.extensions.pop("coach.rules_seen", None)
        flash(f"已回滚：v{version} 与 v{target} 相同，之后的质检使用它")
    return redirect(url_for("supervise.rules") + "#history")
