"""Review with comments (issue 12, item 4) and review dates agents can see (item 6).

A trainer submits an article (草稿 → 待审核); a reviewer (trainer or admin) approves it
(→ 已发布) or sends it back (→ 草稿) with a comment, which is required.  Every
transition is a save through kb/authoring.py with the version the reviewer saw (a
change made meanwhile is never approved unseen) and gets its own audit entry.  With
`forbid_self` (the instance setting REVIEW_FORBID_SELF_APPROVE, on by default) nobody
approves their own change: the last editor of the article's content (`last_editor`:
status changes alone do not count) cannot approve it.

已核实 / 待复核 (`verification`): a published article is 已核实 while its review-by
date has not passed; without a review-by date, for VERIFIED_DAYS after its last
save.  The date shown is that of the last save (for an approved article: the
approval).  Otherwise it is 待复核.  Drafts and articles in review have no mark.
"""

from __future__ import annotations

import datetime as dt

from storage import comments as repo

from .errors import Conflict, ValidationError
from .store import now_iso

COMMENT_MAX = 2000
VERIFIED_DAYS = 180
KIND_LABELS = {
    "comment": "评论",
    "submit": "提交审核",
    "send_back": "退回修改",
    "approve": "审核通过",
}


class SelfApproval(Conflict):
    """The instance forbids approving one's own change."""


def _comment_text(text) -> str:
    if text is None:
        return ""
    if not isinstance(text, str):
        raise ValidationError("评论应为文字", field="comment")
    text = text.replace("\r\n", "\n").strip()
    if len(text) > COMMENT_MAX:
        raise ValidationError(
            f"评论过长：最多 {COMMENT_MAX} 个字，现在 {len(text)} 个字", field="comment"
        )
    return text


def add_comment(store, article_id: str, who: str, text, *, kind: str = "comment") -> dict:
    """Add a comment to the article's thread (the article must exist)."""
    text = _comment_text(text)
    if kind == "comment" and not text:
        raise ValidationError("请填写评论内容", field="comment")
    version = store.get_meta_row(article_id)["version"]  # NotFound
    row = {"article_id": article_id, "version": version, "kind": kind, "body": text,
           "by": who, "at": now_iso()}  # fmt: skip
    row["id"] = repo.add(store.database, row)
    if kind == "comment":
        from .accounts import Accounts

        Accounts(store).audit(who, "article.comment", article_id, {"version": version})
    return row


def thread(store, article_id: str, limit: int = 200, offset: int = 0) -> list[dict]:
    """The article's comments, oldest first, each with its kind's label."""
    rows = repo.thread(store.database, article_id, limit, offset)
    for row in rows:
        row["kind_label"] = KIND_LABELS.get(row["kind"], row["kind"])
    return rows


def comment_count(store, article_id: str) -> int:
    return repo.count(store.database, article_id)


def _transition(
    kb, article_id, who, base_version, wanted_from, to, action, comment, kind, lint=None
):
    from .accounts import Accounts
    from .authoring import save_article

    art = kb.store.get(article_id)  # NotFound
    if art.status not in wanted_from:
        from .models import STATUS_LABELS

        raise Conflict(
            f"文章「{article_id}」当前为「{STATUS_LABELS.get(art.status, art.status)}」，"
            f"不能{KIND_LABELS[kind]}"
        )
    save_article(kb, article_id, {"status": to}, who, base_version=base_version, lint=lint)
    version = kb.store.get_meta_row(article_id)["version"]
    add_comment(kb.store, article_id, who, comment, kind=kind)
    Accounts(kb.store).audit(
        who, action, article_id, {"from": art.status, "to": to, "version": version,
                                  "comment": comment[:200]}
    )  # fmt: skip
    return version


def submit(kb, article_id: str, who: str, *, base_version: int, comment: str = "") -> int:
    """草稿 → 待审核; returns the new version."""
    comment = _comment_text(comment)
    return _transition(kb, article_id, who, base_version, ("draft",), "review",
                       "article.submit", comment, "submit")  # fmt: skip


def send_back(kb, article_id: str, who: str, *, base_version: int, comment) -> int:
    """待审核 → 草稿, with the reviewer's comment (required)."""
    comment = _comment_text(comment)
    if not comment:
        raise ValidationError("退回修改时请填写意见，说明需要修改的地方", field="comment")
    return _transition(kb, article_id, who, base_version, ("review",), "draft",
                       "article.send_back", comment, "send_back")  # fmt: skip


def approve(
    kb,
    article_id: str,
    who: str,
    *,
    base_version: int,
    comment: str = "",
    forbid_self: bool = True,
    lint=None,
) -> int:
    """待审核 → 已发布; refused (SelfApproval) for the last editor when `forbid_self`,
    and (LintBlocked) for a phrasing or norm article whose standard wordings have an
    error-level finding, unless `lint` (kb.phrasing_lint.PublishLint) has an override."""
    comment = _comment_text(comment)
    if forbid_self and kb.store.get(article_id).status == "review":  # else: the status says
        if last_editor(kb.store, article_id) == who:
            raise SelfApproval(
                "不能审核通过自己最后修改的文章：请另一位审核人审核（本实例禁止自审）"
            )
    return _transition(kb, article_id, who, base_version, ("review",), "published",
                       "article.approve", comment, "approve", lint)  # fmt: skip


def last_editor(store, article_id: str) -> str:
    """Who last changed the article's content: the newest revision that changed more
    than its status (submitting, sending back and approving change only the status)."""
    for row in store.revisions(article_id, 200):
        if set((row["changed"] or "").split(",")) - {"status", ""} or row["action"] == "create":
            return row["by"]
    return store.get_meta_row(article_id)["updated_by"]


def verification(status: str, review_by: str, updated_at: str, today: dt.date | None = None):
    """{"state": "verified" | "due", "label", "date"} for a published article, else None."""
    if status != "published":
        return None
    today = today or dt.datetime.now(dt.UTC).date()
    saved = (updated_at or "")[:10]
    if review_by:
        fresh = review_by >= today.isoformat()
    else:
        try:
            fresh = dt.date.fromisoformat(saved) >= today - dt.timedelta(days=VERIFIED_DAYS)
        except ValueError:
            fresh = False
    if fresh:
        return {"state": "verified", "label": f"已核实（{saved}）", "date": saved}
    return {"state": "due", "label": "待复核", "date": saved}


def verifications(store, ids, today: dt.date | None = None) -> dict[str, dict]:
    """The marks of the published articles among `ids`, by id (one query)."""
    out = {}
    for row in store.articles.rows_by_id(ids):
        mark = verification(row["status"] or "", row["review_by"] or "", row["updated_at"], today)
        if mark:
            out[row["id"]] = mark
    return out
