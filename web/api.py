"""JSON API v1: search (articles and scripts) and articles."""

from __future__ import annotations

from flask import Blueprint, current_app, request, url_for

from kb.models import CATEGORIES

from . import get_kb
from .auth import requires
from .errors import ApiError
from .scripts import hit_extras, search_extras
from .views import article_payload

bp = Blueprint("api", __name__, url_prefix="/api/v1")


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


@bp.get("/search")
@requires("search")
def search():
    args = search_args()
    if not args["q"]:
        raise ApiError("缺少参数 q（搜索内容）", 400)
    q = args.pop("q")
    result = get_kb().search(q, via="api", **args)
    hits = [
        {
            "id": h.id,
            "title": h.title,
            "title_html": h.title_html,
            "category": h.category,
            "tags": h.tags,
            "snippet": h.snippet,
            "score": h.score,
            "url": url_for("pages.article", article_id=h.id),
            **hit_extras(h),  # doctype; a script's id, url, shortcut and text
        }
        for h in result.hits
    ]
    hits, total, shortcut = search_extras(q, hits, result.total, limit=args["limit"])
    body = {"ok": True, "took_ms": round(result.took_ms, 2), "total": total, "hits": hits}
    if shortcut is not None:
        body["shortcut"] = shortcut  # the query was exactly a shortcut code such as /dd
    return body


@bp.get("/articles/<article_id>")
@requires("article.read")
def article(article_id: str):
    kb = get_kb()
    art = kb.get(article_id)
    return {"ok": True, "article": article_payload(kb, art)}
