"""JSON API v1: search (articles and scripts), suggestions, pinned answers and articles."""

from __future__ import annotations

from flask import Blueprint, current_app, request, url_for
from flask_login import current_user

from kb import pins
from kb.errors import KbError
from kb.models import CATEGORIES
from kb.suggest import suggester

from . import get_kb, services
from .auth import actor, requires
from .errors import ApiError, json_request
from .scripts import json_body
from .views import article_payload

bp = Blueprint("api", __name__, url_prefix="/api/v1")
SUGGEST_MAX_CHARS = 50


@bp.record_once
def _warm_suggest(state) -> None:
    suggester(state.app.extensions["kb"]).ready()  # first build in the background, now


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(f"参数 {name} 应为整数", 400) from None
    if not low <= value <= high:
        raise ApiError(f"参数 {name} 应在 {low} 到 {high} 之间", 400)
    return value


def search_args() -> dict:
    """Validated search parameters shared by the API and the page."""
    q = (request.args.get("q") or "").strip()
    max_chars = current_app.config["QUERY_MAX_CHARS"]
    if len(q) > max_chars:
        raise ApiError(f"搜索内容过长（最多 {max_chars} 个字）", 400)
    category = request.args.get("category") or None
    if category and category not in CATEGORIES:
        raise ApiError(f"参数 category 无效，应为 {' / '.join(CATEGORIES)} 之一", 400)
    tag = (request.args.get("tag") or "").strip() or None
    limit = _int_arg("limit", 10, 1, current_app.config["SEARCH_MAX_LIMIT"])
    return {"q": q, "category": category, "tag": tag, "limit": limit}


def answer_for(args: dict, via: str) -> dict:
    """The core's search answer for these arguments, with the web's links added."""
    user = getattr(current_user, "user", None)
    answer = services().search.answer(
        args["q"],
        user_id=user.id if user is not None else None,
        category=args["category"],
        tag=args["tag"],
        limit=args["limit"],
        via=via,
    )
    body = answer.to_dict()
    for n, hit in enumerate(body["hits"], 1):
        hit["url"] = hit_url(hit, args["q"], n)
    if answer.shortcut is not None:
        body["shortcut"] = body["hits"][0]  # the same dict, with its url
    return body


def hit_url(hit: dict, q: str = "", position: int | None = None) -> str:
    """Where a hit opens; an article's URL names the search and the position, so
    opening it is recorded (内容缺口: searches whose results nobody opened)."""
    if hit["doctype"] != "script":
        if q:
            return url_for("pages.article", article_id=hit["id"], q=q, pos=position)
        return url_for("pages.article", article_id=hit["id"])
    if hit.get("origin") == "personal" or not hit.get("scenario"):
        return ""  # a personal script, or one the library lost since it was indexed
    return url_for("scripts.page", script_id=hit["id"])


@bp.get("/search")
@requires("search")
def search():
    args = search_args()
    if not args["q"]:
        raise ApiError("缺少参数 q（搜索内容）", 400)
    return {"ok": True, **answer_for(args, "api")}


@bp.get("/suggest")
@requires("search")
def suggest():
    q = (request.args.get("q") or "").strip()
    if len(q) > SUGGEST_MAX_CHARS:
        raise ApiError(f"搜索内容过长（最多 {SUGGEST_MAX_CHARS} 个字）", 400)
    limit = _int_arg("limit", 8, 1, 20)
    return {"ok": True, "suggestions": suggester(get_kb()).suggest(q, limit) if q else []}


@bp.get("/pins")
@requires("article.edit")
def pin_list():
    return {"ok": True, "pins": pins.list_pins(get_kb().store)}


@bp.post("/pins")
@requires("article.edit")
def pin_add():
    data = json_body(("query", "article_id"))
    for name in ("query", "article_id"):
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ApiError(f"字段 {name} 应为非空字符串", 400)
    kb = get_kb()
    pin = pins.add_pin(kb.store, data["query"], data["article_id"].strip(), actor=actor())
    pins.attach(kb).invalidate()
    created = pin.pop("created")
    return {"ok": True, "pin": pin}, 201 if created else 200


@bp.delete("/pins/<int:pin_id>")
@requires("article.edit")
def pin_delete(pin_id: int):
    kb = get_kb()
    pin = pins.remove_pin(kb.store, pin_id, actor=actor())
    pins.attach(kb).invalidate()
    return {"ok": True, "pin": pin}


@bp.get("/articles/<article_id>")
@requires("article.read")
def article(article_id: str):
    from kb import feedback

    from .pages import _readable

    kb = get_kb()
    payload = article_payload(kb, _readable(kb, article_id))
    user = getattr(current_user, "user", None)
    if user is not None:  # this user's 有用 / 没用 vote, for the search page's buttons
        payload["my_feedback"] = feedback.my_vote(kb.store, article_id, user.id)
    return {"ok": True, "article": payload}, 200, {"ETag": f'"{payload["version"]}"'}


ARTICLE_BODY_MAX = 1024 * 1024


