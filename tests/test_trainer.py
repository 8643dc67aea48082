"""Trainer workspace (issue 12): no silent overwrites (compare-and-set on the version
for articles and the team rule pack), 文章管理, ids from titles, pins to unpublished
articles."""

from __future__ import annotations

import re
import threading
from dataclasses import replace

import pytest

from coach.rulebook import RuleBook
from kb import pins
from kb.authoring import save_article
from kb.diff import diff_ops, ops_html
from kb.errors import StaleVersion
from kb.slug import propose_id, slugify

from .conftest import signed_in

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


def version_of(kb, article_id: str) -> int:
    return kb.store.get_meta_row(article_id)["version"]


# -- diff ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "ops"),
    [
        (
            "七天无理由退货，运费自理。",
            "十五天无理由退货。",
            [("-", "七"), ("+", "十五"), ("=", "天无理由退货"), ("-", "，运费自理"), ("=", "。")],
        ),
        (
            "退款3到5个工作日到账",
            "退款1到3个工作日到账",
            [("=", "退款"), ("-", "3到5"), ("+", "1到3"), ("=", "个工作日到账")],
        ),
        (
            "第一行\n第二行\n",
            "第一行\n第二行\n第三行\n",
            [("=", "第一行\n第二行\n"), ("+", "第三行\n")],
        ),
    ],
)
def test_diff_is_readable_in_chinese(old, new, ops):
    assert diff_ops(old, new) == ops
    rebuilt_old = "".join(t for k, t in ops if k != "+")
    rebuilt_new = "".join(t for k, t in ops if k != "-")
    assert (rebuilt_old, rebuilt_new) == (old, new)


def test_diff_html_escapes_every_text():
    html = ops_html(diff_ops("<b>旧</b>", "<script>alert(1)</script>"))
    assert "<del>" in html and "<ins>" in html
    assert "<" not in re.sub(r"</?(del|ins)>", "", html)  # every other < is escaped
    assert ops_html([("=", "<a href='x'>&")]) == "&lt;a href=&#x27;x&#x27;&gt;&amp;"


# -- compare-and-set in the store -----------------------------------------------------


@BOTH
def test_a_save_based_on_an_old_version_is_refused_with_the_diff(kb):
    v = version_of(kb, "product-refund")
    body = kb.get("product-refund").body
    assert save_article(kb, "product-refund", {"body": body + "\n补充一行。"}, "t1", base_version=v)
    with pytest.raises(StaleVersion) as info:
        save_article(
            kb, "product-refund", {"body": body.replace("3 到 5", "1 到 3")}, "t2", base_version=v
        )
    exc = info.value
    assert exc.status == 409 and exc.current_version == v + 1
    assert "t1" in exc.message and f"第 {v} 版" in exc.message and "未保存" in exc.message
    (diff,) = exc.details["diff"]
    assert diff["field"] == "body" and diff["label"] == "正文"
    assert "<del>3</del><ins>1</ins> 到 <del>5</del><ins>3</ins>" in diff["html"]
    assert "<del>\n补充一行。</del>" in diff["html"]  # the other change, which mine lacks
    (theirs,) = exc.details["their_changes"]
    assert "<ins>\n补充一行。</ins>" in theirs["html"]
    assert version_of(kb, "product-refund") == v + 1
    assert "3 到 5" in kb.get("product-refund").body  # nothing of the refused save landed
    # re-applied on top of the current version, it saves
    outcome = save_article(
        kb, "product-refund", {"body": body.replace("3 到 5", "1 到 3")}, "t2", base_version=v + 1
    )
    assert outcome == "changed" and version_of(kb, "product-refund") == v + 2


