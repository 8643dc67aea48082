"""History, review and review dates (issue 12, items 5, 4 and 6): any revision as
agents saw it, diffs between revisions and rule-pack versions, restore and rollback,
submit / send back / approve with comments, and the 已核实 / 待复核 marks."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from coach.rulebook import RuleBook
from kb import history, review
from kb.accounts import Accounts
from kb.authoring import save_article
from kb.errors import Conflict, NotFound, StaleVersion, ValidationError

from .conftest import PASSWORD, signed_in

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


def version_of(kb, article_id: str) -> int:
    return kb.store.get_meta_row(article_id)["version"]


def audit_actions(kb, target: str) -> list[tuple[str, str, dict]]:
    """(actor, action, detail) for one target, oldest first."""
    rows = Accounts(kb.store).audit_entries(500)
    return [
        (r["actor"], r["action"], json.loads(r["detail"] or "{}"))
        for r in reversed(rows)
        if r["target"] == target
    ]


def new_draft(kb, article_id="product-warranty", who="trainer1") -> None:
    save_article(
        kb,
        article_id,
        {"title": "保修期多久", "category": "product", "body": "整机保修七天，配件不保。",
         "tags": ["保修"], "status": "draft"},
        who,
        create=True,
        base_version=0,
    )  # fmt: skip


# -- history (item 5) -----------------------------------------------------------------


@BOTH
def test_any_revision_compared_and_restored_as_a_new_version(kb):
    new_draft(kb)
    save_article(
        kb,
        "product-warranty",
        {"body": "整机保修十五天，配件不保。", "tags": ["保修", "售后"], "title": "保修期是多久"},
        "trainer2",
        base_version=1,
    )
    assert history.revision(kb.store, "product-warranty", 1).body == "整机保修七天，配件不保。"
    diffs = {d["field"]: d for d in history.compare(kb.store, "product-warranty", 1, 2)}
    assert set(diffs) == {"title", "tags", "body"}
    assert diffs["body"]["ops"] == [["=", "整机保修"], ["-", "七"], ["+", "十五"],
                                    ["=", "天，配件不保。"]]  # fmt: skip
    assert (
        diffs["body"]["label"] == "正文" and "<del>七</del><ins>十五</ins>" in diffs["body"]["html"]
    )
    assert diffs["tags"]["html"].endswith("<ins>\n售后</ins>")
    assert history.compare(kb.store, "product-warranty", 2, 2) == []

    # restoring states the version it is based on: a stale one is refused, nothing saved
    with pytest.raises(StaleVersion):
        history.restore(kb, "product-warranty", 1, "trainer1", base_version=1)
    assert version_of(kb, "product-warranty") == 2
    assert history.restore(kb, "product-warranty", 1, "trainer1", base_version=2) == 3
    restored = kb.store.get("product-warranty")
    assert (restored.title, restored.body, restored.tags) == (
        "保修期多久",
        "整机保修七天，配件不保。",
        ["保修"],
    )
    assert restored.status == "draft"  # the status is never restored
    assert history.compare(kb.store, "product-warranty", 1, 3) == []
    assert ("trainer1", "article.restore", {"from_version": 1, "version": 3}) in audit_actions(
        kb, "product-warranty"
    )
    with pytest.raises(NotFound, match="没有第 9 版"):
        history.revision(kb.store, "product-warranty", 9)
    with pytest.raises(ValidationError, match="正整数"):
        history.parse_version("0")


@BOTH
def test_restore_keeps_the_status_and_diff_includes_status(kb):
    save_article(kb, "product-invoice", {"status": "archived"}, "trainer1", base_version=1)
    diffs = history.compare(kb.store, "product-invoice", 1, 2)
    assert [(d["field"], d["html"]) for d in diffs] == [
        ("status", "<del>published</del><ins>archived</ins>")
    ]
    assert history.restore(kb, "product-invoice", 1, "trainer1", base_version=2) == 2  # unchanged
    assert kb.store.get("product-invoice").status == "archived"


@BOTH
def test_rule_pack_diff_between_versions_and_rollback(kb, tmp_path):
    book = RuleBook(kb.store, tmp_path / "inst")
    v1 = book.save("disable: [vague-hedge]\n", by="super1", base_version=0)
    v2 = book.save("disable: [vague-hedge, filler-bare]\n", by="super1", base_version=v1)
    (d,) = book.diff(v1, v2)
    assert "<ins>, filler-bare</ins>" in d["html"]
    assert book.diff(v2, v2) == []
    assert "<del>disable: [vague-hedge]\n</del>" in book.diff(v1, 0)[0]["html"]
    with pytest.raises(StaleVersion):
        book.rollback(v1, by="super1", base_version=v1)
    v3 = book.rollback(v1, by="super1", base_version=v2)
    assert v3 == 3 and book.text_of(v3) == book.text_of(v1)
    assert book.current()["note"] == "回滚到 v1"
    assert book.rollback(v1, by="super1", base_version=v3) is None  # nothing to change
    assert book.text_of(book.rollback(0, by="super1", base_version=v3)) == ""
    with pytest.raises(NotFound):
        book.diff(1, 99)


# -- review (item 4) ---------------------------------------------------------------------


@BOTH
def test_submit_send_back_with_comment_then_approve(kb):
    new_draft(kb, who="trainer1")
    v = review.submit(kb, "product-warranty", "trainer1", base_version=1)
    assert kb.store.get("product-warranty").status == "review" and v == 2
    with pytest.raises(ValidationError, match="请填写意见") as exc:
        review.send_back(kb, "product-warranty", "trainer2", base_version=2, comment="  ")
    assert exc.value.field == "comment"
    # the submitter is the last editor: approving their own change is refused
    with pytest.raises(review.SelfApproval, match="不能审核通过自己"):
        review.approve(kb, "product-warranty", "trainer1", base_version=2)
    v = review.send_back(
        kb, "product-warranty", "trainer2", base_version=2, comment="请写明配件的保修期"
    )
    assert kb.store.get("product-warranty").status == "draft"
    with pytest.raises(Conflict, match="当前为「草稿」"):
        review.approve(kb, "product-warranty", "trainer2", base_version=v)
    save_article(kb, "product-warranty", {"body": "整机保修七天，配件保修三天。"}, "trainer1",
                 base_version=v)  # fmt: skip
    v = review.submit(kb, "product-warranty", "trainer1", base_version=v + 1, comment="已补充")
    with pytest.raises(StaleVersion):  # what the reviewer saw is no longer current
        review.approve(kb, "product-warranty", "trainer2", base_version=v - 1)
    v = review.approve(kb, "product-warranty", "trainer2", base_version=v, comment="可以发布")
    assert kb.store.get("product-warranty").status == "published"

    thread = review.thread(kb.store, "product-warranty")
    assert [(c["kind_label"], c["by"], c["body"]) for c in thread] == [
        ("提交审核", "trainer1", ""),
        ("退回修改", "trainer2", "请写明配件的保修期"),
        ("提交审核", "trainer1", "已补充"),
        ("审核通过", "trainer2", "可以发布"),
    ]
    review.add_comment(kb.store, "product-warranty", "admin1", "下个月复查")
    assert review.comment_count(kb.store, "product-warranty") == 5
    with pytest.raises(ValidationError, match="请填写评论内容"):
        review.add_comment(kb.store, "product-warranty", "admin1", "")
    with pytest.raises(ValidationError, match="评论过长"):
        review.add_comment(kb.store, "product-warranty", "admin1", "长" * 2001)
    with pytest.raises(NotFound):
        review.add_comment(kb.store, "no-such-article", "admin1", "你好")

    actions = [(a, act) for a, act, _ in audit_actions(kb, "product-warranty")]
    for step in [("trainer1", "article.submit"), ("trainer2", "article.send_back"),
                 ("trainer2", "article.approve"), ("trainer2", "article.publish"),
                 ("admin1", "article.comment")]:  # fmt: skip
        assert step in actions
    sent_back = next(d for a, act, d in audit_actions(kb, "product-warranty")
                     if act == "article.send_back")  # fmt: skip
    assert sent_back["from"] == "review" and sent_back["to"] == "draft"
    assert sent_back["comment"] == "请写明配件的保修期"


def test_self_approval_allowed_when_the_instance_allows_it(kb):
    new_draft(kb)
    review.submit(kb, "product-warranty", "trainer1", base_version=1)
    review.approve(kb, "product-warranty", "trainer1", base_version=2, forbid_self=False)
    assert kb.store.get("product-warranty").status == "published"


# -- review dates (item 6) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "review_by", "updated", "label"),
    [
        ("published", "2026-12-31", "2026-01-05T10:00:00", "已核实（2026-01-05）"),
        ("published", "2026-11-30", "2026-01-05T10:00:00", "已核实（2026-01-05）"),
        ("published", "2026-11-29", "2026-11-01T10:00:00", "待复核"),
        ("published", "", "2026-10-01T10:00:00", "已核实（2026-10-01）"),
        ("published", "", "2026-01-01T10:00:00", "待复核"),
        ("draft", "2026-12-31", "2026-11-01T10:00:00", None),
        ("review", "", "2026-11-01T10:00:00", None),
    ],
)
def test_verified_or_due(status, review_by, updated, label):
    mark = review.verification(status, review_by, updated, dt.date(2026, 11, 30))
    assert (mark["label"] if mark else None) == label


@BOTH
def test_marks_of_search_results(kb):
    save_article(kb, "product-refund", {"review_by": "2000-01-01"}, "trainer1",
                 base_version=version_of(kb, "product-refund"))  # fmt: skip
    marks = review.verifications(kb.store, ["product-invoice", "product-refund", "phrasing-draft"])
    assert marks["product-invoice"]["state"] == "verified"
    assert marks["product-refund"] == {"state": "due", "label": "待复核",
                                       "date": marks["product-refund"]["date"]}  # fmt: skip
    assert "phrasing-draft" not in marks


# -- pages ---------------------------------------------------------------------------------


@pytest.fixture
def two_trainers(app, kb):
    Accounts(kb.store).add("trainer2", PASSWORD, ["trainer"])
    return signed_in(app, "trainer1"), signed_in(app, "trainer2")


def form(client, url: str, data: dict):
    return client.post(url, data=data, headers={"Accept": "text/html"})


def test_agents_cannot_review_comment_restore_or_see_history(app, kb):
    new_draft(kb)
    review.submit(kb, "product-warranty", "trainer1", base_version=1)
    agent = signed_in(app, "agent1")
    for url in ("approve", "send-back", "comments", "submit", "restore"):
        resp = agent.post(f"/articles/product-warranty/{url}", data={"version": "2",
                          "comment": "好", "from_version": "1"})  # fmt: skip
        assert resp.status_code == 403, url
    for url in ("/articles/product-invoice/revision?v=1", "/articles/product-invoice/diff?from=1"):
        assert agent.get(url).status_code == 403
    sup = signed_in(app, "super1")
    assert sup.post("/articles/product-warranty/approve", data={"version": "2"}).status_code == 403
    assert kb.store.get("product-warranty").status == "review"
    assert review.comment_count(kb.store, "product-warranty") == 1
    page = agent.get("/articles/product-invoice").get_data(as_text=True)
    assert "审核与评论" not in page and "已核实（" in page


def test_review_flow_through_the_article_page(app, kb, two_trainers):
    t1, t2 = two_trainers
    new_draft(kb)
    page = t1.get("/articles/product-warranty").get_data(as_text=True)
    assert "提交审核" in page and "审核通过并发布" not in page
    resp = form(t1, "/articles/product-warranty/submit", {"version": "1"})
    assert resp.status_code == 302 and resp.location.endswith("#review")
    # the submitter may not approve (the default setting), said next to the field
    resp = form(t1, "/articles/product-warranty/approve", {"version": "2"})
    assert resp.status_code == 409
    assert re.search(r'field-error" role="alert">不能审核通过自己', resp.get_data(as_text=True))
    # sending back needs a comment: the server says so in Chinese, the text typed is kept
    resp = form(t2, "/articles/product-warranty/send-back", {"version": "2", "comment": " "})
    assert resp.status_code == 400
    assert "退回修改时请填写意见" in resp.get_data(as_text=True)
    resp = form(t2, "/articles/product-warranty/send-back",
                {"version": "2", "comment": "请补充<配件>的保修期"})  # fmt: skip
    assert resp.status_code == 302
    page = t1.get("/articles/product-warranty").get_data(as_text=True)
    assert "请补充&lt;配件&gt;的保修期" in page and "退回修改" in page
    editor = t1.get("/editor/product-warranty").get_data(as_text=True)
    assert "请补充&lt;配件&gt;的保修期" in editor
    assert form(t1, "/articles/product-warranty/comments", {"comment": ""}).status_code == 400
    assert form(t1, "/articles/product-warranty/comments", {"comment": "已改"}).status_code == 302
    assert form(t1, "/articles/product-warranty/submit", {"version": "3"}).status_code == 302
    assert form(t2, "/articles/product-warranty/approve", {"version": "3"}).status_code == 409
    assert form(t2, "/articles/product-warranty/approve", {"version": "4"}).status_code == 302
    assert kb.store.get("product-warranty").status == "published"
    agent = signed_in(app, "agent1")
    page = agent.get("/articles/product-warranty").get_data(as_text=True)
    assert "已核实（" in page
    log = signed_in(app, "admin1").get("/admin/audit-log?action=article.")
    text = log.get_data(as_text=True)
    for name in ("提交审核", "退回修改", "审核通过", "评论文章"):
        assert name in text, name
    found = agent.get("/?q=保修期多久").get_data(as_text=True)
    hit = found.split('data-id="product-warranty"', 1)[1].split("</li>", 1)[0]
    assert "已核实（" in hit


def test_self_approval_setting(kb, users):
    from web import create_app

    app = create_app({"INSTANCE": str(kb.root), "TESTING": True, "INDEX_SYNC_SECONDS": 0,
                      "AUDIT_WORKER_SECONDS": 0, "REVIEW_FORBID_SELF_APPROVE": False})  # fmt: skip
    new_draft(kb)
    review.submit(kb, "product-warranty", "trainer1", base_version=1)
    t1 = signed_in(app, "trainer1")
    assert form(t1, "/articles/product-warranty/approve", {"version": "2"}).status_code == 302
    assert kb.store.get("product-warranty").status == "published"


def test_revision_page_diff_page_and_restore(app, kb, two_trainers):
    t1, _ = two_trainers
    new_draft(kb)
    save_article(kb, "product-warranty", {"body": "整机保修十五天，配件不保。"}, "trainer1",
                 base_version=1)  # fmt: skip
    page = t1.get("/articles/product-warranty").get_data(as_text=True)
    assert "与上一版比较" in page and 'class="diff-form"' in page
    rev = t1.get("/articles/product-warranty/revision?v=1").get_data(as_text=True)
    assert "第 1 版" in rev and "整机保修七天" in rev and "恢复为此版本" in rev
    assert t1.get("/articles/product-warranty/revision?v=7").status_code == 404
    assert t1.get("/articles/product-warranty/revision?v=x").status_code == 400
    diff = t1.get("/articles/product-warranty/diff?from=1&to=2").get_data(as_text=True)
    assert "<del>七</del><ins>十五</ins>" in diff
    bad = t1.get("/articles/product-warranty/diff?from=abc")
    assert bad.status_code == 400 and "起始版本应为正整数" in bad.get_data(as_text=True)
    stale = form(t1, "/articles/product-warranty/restore", {"version": "1", "from_version": "1"})
    assert stale.status_code == 409 and "未保存" in stale.get_data(as_text=True)
    ok = form(t1, "/articles/product-warranty/restore", {"version": "2", "from_version": "1"})
    assert ok.status_code == 302
    assert kb.store.get("product-warranty").body == "整机保修七天，配件不保。"
    assert version_of(kb, "product-warranty") == 3


def test_search_page_marks_results(app, kb):
    agent = signed_in(app, "agent1")
    page = agent.get("/?q=发票怎么开").get_data(as_text=True)
    assert re.search(r'badge verify-verified">已核实（\d{4}-\d\d-\d\d）', page)


def test_rules_diff_and_rollback_pages(app, kb):
    sup = signed_in(app, "super1")
    for text, base in (("disable: [vague-hedge]\n", "0"), ("disable: [filler-bare]\n", "1")):
        resp = sup.post("/rules", data={"yaml": text, "version": base, "action": "save"})
        assert resp.status_code == 302
    page = sup.get("/rules").get_data(as_text=True)
    assert "回滚到 v1" in page and "与上一版比较" in page
    diff = sup.get("/rules/diff?from=1&to=2").get_data(as_text=True)
    assert "<del>vague-hedge</del><ins>filler-bare</ins>" in diff
    assert sup.get("/rules/diff?from=x").status_code == 400
    resp = sup.post("/rules/rollback", data={"to": "1", "version": "1"}, follow_redirects=True)
    assert "未保存" in resp.get_data(as_text=True)  # stale: v2 is current
    resp = sup.post("/rules/rollback", data={"to": "1", "version": "2"}, follow_redirects=True)
    assert "已回滚：v3 与 v1 相同" in resp.get_data(as_text=True)
    trainer = signed_in(app, "trainer1")
    assert trainer.post("/rules/rollback", data={"to": "1", "version": "3"}).status_code == 403
    assert trainer.get("/rules/diff?from=1").status_code == 403


@BOTH
def test_waiting_for_my_review_and_my_due_list(kb):
    from kb.catalog import ArticleFilter, list_articles

    new_draft(kb, "product-a", who="trainer1")
    new_draft(kb, "product-b", who="trainer2")
    review.submit(kb, "product-a", "trainer1", base_version=1)
    review.submit(kb, "product-b", "trainer2", base_version=1)
    listing = list_articles(kb.store, ArticleFilter(status="review", not_by="trainer2"))
    assert [r["id"] for r in listing.rows] == ["product-a"]
    save_article(kb, "product-a", {"review_by": "2000-01-01", "owner": "trainer1"}, "trainer1",
                 base_version=2)  # fmt: skip
    due = list_articles(kb.store, ArticleFilter(mine="trainer1", review="overdue"))
    assert [r["id"] for r in due.rows] == ["product-a"]


def test_articles_page_waiting_for_me(app, kb, two_trainers):
    t1, t2 = two_trainers
    new_draft(kb, "product-a", who="trainer1")
    review.submit(kb, "product-a", "trainer1", base_version=1)
    mine = t1.get("/articles?status=review&for_me=1").get_data(as_text=True)
    other = t2.get("/articles?status=review&for_me=1").get_data(as_text=True)
    assert "product-a" not in mine and "product-a" in other
    assert "待我审核" in other and "可由我审核" in other