def _if_match() -> int | None:
    """The version an If-Match header names ("3", W/"3" or 3), None without one."""
    raw = (request.headers.get("If-Match") or "").strip()
    if not raw:
        return None
    value = raw[2:] if raw.startswith("W/") else raw
    value = value.strip('"')
    if not value.isascii() or not value.isdigit() or len(value) > 12:
        raise ApiError('请求头 If-Match 应为文章的版本号，例如 "3"（见 GET 返回的 ETag）', 400)
    return int(value)


def stale_payload(exc) -> dict:
    """What a 409 for a stale save carries: the current version and article, and the
    diffs (current → the refused change; based-on → current)."""
    current = exc.details.get("current")
    return {
        "ok": False,
        "error": exc.message,
        "status": 409,
        "current_version": exc.current_version,
        "based_on": exc.details.get("based_on"),
        "updated_by": exc.details.get("updated_by"),
        "updated_at": exc.details.get("updated_at"),
        "current": current.to_dict() if current is not None else None,
        "diff": exc.details.get("diff", []),
        "their_changes": exc.details.get("their_changes", []),
    }


@bp.put("/articles/<article_id>")
@requires("article.edit")
def article_save(article_id: str):
    """Create or update an article ({"title", "category", "body", …}; omitted fields
    keep their value).  Saved with a revision; publishing and every other status
    change is written to the audit log.

    The version the change is based on goes in "version" (0 to create) or in an
    If-Match header (the ETag of GET); when the stored version differs, nothing is
    saved and the answer is 409 with the current version, the current article and a
    diff.  A request with neither is still accepted, for the clients written before
    versions (it merges with the stored article atomically, but overwrites whatever
    was saved since the client read it): send the version.

    Publishing a phrasing or norm article whose standard wordings have an error-level
    finding is refused (409, with "findings") unless "lint_override" gives the reason
    (kb/phrasing_lint.py); the override goes to the audit log."""
    from kb.authoring import StaleVersion, save_article
    from kb.phrasing_lint import LintBlocked, PublishLint, override_reason

    from .coach import checker

    body = json_request(ARTICLE_BODY_MAX)
    if not isinstance(body, dict):
        raise ApiError("请求体应为 JSON 对象", 400)
    fields = dict(body)
    version = fields.pop("version", None)
    override = fields.pop("lint_override", None)
    try:
        override = override_reason(override is not None, override)
    except KbError as exc:
        raise ApiError(
            "字段 lint_override 应为忽略话术检查的理由（非空文字，最多 500 字）", 400
        ) from exc
    header = _if_match()
    if version is not None and header is not None and version != header:
        raise ApiError("字段 version 与请求头 If-Match 的版本号不一致", 400)
    kb = get_kb()
    try:
        outcome = save_article(
            kb,
            article_id,
            fields,
            actor(),
            base_version=header if version is None else version,
            lint=PublishLint(checker(), override),
        )
    except StaleVersion as exc:
        return stale_payload(exc), 409
    except LintBlocked as exc:
        return {"ok": False, "error": exc.message, "status": 409, "findings": exc.findings}, 409
    payload = article_payload(kb, kb.get(article_id))
    return (
        {"ok": True, "outcome": outcome, "article": payload},
        200,
        {"ETag": f'"{payload["version"]}"'},
    )


@bp.get("/article-id")
@requires("article.edit")
def propose_article_id():
    """{"id"}: a unique readable id for a new article from ?title= (pinyin) and ?category=."""
    from kb.slug import propose_id

    title = (request.args.get("title") or "").strip()
    if not title:
        raise ApiError("缺少参数 title（文章标题）", 400)
    if len(title) > 200:
        raise ApiError("参数 title 过长（最多 200 个字符）", 400)
    category = request.args.get("category") or ""
    if category and category not in CATEGORIES:
        raise ApiError(f"参数 category 无效，应为 {' / '.join(CATEGORIES)} 之一", 400)
    return {"ok": True, "id": propose_id(get_kb().store, title, category)}


@bp.post("/render")
@requires("article.edit")
def render_preview():
    """{"body"} → {"html"}: the editor's preview, sanitised exactly like the article page."""
    from kb.render import render_markdown

    body = json_request(ARTICLE_BODY_MAX)
    if not isinstance(body, dict) or not isinstance(body.get("body"), str):
        raise ApiError("字段 body 应为字符串", 400)
    return {"ok": True, "html": render_markdown(body["body"])}


LINT_BODY_MAX = 256 * 1024


@bp.post("/articles/lint")
@requires("article.edit")
def lint_article():
    """{"body", "category"?} → the coach's findings on the draft's standard wordings
    (kb/phrasing_lint.py): blockquote paragraphs, each checked as a mid-chat reply; each
    finding has its body line and column and the rule's message and suggestion.
    "blocking" counts the error-level ones that would stop publishing."""
    from kb.phrasing_lint import lint_body

    from .coach import checker

    body = json_request(LINT_BODY_MAX)
    if not isinstance(body, dict) or not isinstance(body.get("body"), str):
        raise ApiError("字段 body 应为字符串", 400)
    category = body.get("category", "phrasing")
    if category not in CATEGORIES:
        raise ApiError(f"字段 category 无效，应为 {' / '.join(CATEGORIES)} 之一", 400)
    return {"ok": True, **lint_body(checker(), body["body"], category).to_dict()}
