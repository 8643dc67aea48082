"""Trainer pages 内容缺口 (/gaps) and 文章反馈 (/feedback); agents' 有用 / 没用 votes
(article page form and JSON API) and the record of which search result was opened."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from kb import feedback
from kb import gaps as kb_gaps
from kb.errors import KbError

from . import get_kb, services
from .auth import actor, requires
from .errors import ApiError
from .scripts import json_body

bp = Blueprint("gaps", __name__)
PER_PAGE = 50
SIMILAR_PREFILL = 5  # phrasings of a group put into a new article's similar questions


def _page(name: str) -> int:
    from .supervise import page_arg

    return page_arg(name)


def _user_id() -> int | None:
    user = getattr(current_user, "user", None)
    return user.id if user is not None else None


def new_article_url(group: dict) -> str:
    """The editor, prefilled: the group's question as the title and every phrasing
    as a similar question."""
    similar = [group["query"], *group["variants"]][:SIMILAR_PREFILL]
    return url_for("pages.editor", title=group["query"][:200], similar=similar)


@bp.get("/gaps")
@requires("article.edit")
def gaps_page():
    kb = get_kb()
    kb.flush_search_log()  # this process's last second of searches
    db = kb.database
    page, tpage = _page("page"), _page("tpage")
    searches = [g.to_dict() for g in kb_gaps.search_groups(db)]
    questions = [g.to_dict() for g in kb_gaps.question_groups(db)]
    for g in searches + questions:
        g["new_url"] = new_article_url(g)
    from core import gaps as core_gaps

    return render_template(
        "gaps.html",
        searches=searches[(page - 1) * PER_PAGE : page * PER_PAGE],
        search_count=len(searches),
        questions=questions[(tpage - 1) * PER_PAGE : tpage * PER_PAGE],
        question_count=len(questions),
        page=page,
        tpage=tpage,
        per_page=PER_PAGE,
        pending=core_gaps.pending(services()),
        days=kb_gaps.WINDOW_DAYS,
        window_rows=kb_gaps.WINDOW_ROWS,
        threshold=_threshold(),
    )


def _threshold() -> float:
    from core import gaps as core_gaps

    return float(current_app.config.get("GAP_SCORE_THRESHOLD") or core_gaps.ANSWER_THRESHOLD)


@bp.post("/gaps/dismiss")
@requires("article.edit")
def gaps_dismiss():
    kind = request.form.get("kind", "")
    kb_gaps.dismiss(get_kb().database, kind, request.form.get("key", ""), actor=actor())
    flash(f"已忽略「{request.form.get('query', '')[:50]}」：再有人搜索（或问到）时会重新出现")
    anchor = "#questions" if kind == "transcript" else "#searches"
    return redirect(url_for("gaps.gaps_page") + anchor)


@bp.post("/gaps/scan")
@requires("article.edit")
def gaps_scan():
    from core import gaps as core_gaps

    done = core_gaps.scan_transcripts(services(), threshold=_threshold())
    left = f"，还有 {done['left']} 个待分析" if done["left"] else ""
    flash(
        f"已分析 {done['scanned']} 个质检会话，发现 {done['questions']} 个未能回答的客户问题{left}"
    )
    return redirect(url_for("gaps.gaps_page") + "#questions")


@bp.get("/feedback")
@requires("article.edit")
def feedback_page():
    store = get_kb().store
    sort = request.args.get("sort", "useless_rate")
    if sort not in feedback.SORTS:
        sort = "useless_rate"
    page = _page("page")
    return render_template(
        "feedback.html",
        rows=feedback.summary(store, sort, PER_PAGE, (page - 1) * PER_PAGE),
        count=feedback.summary_count(store),
        sort=sort,
        page=page,
        per_page=PER_PAGE,
    )


@bp.post("/articles/<article_id>/feedback")
@requires("article.read")
def vote_form(article_id: str):
    """The article page's form: back to the article, or the page with the message
    next to the comment field."""
    from .pages import _readable, article

    kb = get_kb()
    _readable(kb, article_id)  # 404 for an article this user may not read
    try:
        feedback.vote(
            kb.store,
            article_id,
            _user_id(),
            actor(),
            request.form.get("useful", ""),
            request.form.get("comment", ""),
        )
    except KbError as exc:
        if exc.status == 404:
            raise ApiError(str(exc), 404) from None
        body = article(article_id, feedback_error=str(exc), comment=request.form.get("comment"))
        return body, exc.status
    flash("感谢反馈，已记录")
    return redirect(url_for("pages.article", article_id=article_id) + "#feedback")


@bp.post("/api/v1/articles/<article_id>/feedback")
@requires("article.read")
def vote_api(article_id: str):
    """{"useful": "useful" | "useless", "comment"?} → the article's counts and this vote."""
    from .pages import _readable

    data = json_body(("useful", "comment"))
    kb = get_kb()
    _readable(kb, article_id)  # 404 for an article this user may not read
    result = feedback.vote(
        kb.store, article_id, _user_id(), actor(), data.get("useful"), data.get("comment")
    )
    created = result.pop("created")
    result.pop("useless_rate", None)
    return {"ok": True, **result}, 201 if created else 200


@bp.post("/api/v1/search/opened")
@requires("search")
def opened():
    """The search page says which result the agent opened: {"q", "id", "doctype",
    "position"}; 204."""
    data = json_body(("q", "id", "doctype", "position"))
    q, doc_id, pos = data.get("q"), data.get("id"), data.get("position")
    if not isinstance(q, str) or not q.strip() or len(q) > 500:
        raise ApiError("字段 q 应为 1 到 500 个字符的字符串", 400)
    if not isinstance(doc_id, str | int) or not str(doc_id).strip():
        raise ApiError("字段 id 应为非空字符串", 400)
    if pos is not None and (isinstance(pos, bool) or not isinstance(pos, int)):
        raise ApiError("字段 position 应为整数", 400)
    kb_gaps.record_open(
        get_kb().database,
        q,
        str(doc_id),
        doctype=data.get("doctype") if data.get("doctype") == "script" else "article",
        position=pos,
        user_id=_user_id(),
        via="web",
    )
    return "", 204


def record_hit_open(article_id: str) -> None:
    """An article page reached from a search result's URL (?q=…&pos=N) records the open."""
    q = request.args.get("q", "")
    if not q.strip() or len(q) > 500:
        return
    kb_gaps.record_open(
        get_kb().database,
        q,
        article_id,
        position=request.args.get("pos", type=int),
        user_id=_user_id(),
        via="url",
    )


def article_feedback(art: dict, error: str = "", comment: str | None = None) -> dict:
    """What the article page shows of feedback: this user's vote and form (for a
    published article), and for trainers the counts and a page of comments."""
    store = get_kb().store
    user_id = _user_id()
    out: dict = {"error": error, "can_vote": art["status"] == "published" and user_id is not None}
    out["mine"] = feedback.my_vote(store, art["id"], user_id) if user_id is not None else None
    out["comment"] = comment if comment is not None else ((out["mine"] or {}).get("comment") or "")
    out["comment_max"] = feedback.COMMENT_MAX
    if current_user.can("article.edit"):
        page = _page("fpage")
        out["counts"] = feedback.counts(store, art["id"])
        out["comments"] = feedback.comments(store, art["id"], PER_PAGE, (page - 1) * PER_PAGE)
        out["comment_count"] = feedback.comment_count(store, art["id"])
        out["fpage"] = page
        out["per_page"] = PER_PAGE
    return out
