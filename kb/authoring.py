"""Saving an article: one path for the editor, `PUT /api/v1/articles/<id>` and any
other surface, with its rules (field types, required fields on create, ids unique
without regard to case) and its audit entries."""

from __future__ import annotations

from dataclasses import replace

from .diff import article_diff
from .errors import Conflict, StaleVersion, ValidationError
from .models import Article

__all__ = ["ARTICLE_FIELDS", "Conflict", "StaleVersion", "check_fields", "save_article"]
UNVERSIONED_RETRIES = 3  # a save without a version re-reads when another lands in between

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


def check_version(value) -> int:
    """The version a save states it was based on: an integer >= 0 (0: a new article)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError("字段 version 应为非负整数（文章的当前版本号，新文章为 0）")
    return value


def save_article(
    kb,
    article_id: str,
    fields: dict,
    who: str,
    *,
    create: bool = False,
    base_version: int | None = None,
    lint=None,
) -> str:
    """Create or update an article from fields (omitted ones keep their value); returns
    added / changed / unchanged.  With `create`, an existing id is refused.  An id that
    differs from a stored one only in case is refused too: exported files must not
    collide on any filesystem, and agents must not find two answers for one id.  The
    change goes to the audit log, and a status change (publishing above all) gets its
    own entry.

    `base_version`: the version the change was based on (0 for a new article).  The
    store compares it with the stored version inside its write transaction; a stale
    one raises StaleVersion, with the current article and the diff of the refused
    change against it in `details`.  None (API clients that send no version): the
    change is merged with the article as read here and written only if nobody saved
    in between (else read again), so omitted fields never come from a stale read.

    `lint` (a kb.phrasing_lint.PublishLint): the surface publishes through the phrasing
    lint: a save that publishes a phrasing or norm article whose standard wordings have
    an error-level finding raises LintBlocked unless the lint carries an override, which
    is then audit-logged with its reason and the findings."""
    from .accounts import Accounts

    check_fields(fields)
    if base_version is not None:
        base_version = check_version(base_version)
    article_id = (article_id or "").strip()
    if not article_id:
        raise ValidationError("请填写文章 ID", field="id")
    clash = kb.store.id_taken(article_id)
    if clash is not None and (create or clash != article_id):
        exc = Conflict(f"文章 ID「{clash}」已存在，请换一个")
        exc.field = "id"
        raise exc
    for attempt in range(UNVERSIONED_RETRIES):
        found = kb.store.find(article_id)
        before = found[0] if found else None
        read_version = found[1]["version"] if found else 0
        if before is None:
            if base_version:  # based on a version of an article deleted since
                raise StaleVersion(
                    f"文章「{article_id}」已被删除（你基于第 {base_version} 版修改），未保存",
                    current_version=0,
                    details={"based_on": base_version, "current": None, "diff": []},
                )
            missing = [k for k in ("title", "category", "body") if k not in fields]
            if missing:
                raise ValidationError(f"新文章缺少字段: {', '.join(missing)}")
            article = Article(id=article_id, **fields)
        else:
            article = replace(before, **fields)
        overridden = []
        if lint is not None and base_version in (None, read_version):  # else: stale
            overridden = lint.check(before, article)
        expected = read_version if base_version is None else base_version
        try:
            outcome = kb.save(article, by=who, expected_version=expected)
        except StaleVersion as exc:
            if base_version is None and attempt + 1 < UNVERSIONED_RETRIES:
                continue
            raise _explained(kb, exc, article) from None
        break
    if outcome != "unchanged":
        version = kb.store.get_meta_row(article_id)["version"]
        audit = Accounts(kb.store).audit
        action = "article.create" if before is None else "article.update"
        audit(who, action, article_id, {"version": version, "status": article.status})
        if lint is not None:
            lint.audit(audit, who, article_id, version, overridden)
        old_status = before.status if before else None
        if old_status != article.status and (before is not None or article.status == "published"):
            audit(
                who,
                "article.publish" if article.status == "published" else "article.status",
                article_id,
                {"from": old_status, "to": article.status, "version": version},
            )
    return outcome


def _explained(kb, exc: StaleVersion, mine: Article) -> StaleVersion:
    """The refused save's StaleVersion with what a trainer needs to redo it: the
    refused article (`mine`), its diff against the current version (`diff`: current →
    mine) and the change made meanwhile (`their_changes`: based-on → current, when
    that revision is kept)."""
    current = exc.details.get("current")
    based_on = exc.details.get("based_on") or 0
    exc.details["mine"] = mine
    exc.details["diff"] = article_diff(current, mine) if current is not None else []
    base = kb.store.revision(mine.id, based_on) if based_on and current is not None else None
    exc.details["their_changes"] = article_diff(base, current) if base is not None else []
    return exc
