"""JSON API v1: search (articles and scripts), suggestions, pinned answers and articles."""

from __future__ import annotations

from flask import Blueprint, current_app, request, url_for
from flask_login import current_user

from kb import pins
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
        raise ApiError(f"参数 q 过长（最多 {max_chars} 个字符）", 400)
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
        raise ApiError(f"参数 q 过长（最多 {SUGGEST_MAX_CHARS} 个字符）", 400)
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
    body = {"ok": True, "article": article_payload(kb, _readable(kb, article_id))}
    user = getattr(current_user, "user", None)
    if user is not None:  # this user's 有用 / 没用 vote, for the search page's buttons
        body["article"]["my_feedback"] = feedback.my_vote(kb.store, article_id, user.id)
    return body


ARTICLE_BODY_MAX = 1024 * 1024


@bp.put("/articles/<article_id>")
@requires("article.edit")
def article_save(article_id: str):
    """Create or update an article ({"title", "category", "body", …}; omitted fields
    keep their value).  Saved with a revision; publishing and every other status
    change is written to the audit log."""
    from kb.authoring import save_article

    body = json_request(ARTICLE_BODY_MAX)
    if not isinstance(body, dict):
        raise ApiError("请求体应为 JSON 对象", 400)
    kb = get_kb()
    outcome = save_article(kb, article_id, body, actor())
    return {"ok": True, "outcome": outcome, "article": article_payload(kb, kb.get(article_id))}


@bp.post("/render")
@requires("article.edit")
def render_preview():
    """{"body"} → {"html"}: the editor's preview, sanitised exactly like the article page."""
    from kb.render import render_markdown

    body = json_request(ARTICLE_BODY_MAX)
    if not isinstance(body, dict) or not isinstance(body.get("body"), str):
        raise ApiError("字段 body 应为字符串", 400)
    return {"ok": True, "html": render_markdown(body["body"])}
