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
