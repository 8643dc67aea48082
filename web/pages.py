"""Agent pages: the search page (works without JavaScript too) and article view."""

from __future__ import annotations

from flask import Blueprint, render_template
from markupsafe import Markup

from kb.models import CATEGORIES, CATEGORY_LABELS

from . import get_kb
from .api import answer_for, search_args
from .auth import requires
from .supervise import LIST_PER_PAGE, page_arg
from .views import article_payload

bp = Blueprint("pages", __name__)


@bp.get("/")
@requires("search")
def index():
    args = search_args()
    answer = answer_for(args, "web") if args["q"] else None
    return render_template(
        "search.html",
        args=args,
        result=answer,
        categories=CATEGORIES,
        labels=CATEGORY_LABELS,
        Markup=Markup,
    )


def _readable(kb, article_id: str):
    """The article, if this user may read it: drafts, articles in review and archived
    ones only for those who edit (agents see what search shows them)."""
    from flask_login import current_user

    from .errors import ApiError

    art = kb.get(article_id)
    if art.status != "published" and not current_user.can("article.edit"):
        raise ApiError(f"文章「{article_id}」不存在", 404)
    return art


@bp.get("/articles")
@requires("article.edit")
def articles():
    """文章管理: every article, filtered, searched and paged, with counts per status;
    drafts and archived ones included (only those who edit articles come here)."""
    from flask import request
    from flask_login import current_user

    from kb.catalog import ORDERS, REVIEW_FILTERS, ArticleFilter, list_articles
    from kb.errors import KbError
    from kb.models import STATUS_LABELS

    args = {k: (request.args.get(k) or "").strip() for k in ArticleFilter.__dataclass_fields__}
    args["order"] = args["order"] or "updated"
    mine = request.args.get("mine") == "1"
    args["mine"] = current_user.username if mine else ""
    for_me = request.args.get("for_me") == "1"
    args["not_by"] = current_user.username if for_me else ""
    flt = ArticleFilter(**args)
    page = page_arg()
    error, status = None, 200
    try:
        listing = list_articles(get_kb().store, flt, page=page, per_page=LIST_PER_PAGE)
    except KbError as exc:
        error, status = str(exc), exc.status
        listing = list_articles(get_kb().store, ArticleFilter(), page=1, per_page=LIST_PER_PAGE)
    return render_template(
        "articles.html",
        listing=listing,
        flt=flt,
        mine=mine,
        for_me=for_me,
        page=page,
        per_page=LIST_PER_PAGE,
        error=error,
        keep={
            k: v
            for k, v in args.items()
            if v and k not in ("status", "mine", "not_by") and (k, v) != ("order", "updated")
        },
        statuses=STATUS_LABELS,
        categories=CATEGORIES,
        labels=CATEGORY_LABELS,
        reviews=REVIEW_FILTERS,
        orders=ORDERS,
    ), status


@bp.get("/articles/<article_id>")
@requires("article.read")
def article(
    article_id: str,
    feedback_error: str = "",
    comment: str | None = None,
    review_error: str = "",
    review_field: str = "",
    review_comment: str = "",
):
    from flask import request
    from flask_login import current_user

    from kb import review
    from kb.phrasing_lint import applies_to as lint_applies
    from kb.phrasing_lint import lint_body

    from .gaps import article_feedback, record_hit_open
    from .review import forbid_self_approve as _forbid_self_approve

    kb = get_kb()
    art = article_payload(kb, _readable(kb, article_id))
    if request.method == "GET" and not (request.args.get("rpage") or request.args.get("fpage")):
        record_hit_open(article_id)  # reached from a search result's URL (not its pager)
    page = page_arg("rpage")
    lint = None
    can_review = current_user.can("article.review")
    if can_review and art["status"] == "review" and lint_applies(art["category"]):
        from .coach import checker

        lint = lint_body(checker(), art["body"], art["category"])
    return render_template(
        "article.html",
        art=art,
        html=Markup(art["html"]),
        revisions=kb.store.revisions(article_id, LIST_PER_PAGE, (page - 1) * LIST_PER_PAGE),
        revision_count=kb.store.revision_count(article_id),
        rpage=page,
        per_page=LIST_PER_PAGE,
        feedback=article_feedback(art, feedback_error, comment),
        verified=review.verification(art["status"], art["review_by"], art["updated_at"]),
        review={
            "comments": review.thread(kb.store, article_id),
            "error": review_error,
            "field": review_field,
            "comment": review_comment,
            "can_review": can_review,
            # REVIEW_FORBID_SELF_APPROVE: the last editor's approval would be refused
            "own_change": _forbid_self_approve() and art.get("updated_by") == current_user.username,
            "lint": lint,
            "override": {
                "checked": request.form.get("lint_override") == "1",
                "reason": request.form.get("lint_reason", "")[:2000],
            },
        }
        if current_user.can("article.edit")
        else None,
    )