@BOTH
def test_compare_and_set_rules(kb):
    art = kb.get("product-invoice")
    v = version_of(kb, "product-invoice")
    # a stale save that changes nothing is no conflict: nothing would be lost
    assert kb.store.save(art, expected_version=v - 1 if v > 1 else 99) == "unchanged"
    # 0: only when the article does not exist
    with pytest.raises(StaleVersion, match="已存在"):
        kb.store.save(replace(art, title="新标题"), expected_version=0)
    new = replace(art, id="product-new", title="新文章")
    assert kb.store.save(new, expected_version=0) == "added"
    kb.delete("product-new", by="t1")
    with pytest.raises(StaleVersion, match="已被删除"):
        kb.store.save(replace(new, title="改"), expected_version=1)
    with pytest.raises(StaleVersion, match="已被删除"):
        save_article(kb, "product-new", {"title": "改"}, "t1", base_version=1)
    # a batch with one stale article writes none of them
    before = kb.store.last_change()
    with pytest.raises(StaleVersion):
        kb.store.save_many(
            [replace(art, title="甲"), replace(kb.get("product-refund"), title="乙")],
            expected={"product-invoice": v, "product-refund": 0},
        )
    assert kb.get("product-invoice").title == art.title and kb.store.last_change() == before
    with pytest.raises(Exception, match="version"):
        save_article(kb, "product-invoice", {"title": "x"}, "t1", base_version=-1)


@BOTH
def test_two_writers_racing_on_one_version_never_both_win(kb):
    """Threads with their own connections save different texts based on the same
    version at once, round after round: exactly one wins each round."""
    rounds, writers = 4, 4
    for r in range(rounds):
        base = version_of(kb, "product-refund")
        art = kb.get("product-refund")
        barrier = threading.Barrier(writers)
        outcomes: list[str] = []  # list.append is atomic

        def write(n: int, base=base, art=art, barrier=barrier, outcomes=outcomes, r=r) -> None:
            barrier.wait()
            try:
                kb.store.save(
                    replace(art, body=f"第 {r} 轮，写者 {n}"), by=f"w{n}", expected_version=base
                )
                result = "won"
            except StaleVersion:
                result = "refused"
            finally:
                kb.close()  # this thread's store
            outcomes.append(result)

        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["refused"] * (writers - 1) + ["won"]
        assert version_of(kb, "product-refund") == base + 1
    revisions = kb.store.revisions("product-refund")
    assert [r["version"] for r in revisions[:rounds]] == list(
        range(revisions[0]["version"], revisions[0]["version"] - rounds, -1)
    )


