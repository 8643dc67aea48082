"""Agent pages: the search page (works without JavaScript too) and article view."""

from __future__ import annotations

from flask import Blueprint, render_template
from markupsafe import Markup

from kb.models import CATEGORIES, CATEGORY_LABELS

from . import get_kb
from .api import search_args
from .auth import requires
from .views import article_payload

bp = Blueprint("pages", __name__)


@bp.get("/")
@requires("search")
def index():
    args = search_args()
    result = None
    if args["q"]:
        result = get_kb().search(
            args["q"], via="web", category=args["category"], tag=args["tag"], limit=args["limit"]
        )
    return render_template(
        "search.html",
        args=args,
        result=result,
        categories=CATEGORIES,
        labels=CATEGORY_LABELS,
        Markup=Markup,
    )


@bp.get("/articles/<article_id>")
@requires("article.read")
def article(article_id: str):
    kb = get_kb()
    art = article_payload(kb, kb.get(article_id))
    return render_template(
        "article.html", art=art, html=Markup(art["html"]), revisions=kb.store.revisions(article_id)
    )