@bp.route("/pins", methods=["GET", "POST"])
@requires("article.edit")
def pins_page():
    """Trainers pin an article to a query (and its variants): it comes first, marked."""
    from flask import flash, redirect, request, url_for

    from kb import pins
    from kb.errors import KbError

    from .auth import actor

    kb = get_kb()
    error, status = None, 200
    form = {"query": request.args.get("query", ""), "article_id": request.args.get("article", "")}
    if request.method == "POST":
        form = {k: (request.form.get(k) or "").strip() for k in ("query", "article_id")}
        try:
            pin = pins.add_pin(kb.store, form["query"], form["article_id"], actor=actor())
        except KbError as exc:
            error, status = str(exc), exc.status
        else:
            pins.attach(kb).invalidate()
            flash(f"已将「{pin['title']}」置顶到查询「{pin['query']}」")
            return redirect(url_for("pages.pins_page"))
    preview = None
    if form["query"]:
        preview = kb.search(form["query"], via="pins", log=False, limit=5)
    page = page_arg()
    return render_template(
        "pins.html",
        pins=pins.list_pins(kb.store, LIST_PER_PAGE, (page - 1) * LIST_PER_PAGE),
        pin_count=pins.pin_count(kb.store),
        unpublished=pins.unpublished_count(kb.store),
        page=page,
        per_page=LIST_PER_PAGE,
        form=form,
        error=error,
        preview=preview,
    ), status


@bp.post("/pins/<int:pin_id>/delete")
@requires("article.edit")
def pin_delete_page(pin_id: int):
    from flask import flash, redirect, url_for

    from kb import pins

    from .auth import actor

    kb = get_kb()
    pin = pins.remove_pin(kb.store, pin_id, actor=actor())
    pins.attach(kb).invalidate()
    flash(f"已取消置顶：「{pin['query']}」→「{pin['title'] or pin['article_id']}」")
    return redirect(url_for("pages.pins_page"))


def _editor_fields(form) -> dict:
    """Editor form → article fields (lists split by line or comma)."""
    return {
        "title": form.get("title", "").strip(),
        "category": form.get("category", ""),
        "status": form.get("status", "draft"),
        "owner": form.get("owner", "").strip(),
        "review_by": form.get("review_by", "").strip(),
        "tags": [
            t.strip() for t in form.get("tags", "").replace("，", ",").split(",") if t.strip()
        ],
        "similar": [s.strip() for s in form.get("similar", "").splitlines() if s.strip()],
        "body": form.get("body", "").replace("\r\n", "\n"),
    }


def _form_version(raw: str | None) -> int:
    """The version an editor form was opened at (a hidden field)."""
    from kb.errors import ValidationError

    value = (raw or "").strip()
    if not value.isascii() or not value.isdigit() or len(value) > 12:
        raise ValidationError("表单缺少有效的版本号：请重新打开编辑页再修改", field="version")
    return int(value)


def _conflict_view(exc) -> dict:
    """What the editor shows for a refused stale save."""
    wrap = [{**d, "html": Markup(d["html"])} for d in exc.details.get("diff", [])]
    theirs = [{**d, "html": Markup(d["html"])} for d in exc.details.get("their_changes", [])]
    return {
        "current_version": exc.current_version,
        "based_on": exc.details.get("based_on"),
        "updated_by": exc.details.get("updated_by"),
        "updated_at": exc.details.get("updated_at") or "",
        "diff": wrap,
        "their_changes": theirs,
    }