@BOTH
def test_saves_without_a_version_merge_atomically(kb):
    """The compatibility path (no version): last writer wins, but omitted fields never
    come from a stale read; racing writers of different fields both land."""
    barrier = threading.Barrier(2)
    errors = []

    def write(fields: dict) -> None:
        barrier.wait()
        try:
            save_article(kb, "product-invoice", fields, "w")
        except Exception as exc:  # pragma: no cover - shown by the assert below
            errors.append(exc)
        finally:
            kb.close()

    threads = [
        threading.Thread(target=write, args=({"owner": "甲组"},)),
        threading.Thread(target=write, args=({"tags": ["乙"]},)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    art = kb.get("product-invoice")
    assert art.owner == "甲组" and art.tags == ["乙"]


@BOTH
def test_rule_pack_saves_compare_and_set(kb, tmp_path):
    book = RuleBook(kb.store, tmp_path / "inst")
    assert book.save("disable: [filler-bare]\n", by="s1", base_version=0) == 1
    with pytest.raises(StaleVersion) as info:
        book.save("disable: [vague-hedge]\n", by="s2", base_version=0)
    assert info.value.current_version == 1 and "s1" in info.value.message
    assert "<del>filler-bare</del><ins>vague-hedge</ins>" in info.value.details["diff"][0]["html"]
    assert book.version() == 1
    assert book.save("disable: [vague-hedge]\n", by="s2", base_version=1) == 2
    assert book.save("disable: []\n", by="tool") == 3  # no version: unchecked, as before

    barrier = threading.Barrier(3)
    results: list[object] = []

    def write(n: int) -> None:
        barrier.wait()
        try:
            results.append(
                book.save(f"disable: [filler-bare]\n# {n}\n", by=f"s{n}", base_version=3)
            )
        except StaleVersion:
            results.append("refused")
        finally:
            kb.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(map(str, results)) == ["4", "refused", "refused"]


# -- API ------------------------------------------------------------------------------


@BOTH
def test_api_put_states_its_version_and_gets_409_when_stale(app, users, kb):
    trainer = signed_in(app, users["trainer"])
    got = trainer.get("/api/v1/articles/product-refund")
    v = got.get_json()["article"]["version"]
    assert got.headers["ETag"] == f'"{v}"'
    ok = trainer.put(
        "/api/v1/articles/product-refund", json={"title": "退款几天到账", "version": v}
    )
    assert ok.status_code == 200 and ok.headers["ETag"] == f'"{v + 1}"'
    stale = trainer.put(
        "/api/v1/articles/product-refund", json={"title": "退款<b>多久</b>到", "version": v}
    )
    body = stale.get_json()
    assert stale.status_code == 409 and body["ok"] is False and body["status"] == 409
    assert "未保存" in body["error"] and body["current_version"] == v + 1 and body["based_on"] == v
    assert body["current"]["title"] == "退款几天到账" and body["updated_by"] == users["trainer"]
    (diff,) = body["diff"]
    assert diff["field"] == "title" and "&lt;b&gt;" in diff["html"] and "<b>" not in diff["html"]
    assert diff["ops"][0] == ["=", "退款"] and diff["ops"][1] == ["-", "几天到账"]
    # If-Match: the ETag of GET, strong or weak
    stale = trainer.put(
        "/api/v1/articles/product-refund", json={"owner": "甲"}, headers={"If-Match": f'"{v}"'}
    )
    assert stale.status_code == 409
    ok = trainer.put(
        "/api/v1/articles/product-refund",
        json={"owner": "甲"},
        headers={"If-Match": f'W/"{v + 1}"'},
    )
    assert ok.status_code == 200 and ok.get_json()["article"]["owner"] == "甲"
    for headers, json, message in [
        ({"If-Match": "abc"}, {"owner": "乙"}, "If-Match"),
        ({}, {"owner": "乙", "version": "3"}, "version"),
        ({}, {"owner": "乙", "version": True}, "version"),
        ({"If-Match": '"1"'}, {"owner": "乙", "version": 2}, "不一致"),
    ]:
        bad = trainer.put("/api/v1/articles/product-refund", json=json, headers=headers)
        assert bad.status_code == 400 and message in bad.get_json()["error"], json
    # no version at all: accepted for older clients (documented), and it says the version
    compat = trainer.put("/api/v1/articles/product-refund", json={"owner": "丙"})
    assert compat.status_code == 200 and compat.get_json()["article"]["version"] == v + 3
    # create with version 0; a second create of the same id is refused
    new = {"title": "新文章", "category": "product", "body": "正文", "version": 0}
    assert trainer.put("/api/v1/articles/product-new", json=new).status_code == 200
    same = trainer.put("/api/v1/articles/product-new", json=new)  # nothing would be lost
    assert same.status_code == 200 and same.get_json()["outcome"] == "unchanged"
    again = trainer.put("/api/v1/articles/product-new", json={**new, "title": "另一篇"})
    assert again.status_code == 409 and "已存在" in again.get_json()["error"]


@BOTH
def test_editor_refuses_a_stale_form_shows_the_diff_and_reapplies(app, users, kb):
    trainer = signed_in(app, users["trainer"])
    tok = trainer.environ_base["HTTP_X_CSRFTOKEN"]
    page = trainer.get("/editor/product-refund").get_data(as_text=True)
    v = int(re.search(r'name="version" value="(\d+)"', page).group(1))
    assert "novalidate" in page and "pattern=" not in page
    art = kb.get("product-refund")
    form = {
        "csrf_token": tok, "version": str(v), "title": art.title, "category": art.category,
        "status": art.status, "owner": art.owner, "review_by": art.review_by,
        "tags": ", ".join(art.tags), "similar": "\n".join(art.similar), "action": "save",
    }  # fmt: skip
    first = {**form, "body": art.body.replace("1 个工作日", "2 个工作日")}
    assert trainer.post("/editor/product-refund", data=first).status_code == 302
    mine = {**form, "body": art.body + "\n\n<script>x</script> 我的补充"}
    resp = trainer.post("/editor/product-refund", data=mine)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409 and "未保存" in html and 'class="conflict"' in html
    mine_diff, theirs = html.split('class="their-changes"')
    assert "<del>2</del><ins>1</ins>" in mine_diff  # the current text has 2, mine 1
    assert "<del>1</del><ins>2</ins>" in theirs  # the change made meanwhile
    assert "&lt;script&gt;x&lt;/script&gt; 我的补充</ins>" in mine_diff
    assert f'name="rebase_to" value="{v + 1}"' in html and "我的补充</textarea>" in html
    assert kb.get("product-refund").body == first["body"]
    # re-apply: the same text, now based on the current version, saves nothing yet
    reapplied = trainer.post("/editor/product-refund", data={**mine, "action": "reapply",
                                                             "rebase_to": str(v + 1)})  # fmt: skip
    html = reapplied.get_data(as_text=True)
    assert reapplied.status_code == 200 and f'name="version" value="{v + 1}"' in html
    assert "请检查后再保存" in html and version_of(kb, "product-refund") == v + 1
    saved = trainer.post("/editor/product-refund", data={**mine, "version": str(v + 1)})
    assert saved.status_code == 302 and kb.get("product-refund").body == mine["body"]
    # a form without its version is refused, never saved blindly
    nover = {k: val for k, val in mine.items() if k != "version"}
    resp = trainer.post("/editor/product-refund", data={**nover, "body": "覆盖"})
    assert resp.status_code == 400 and "版本号" in resp.get_data(as_text=True)


@BOTH
def test_rules_page_refuses_a_stale_save(app, users):
    sup = signed_in(app, users["supervisor"])
    tok = sup.environ_base["HTTP_X_CSRFTOKEN"]
    page = sup.get("/rules").get_data(as_text=True)
    assert 'name="version" value="0"' in page
    form = {"csrf_token": tok, "version": "0", "action": "save"}
    assert sup.post("/rules", data={**form, "yaml": "disable: [filler-bare]\n"}).status_code == 302
    resp = sup.post("/rules", data={**form, "yaml": "disable: [vague-hedge]\n"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409 and "v1" in html and "未保存" in html
    assert 'name="rebase_to" value="1"' in html and "<ins>vague-hedge</ins>" in html
    resp = sup.post("/rules", data={**form, "yaml": "disable: [vague-hedge]\n", "action": "reapply",
                                    "rebase_to": "1"})  # fmt: skip
    assert resp.status_code == 200 and 'name="version" value="1"' in resp.get_data(as_text=True)
    ok = sup.post("/rules", data={**form, "version": "1", "yaml": "disable: [vague-hedge]\n"})
    assert ok.status_code == 302


# -- 文章管理 ----------------------------------------------------------------------------


def rows(html: str) -> list[str]:
    return re.findall(r'<tr data-id="([^"]+)"', html)


@BOTH
def test_article_management_lists_filters_and_counts(app, users, kb):
    trainer = signed_in(app, users["trainer"])
    save_article(kb, "product-old", {"title": "旧的 100% 文章", "category": "product",
                                     "body": "正文", "status": "archived",
                                     "review_by": "2020-01-01", "owner": "甲"}, "trainer1")  # fmt: skip
    save_article(kb, "norm-mine", {"title": "我的草稿", "category": "norm", "body": "正文",
                                   "status": "draft"}, users["trainer"])  # fmt: skip
    html = trainer.get("/articles").get_data(as_text=True)
    assert set(rows(html)) == {
        "norm-greeting", "phrasing-draft", "product-invoice", "product-refund",
        "product-old", "norm-mine",
    }  # fmt: skip
    assert "全部（6）" in html and "草稿（2）" in html and "已发布（3）" in html
    assert "已归档（1）" in html and "待审核（0）" in html
    assert rows(html)[0] == "norm-mine"  # newest first
    html = trainer.get("/articles?status=draft").get_data(as_text=True)
    assert set(rows(html)) == {"phrasing-draft", "norm-mine"} and "全部（6）" in html
    mine = trainer.get("/articles?status=draft&mine=1").get_data(as_text=True)
    assert rows(mine) == ["norm-mine"]
    assert rows(trainer.get("/articles?category=norm").get_data(as_text=True)) == [
        "norm-mine", "norm-greeting"]  # fmt: skip
    assert rows(trainer.get("/articles?review=overdue").get_data(as_text=True)) == ["product-old"]
    assert "norm-mine" in rows(trainer.get("/articles?review=none").get_data(as_text=True))
    assert rows(trainer.get("/articles?owner=甲").get_data(as_text=True)) == ["product-old"]
    assert rows(trainer.get("/articles?q=100%").get_data(as_text=True)) == ["product-old"]
    assert rows(trainer.get("/articles?q=%").get_data(as_text=True)) == ["product-old"]  # literal
    assert rows(trainer.get("/articles?q=INVOICE").get_data(as_text=True)) == ["product-invoice"]
    assert rows(trainer.get("/articles?updated_since=2999-01-01").get_data(as_text=True)) == []
    by_title = rows(trainer.get("/articles?order=id").get_data(as_text=True))
    assert by_title == sorted(by_title)
    bad = trainer.get("/articles?status=gone")
    assert bad.status_code == 400 and "状态筛选无效" in bad.get_data(as_text=True)
    bad = trainer.get("/articles?updated_since=昨天")
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.get_data(as_text=True)
    assert signed_in(app, users["agent"]).get("/articles").status_code == 403
    assert signed_in(app, users["admin"]).get("/articles").status_code == 200


def test_article_management_pages(app, users, kb):
    from kb.models import Article

    kb.store.save_many(
        [
            Article(id=f"product-p{n:03d}", title=f"分页{n}", category="product", status="draft")
            for n in range(60)
        ]  # fmt: skip
    )
    trainer = signed_in(app, users["trainer"])
    first = trainer.get("/articles?status=draft&order=id").get_data(as_text=True)
    assert len(rows(first)) == 50 and "第 1/2 页" in first
    second = trainer.get("/articles?status=draft&order=id&page=2").get_data(as_text=True)
    assert len(rows(second)) == 11 and rows(second)[-1] == "product-p059"
    assert not set(rows(first)) & set(rows(second))


# -- ids from titles -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("以旧换新怎么办理", "yijiuhuanxin-zenme-banli"),
        ("iPhone 15 发票怎么开？", "iphone-15-fapiao-zenme-kai"),
        ("電子發票", "dianzifapiao"),
        ("！！！", ""),
    ],
)
def test_slugify(title, slug):
    assert slugify(title) == slug


@BOTH
def test_ids_are_proposed_from_titles_and_unique(app, users, kb):
    assert propose_id(kb.store, "以旧换新怎么办理", "product") == "product-yijiuhuanxin-zenme-banli"
    save_article(kb, "Product-Yijiuhuanxin-Zenme-Banli", {"title": "以旧换新怎么办理",
                 "category": "product", "body": "正文"}, "t1")  # fmt: skip
    assert (
        propose_id(kb.store, "以旧换新怎么办理", "product") == "product-yijiuhuanxin-zenme-banli-2"
    )
    assert propose_id(kb.store, "？？", "norm") == "norm-article"
    trainer = signed_in(app, users["trainer"])
    resp = trainer.get("/api/v1/article-id?title=退货运费谁出&category=product")
    assert resp.get_json() == {"ok": True, "id": "product-tuihuoyunfei-shui-chu"}
    for query, message in [("", "缺少参数 title"), ("?title=x&category=food", "category 无效")]:
        bad = trainer.get("/api/v1/article-id" + query)
        assert bad.status_code == 400 and message in bad.get_json()["error"]
    # the editor's server fills an empty id from the title
    tok = trainer.environ_base["HTTP_X_CSRFTOKEN"]
    form = {"csrf_token": tok, "id": "", "title": "退货运费谁出", "category": "product",
            "body": "正文", "status": "draft", "action": "save"}  # fmt: skip
    resp = trainer.post("/editor", data=form)
    assert resp.status_code == 302 and resp.location.endswith(
        "/articles/product-tuihuoyunfei-shui-chu"
    )
    assert kb.get("product-tuihuoyunfei-shui-chu").title == "退货运费谁出"
    resp = trainer.post("/editor", data=form)  # the same title again: the next free id
    assert resp.location.endswith("/articles/product-tuihuoyunfei-shui-chu-2")
    # every message is the server's, in Chinese, next to its field
    resp = trainer.post("/editor", data={**form, "title": ""})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'class="field-error"' in html and "请填写标题" in html
    resp = trainer.post("/editor", data={**form, "id": "以旧换新"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "只能用字母、数字" in html
    assert re.search(r'name="id"[^>]*value="以旧换新"', html)  # kept for correcting
    assert agent_forbidden(app, users)


def agent_forbidden(app, users) -> bool:
    return signed_in(app, users["agent"]).get("/api/v1/article-id?title=x").status_code == 403


# -- pins to unpublished articles ---------------------------------------------------------------


def fresh_hits(kb, query: str) -> list[tuple[str, bool]]:
    """(id, pinned) of the hits of a process that opens the index now (no pooled view
    from before the change, which refreshes only every half second)."""
    from kb.service import KnowledgeBase

    other = KnowledgeBase(kb.root, database_url=kb.database_url)
    try:
        pins.attach(other)
        return [(h.id, h.pinned) for h in other.search(query, log=False).hits]
    finally:
        other.close()


@BOTH
def test_pins_to_unpublished_articles_are_flagged_and_never_shown(app, users, kb):
    trainer = signed_in(app, users["trainer"])
    tok = trainer.environ_base["HTTP_X_CSRFTOKEN"]
    resp = trainer.post("/pins", data={"csrf_token": tok, "query": "退钱要多久",
                                       "article_id": "product-invoice"})  # fmt: skip
    assert resp.status_code == 302
    assert fresh_hits(kb, "退钱要多久")[0] == ("product-invoice", True)
    html = trainer.get("/pins").get_data(as_text=True)
    assert "pin-flag" not in html and "pin-warning" not in html
    save_article(kb, "product-invoice", {"status": "archived"}, "trainer1")
    # agents: the app's first search opens the index after the change
    hits = signed_in(app, users["agent"]).get("/api/v1/search?q=退钱要多久").get_json()["hits"]
    assert "product-invoice" not in [h["id"] for h in hits] and hits[0]["pinned"] is False
    html = trainer.get("/pins").get_data(as_text=True)
    assert "有 1 条置顶指向未发布或已删除的文章" in html
    assert "（文章已归档，客服搜索不显示）" in html
    listed = trainer.get("/api/v1/pins").get_json()["pins"]
    assert listed[0]["shown"] is False and listed[0]["problem"] == "文章已归档"
    save_article(kb, "product-invoice", {"status": "draft"}, "trainer1")
    assert "（文章仍是草稿，客服搜索不显示）" in trainer.get("/pins").get_data(as_text=True)
    assert "product-invoice" not in dict(fresh_hits(kb, "退钱要多久"))
    kb.delete("product-invoice", by="trainer1")
    html = trainer.get("/pins").get_data(as_text=True)
    assert "（文章已删除，客服搜索不显示）" in html
    assert "product-invoice" not in dict(fresh_hits(kb, "退钱要多久"))
    assert pins.unpublished_count(kb.store) == 1


@BOTH
def test_personal_script_saves_state_the_version_they_were_based_on(app, users):
    agent = signed_in(app, users["agent"])
    made = agent.post("/api/v1/my/scripts", json={"title": "我的问候", "text": "您好，请稍等"})
    script = made.get_json()["script"]
    url = f"/api/v1/my/scripts/{script['id']}"
    first = agent.put(url, json={"title": "我的问候", "text": "您好，请稍等片刻",
                                 "updated_at": script["updated_at"]})  # fmt: skip
    assert first.status_code == 200
    assert first.get_json()["script"]["updated_at"] > script["updated_at"]
    stale = agent.put(url, json={"title": "我的问候", "text": "您好，马上为您查询",
                                 "updated_at": script["updated_at"]})  # fmt: skip
    body = stale.get_json()
    assert stale.status_code == 409 and "未保存" in body["error"]
    assert body["current"]["text"] == "您好，请稍等片刻" and "<ins>" in body["diff"][0]["html"]
    assert agent.get(url).get_json()["script"]["text"] == "您好，请稍等片刻"
    bad = agent.put(url, json={"title": "t", "text": "x", "updated_at": 5})
    assert bad.status_code == 400 and "updated_at" in bad.get_json()["error"]
    # without the field: unchecked, as the clients written before versions expect
    assert agent.put(url, json={"title": "我的问候", "text": "您好"}).status_code == 200
