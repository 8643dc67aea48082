"""Saving an article: one path for the editor, `PUT /api/v1/articles/<id>` and any
other surface, with its rules (field types, required fields on create, ids unique
without regard to case) and its audit entries."""

from __future__ import annotations

from dataclasses import replace

from .errors import KbError, NotFound, ValidationError
from .models import Article

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


class Conflict(KbError):
    """The change clashes with what is stored (an id taken, a stale version)."""

    status = 409


def check_fields(fields: dict) -> None:
    """Every field known and of its type; the error names the field."""
    for key, value in fields.items():
        kind = ARTICLE_FIELDS.get(key)
        if kind is None:
            raise ValidationError(f"未知字段 {key}，可用: {', '.join(ARTICLE_FIELDS)}")
        if not isinstance(value, kind) or (
            kind is list and not all(isinstance(v, str) for v in value)
        ):
            wanted = "字符串数组" if kind is list else "字符串"
            raise ValidationError(f"字段 {key} 应为{wanted}")


def save_article(kb, article_id: str, fields: dict, who: str, *, create: bool = False) -> str:
    """Create or update an article from fields (omitted ones keep their value); returns
    added / changed / unchanged.  With `create`, an existing id is refused.  An id that
    differs from a stored one only in case is refused too: exported files must not
    collide on any filesystem, and agents must not find two answers for one id.  The
    change goes to the audit log, and a status change (publishing above all) gets its
    own entry."""
    from .accounts import Accounts

    check_fields(fields)
    article_id = (article_id or "").strip()
    if not article_id:
        raise ValidationError("请填写文章 ID")
    clash = kb.store.id_taken(article_id)
    if clash is not None and (create or clash != article_id):
        raise Conflict(f"文章 ID「{clash}」已存在，请换一个")
    try:
        before = kb.get(article_id)
    except NotFound:
        before = None
        missing = [k for k in ("title", "category", "body") if k not in fields]
        if missing:
            raise ValidationError(f"新文章缺少字段: {', '.join(missing)}") from None
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