@bp.route("/editor", methods=["GET", "POST"], defaults={"article_id": None})
@bp.route("/editor/<article_id>", methods=["GET", "POST"])
@requires("article.edit")
def editor(article_id: str | None):
    """Trainers write and revise articles: Markdown with a sanitised preview; every
    save is a revision, and publishing is a status change the audit log records.

    The form carries the version it was opened at: a save based on a version that is
    no longer current is refused (409) with a diff of the trainer's text against the
    current version, and "re-apply" puts their text on top of the current version
    for them to check and save.  A new article left without an id gets one made
    from its title (kb/slug.py)."""
    from flask import flash, redirect, request, url_for

    from kb.authoring import ARTICLE_FIELDS, StaleVersion, save_article
    from kb.errors import KbError, NotFound, ValidationError
    from kb.models import STATUS_LABELS
    from kb.phrasing_lint import PublishLint, lint_body, override_reason
    from kb.render import render_markdown
    from kb.review import thread
    from kb.slug import propose_id

    from .auth import actor
    from .coach import checker

    kb = get_kb()
    new = article_id is None
    error, field, status, notice, conflict = None, "", 200, None, None
    override = {"checked": False, "reason": ""}
    if request.method == "POST":
        fields = _editor_fields(request.form)
        override = {
            "checked": request.form.get("lint_override") == "1",
            "reason": request.form.get("lint_reason", "")[:2000],
        }
        target = (request.form.get("id") or "").strip() if new else article_id
        action = request.form.get("action")
        version = 0
        try:
            version = _form_version(request.form.get("version", "0" if new else None))
            if action == "reapply":
                version = _form_version(request.form.get("rebase_to"))
                notice = f"已把你的内容放到当前第 {version} 版之上：请检查后再保存。"
            elif action != "preview":
                if new and not target:
                    if not fields["title"]:
                        raise ValidationError(
                            "请填写标题（文章 ID 可留空，将按标题生成）", field="title"
                        )
                    target = propose_id(kb.store, fields["title"], fields["category"])
                lint = PublishLint(checker(), override_reason(**override))
                outcome = save_article(
                    kb, target, fields, actor(), create=new, base_version=version, lint=lint
                )
                flash("没有改动" if outcome == "unchanged" else "已保存")
                return redirect(url_for("pages.article", article_id=target))
        except StaleVersion as exc:
            error, status = exc.message, 409
            if new:
                field = "id"
            else:
                conflict = _conflict_view(exc)
        except KbError as exc:
            error, field, status = str(exc), exc.field, exc.status
        art = {"id": target, **fields, "version": version}
    elif new:
        art = {"id": "", "title": "", "category": "product", "status": "draft", "owner": "",
               "review_by": "", "tags": [], "similar": [], "body": "", "version": 0}  # fmt: skip
        # prefilled from a link (内容缺口: a question agents or customers asked)
        art["title"] = request.args.get("title", "").strip()[:200]
        art["similar"] = [
            s.strip()[:200] for s in request.args.getlist("similar")[:20] if s.strip()
        ]
    else:
        found = kb.store.find(article_id)
        if found is None:
            raise NotFound(f"文章「{article_id}」不存在")
        a, meta = found
        art = {"id": a.id, **{k: getattr(a, k) for k in ARTICLE_FIELDS}, "version": meta["version"]}
    return render_template(
        "editor.html",
        art=art,
        new=new,
        lint=lint_body(checker(), art["body"], art["category"]),
        override=override,
        error=error,
        field=field,
        notice=notice,
        conflict=conflict,
        comments=[] if new else thread(kb.store, article_id),
        preview=Markup(render_markdown(art["body"])),
        categories=CATEGORIES,
        labels=CATEGORY_LABELS,
        statuses=STATUS_LABELS,
    ), status
