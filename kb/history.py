"""Article history (issue 12, item 5): any kept revision as agents saw it, the diff
between two revisions (characters and words, front-matter fields included), and
restoring an old revision as a new one through the one save path (so a restore based
on a version that is no longer current is refused like any stale save)."""

from __future__ import annotations

from dataclasses import asdict

from .diff import article_diff
from .errors import NotFound, ValidationError
from .models import Article

# what a restore brings back: the content, never the status (a restored text goes
# through review again when it is not published; a published article stays published)
RESTORED_FIELDS = ("title", "category", "body", "tags", "similar", "owner", "review_by")


def revision(store, article_id: str, version: int) -> Article:
    """The article as revision `version` left it (NotFound when never kept)."""
    art = store.revision(article_id, version)
    if art is None:
        raise NotFound(f"文章「{article_id}」没有第 {version} 版")
    return art


def saved_by(store, article_id: str, version: int) -> dict:
    """Who saved revision `version` and when: {"by", "at", "action"} ({} when not kept)."""
    row = store.articles.revision(article_id, version)
    return {k: row[k] for k in ("by", "at", "action")} if row else {}


def parse_version(raw, name: str = "版本") -> int:
    """A version number given as text (a query or form field): 1 or more."""
    value = str(raw if raw is not None else "").strip()
    if not value.isascii() or not value.isdigit() or len(value) > 9 or int(value) < 1:
        raise ValidationError(f"{name}应为正整数（第几版）", field="version")
    return int(value)


def compare(store, article_id: str, old: int, new: int) -> list[dict]:
    """The fields that differ from revision `old` to revision `new`:
    [{"field", "label", "ops", "html"}] (kb/diff.py)."""
    return article_diff(revision(store, article_id, old), revision(store, article_id, new))


def restore(kb, article_id: str, version: int, who: str, *, base_version: int, lint=None) -> int:
    """Save revision `version`'s content as a new version of the article (its status
    kept as it is now); `base_version`: the current version the restore was asked
    from (StaleVersion when another save landed since).  Returns the new version
    (the current one when nothing differs).  `lint` (kb.phrasing_lint.PublishLint):
    restoring old wording into a published phrasing or norm article passes the phrasing
    lint like any other publishing."""
    from .accounts import Accounts
    from .authoring import save_article

    old = revision(kb.store, article_id, version)
    fields = {k: v for k, v in asdict(old).items() if k in RESTORED_FIELDS}
    outcome = save_article(kb, article_id, fields, who, base_version=base_version, lint=lint)
    now = kb.store.get_meta_row(article_id)["version"]
    if outcome != "unchanged":
        Accounts(kb.store).audit(
            who, "article.restore", article_id, {"from_version": version, "version": now}
        )
    return now
