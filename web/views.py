"""Helpers shared by pages and API: how an article is presented."""

from __future__ import annotations

from kb.models import CATEGORY_LABELS, STATUS_LABELS, Article
from kb.render import placeholders, render_markdown, standard_wordings, without_title_heading


def article_payload(kb, art: Article) -> dict:
    """An article with its sanitised HTML, copyable wordings and change stamps."""
    meta = kb.store.get_meta_row(art.id)
    wordings = standard_wordings(art.body)
    return {
        "id": art.id,
        "title": art.title,
        "category": art.category,
        "category_label": CATEGORY_LABELS.get(art.category, art.category),
        "tags": art.tags,
        "similar": art.similar,
        "owner": art.owner,
        "review_by": art.review_by,
        "status": art.status,
        "status_label": STATUS_LABELS.get(art.status, art.status),
        "body": art.body,
        "html": render_markdown(without_title_heading(art.body, art.title)),
        "wordings": wordings,
        "placeholders": placeholders("\n".join(wordings)),
        "version": meta["version"],
        "updated_at": meta["updated_at"],
        "updated_by": meta["updated_by"],
    }


ARTICLE_FIELDS = {
    "title": str,
    "category": str,
    "body": str,
    "tags": list,
    "similar": list,
    "owner": str,
    "review_by": str,
    "status": str,
}


def save_article(kb, article_id: str, fields: dict, who: str) -> str:
    """Create or update an article from editor/API fields (omitted ones keep their
    value); returns added/changed/unchanged.  The change goes to the audit log, and a
    status change (publishing above all) gets its own entry.  Bad fields raise
    ApiError / ValidationError naming the field."""
    from dataclasses import replace

    from kb.accounts import Accounts
    from kb.errors import NotFound

    from .errors import ApiError

    for key, value in fields.items():
        kind = ARTICLE_FIELDS.get(key)
        if kind is None:
            raise ApiError(f"未知字段 {key}，可用: {', '.join(ARTICLE_FIELDS)}", 400)
        if not isinstance(value, kind) or (
            kind is list and not all(isinstance(v, str) for v in value)
        ):
            wanted = "字符串数组" if kind is list else "字符串"
            raise ApiError(f"字段 {key} 应为{wanted}", 400)
    try:
        before = kb.get(article_id)
    except NotFound:
        before = None
        missing = [k for k in ("title", "category", "body") if k not in fields]
        if missing:
            raise ApiError(f"新文章缺少字段: {', '.join(missing)}", 400) from None
        article = Article(id=article_id, **fields)
    else:
        article = replace(before, **fields)
    outcome = kb.save(article, by=who)
    if outcome != "unchanged":
        version = kb.store.get_meta_row(article_id)["version"]
        audit = Accounts(kb.store).audit
        action = "article.create" if before is None else "article.update"
        audit(who, action, article_id, {"version": version, "status": article.status})
        old_status = before.status if before else None
        if old_status != article.status and (before is not None or article.status == "published"):
            audit(
                who,
                "article.publish" if article.status == "published" else "article.status",
                article_id,
                {"from": old_status, "to": article.status, "version": version},
            )
    return outcome
