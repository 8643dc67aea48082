"""Content gaps (kb/gaps.py, core/gaps.py) and article feedback (kb/feedback.py): the
library on both stores, then the pages and the API with their role checks."""

from __future__ import annotations

import datetime as dt
import json
import re
from types import SimpleNamespace

import pytest

from coach.audits import AuditStore
from coach.checker import Checker
from coach.transcripts import load_text
from core import gaps as core_gaps
from kb import feedback, gaps
from kb.errors import NotFound, ValidationError

from .conftest import run_cli, signed_in

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


def log(kb, *entries):
    """Searches as the web logs them: [(q, hits, seconds ago, via)]."""
    now = dt.datetime.now(dt.UTC)
    kb.search_log.add(
        [
            {
                "at": (now - dt.timedelta(seconds=ago)).isoformat(timespec="milliseconds"),
                "q": q,
                "category": "",
                "tag": "",
                "hits": hits,
                "took_ms": 1.0,
                "via": via,
            }
            for q, hits, ago, via in entries
        ]
    )
    kb.flush_search_log()


def groups(kb) -> dict[str, gaps.Group]:
    return {g.query: g for g in gaps.search_groups(kb.database)}


@pytest.mark.parametrize(
    "variant,base",
    [
        ("发票 怎么开", "发票怎么开"),
        ("發票怎麼開", "发票怎么开"),
        ("发票怎么开？", "发票怎么开"),
        ("ＶＩＰ 发票怎么开", "vip发票怎么开"),
        ("怎么开 发票", "发票怎么开"),
    ],  # fmt: skip
)
def test_the_group_key_ignores_width_script_spacing_order_and_punctuation(variant, base):
    assert gaps.query_key(variant) == gaps.query_key(base)
    assert gaps.query_key("退款多久") != gaps.query_key(base)


@BOTH
def test_zero_result_and_unopened_searches_are_grouped_with_counts_and_last_seen(kb):
    log(
        kb,
        ("量子纠缠", 0, 300, "api"),
        ("量子 纠缠", 0, 200, "api"),
        ("量子糾纏", 0, 100, "web"),
        ("发票怎么开", 1, 90, "api"),  # found and opened below: no gap
        ("退款多久", 2, 80, "api"),  # found, nobody opened
        ("量子纠缠", 0, 70, "cli"),  # a trainer's terminal is not an agent's search
        ("/dd", 1, 60, "api"),  # a script's shortcut code
    )
    gaps.record_open(kb.database, "发票 怎么开", "product-invoice", position=1, user_id=1)
    found = groups(kb)
    assert set(found) == {"量子糾纏", "退款多久"}
    quantum = found["量子糾纏"]
    assert (quantum.count, quantum.zero, quantum.opens, quantum.reason) == (3, 3, 0, "无结果")
    assert set(quantum.variants) == {"量子纠缠", "量子 纠缠"}
    refund = found["退款多久"]
    assert (refund.count, refund.zero, refund.reason) == (1, 0, "有结果但无人打开")
    assert gaps.search_groups(kb.database)[0].query == "量子糾纏"  # most searched first
    assert quantum.last_seen < refund.last_seen  # the newer cli search does not count


@BOTH
def test_steps_of_typing_are_not_searches(kb):
    log(kb, ("量子", 0, 30, "api"), ("量子纠", 0, 29, "api"), ("量子纠缠", 0, 28, "api"))
    assert {g.query: g.count for g in gaps.search_groups(kb.database)} == {"量子纠缠": 1}


@BOTH
def test_a_dismissed_group_comes_back_only_when_searched_again(kb):
    log(kb, ("量子纠缠", 0, 60, "api"))
    key = gaps.query_key("量子纠缠")
    gaps.dismiss(kb.database, "search", key, actor="trainer1")
    assert groups(kb) == {}
    gaps.dismiss(kb.database, "search", key, actor="trainer1")  # twice: still one row
    log(kb, ("量子 纠缠", 0, 0, "api"))
    assert groups(kb)["量子 纠缠"].count == 2
    with pytest.raises(ValidationError):
        gaps.dismiss(kb.database, "other", key, actor="t")
    with pytest.raises(ValidationError):
        gaps.dismiss(kb.database, "search", " ", actor="t")


@BOTH
def test_the_window_is_bounded_and_old_entries_get_their_key(kb):
    log(kb, ("量子纠缠", 0, 40 * 86400, "api"), ("时光机", 0, 10, "api"))
    assert set(groups(kb)) == {"时光机"}  # 40 days ago is outside the window
    # an entry logged before the key column (0007) gets its key when first read
    kb.store.searches.add(
        [
            {
                "at": kb_now(),
                "q": "时光 机",
                "category": "",
                "tag": "",
                "hits": 0,
                "took_ms": 1.0,
                "via": "api",
            }
        ]  # fmt: skip
    )
    assert groups(kb)["时光 机"].count == 2


def kb_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


ANSWERED = [
    "发票怎么开",
    "退款要多久才能到账",
    "能开专票吗",
    "钱什么时候退回来",
    "客户来了多久要回复",
]
UNANSWERED = [
    "这个手机防水吗",
    "会员积分怎么兑换",
    "你们周六上班吗",
    "优惠券怎么用",
    "能便宜点吗",
    "多久发货",
]


def test_the_threshold_separates_answered_from_unanswered_questions(kb):
    answered = [core_gaps.best_answer(kb, q)[0] for q in ANSWERED]
    unanswered = [core_gaps.best_answer(kb, q)[0] for q in UNANSWERED]
    assert min(answered) > core_gaps.ANSWER_THRESHOLD > max(unanswered), (answered, unanswered)


@pytest.mark.parametrize(
    "text,question",
    [
        ("这个手机防水吗", True),
        ("发票怎么开", True),
        ("好的谢谢", False),
        ("在吗", False),
        ("[订单x]", False),
        ("我要退货", False),
        ("x" * 300 + "吗", False),
    ],  # fmt: skip
)
def test_customer_questions(text, question):
    assert core_gaps.is_question(text) is question


def conversation(cid: str, *customer: str) -> dict:
    turns = []
    for text in customer:
        turns += [{"role": "customer", "text": text}, {"role": "agent", "text": "您好，请稍等"}]
    return {"id": cid, "agent": "agent1", "turns": turns}


@BOTH
def test_unanswered_questions_of_audited_chats_are_found_once_and_grouped(kb):
    audits = AuditStore(kb.store)
    convs, _ = load_text(
        "\n".join(
            json.dumps(c, ensure_ascii=False)
            for c in [
                conversation("c1", "你好", "这个手机防水吗", "发票怎么开"),
                conversation("c2", "這個手機防水嗎？", "会员积分怎么兑换"),
            ]
        ),
        "chats.jsonl",
    )
    run_id = audits.create_run("夜班", convs, [], by="super1")
    services = SimpleNamespace(kb=kb)
    assert core_gaps.pending(services) == 0  # not checked yet
    audits.claim(run_id)
    audits.check(run_id, Checker())
    assert core_gaps.pending(services) == 2
    assert core_gaps.scan_transcripts(services, limit=1) == {
        "scanned": 1,
        "questions": 1,
        "left": 1,
    }
    assert core_gaps.scan_transcripts(services)["left"] == 0
    assert core_gaps.scan_transcripts(services) == {"scanned": 0, "questions": 0, "left": 0}
    found = {g.key: g for g in gaps.question_groups(kb.database)}
    water = found[gaps.query_key("这个手机防水吗")]
    assert water.count == 2 and water.query in ("这个手机防水吗", "這個手機防水嗎？")
    assert gaps.query_key("会员积分怎么兑换") in found
    assert gaps.query_key("发票怎么开") not in found  # the knowledge base answers it
    gaps.dismiss(kb.database, "transcript", water.key, actor="t")
    assert water.key not in {g.key for g in gaps.question_groups(kb.database)}


# -- feedback -------------------------------------------------------------------------


@BOTH
def test_one_vote_per_user_per_article_changeable_with_counts_and_comments(kb):
    store = kb.store
    first = feedback.vote(store, "product-refund", 1, "agent1", "useless", " 没写银行卡几天 ")
    assert first["created"] and (first["useful"], first["useless"], first["total"]) == (0, 1, 1)
    again = feedback.vote(store, "product-refund", 1, "agent1", "有用", "")
    assert not again["created"] and (again["useful"], again["useless"]) == (1, 0)
    feedback.vote(store, "product-refund", 2, "agent2", "没用", "太短")
    feedback.vote(store, "product-invoice", 2, "agent2", "useful")
    counts = feedback.counts(store, "product-refund")
    assert counts == {"useful": 1, "useless": 1, "total": 2, "useless_rate": 0.5}
    assert [c["comment"] for c in feedback.comments(store, "product-refund")] == ["太短"]
    assert feedback.my_vote(store, "product-refund", 1)["useful"] is True
    assert feedback.my_vote(store, "product-refund", 3) is None
    rows = feedback.summary(store, "useless_rate")
    assert [(r["article_id"], r["useless_rate"]) for r in rows] == [
        ("product-refund", 0.5),
        ("product-invoice", 0.0),
    ]
    assert rows[0]["title"] == "退款多久到账" and rows[0]["comments"] == 1
    assert [r["article_id"] for r in feedback.summary(store, "total")][0] == "product-refund"
    assert feedback.summary_count(store) == 2


@BOTH
def test_votes_are_checked(kb):
    store = kb.store
    with pytest.raises(ValidationError, match="请选择"):
        feedback.vote(store, "product-refund", 1, "a", "maybe")
    with pytest.raises(ValidationError, match="请选择"):
        feedback.vote(store, "product-refund", 1, "a", ["useful"])
    with pytest.raises(ValidationError, match="最多 500 个字"):
        feedback.vote(store, "product-refund", 1, "a", "useful", "长" * 501)
    with pytest.raises(NotFound):
        feedback.vote(store, "nope", 1, "a", "useful")
    with pytest.raises(ValidationError, match="已发布"):
        feedback.vote(store, "phrasing-draft", 1, "a", "useful")
    assert feedback.summary_count(store) == 0


# -- pages and API ---------------------------------------------------------------------


def test_agents_may_not_see_gaps_or_feedback_lists(app, users):
    agent = signed_in(app, users["agent"])
    for path in ("/gaps", "/feedback"):
        assert agent.get(path).status_code == 403
    for path in ("/gaps/dismiss", "/gaps/scan"):
        assert agent.post(path, data={"kind": "search", "key": "x"}).status_code == 403
    supervisor = signed_in(app, users["supervisor"])
    assert supervisor.get("/gaps").status_code == 403
    trainer = signed_in(app, users["trainer"])
    assert trainer.get("/gaps").status_code == 200
    assert trainer.get("/feedback").status_code == 200
    assert "内容缺口" in trainer.get("/").get_data(as_text=True)
    assert "内容缺口" not in agent.get("/").get_data(as_text=True)


@BOTH
def test_a_search_nobody_opened_shows_and_an_opened_one_does_not(app, users, kb):
    agent = signed_in(app, users["agent"])
    trainer = signed_in(app, users["trainer"])
    assert agent.get("/api/v1/search?q=量子纠缠").get_json()["total"] == 0
    hits = agent.get("/api/v1/search?q=发票怎么开").get_json()["hits"]
    assert hits[0]["url"].startswith("/articles/product-invoice?q=") and "pos=1" in hits[0]["url"]
    assert agent.get(hits[0]["url"]).status_code == 200  # the hit URL records the open
    agent.get("/api/v1/search?q=退款多久")
    assert (
        agent.post(
            "/api/v1/search/opened", json={"q": "退款多久", "id": "product-refund", "position": 1}
        ).status_code
        == 204
    )
    page = trainer.get("/gaps").get_data(as_text=True)
    shown = re.findall(r'class="gap-query">([^<]+)<', page)
    assert shown == ["量子纠缠"]
    link = re.search(r'class="new-article" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    editor = trainer.get(link).get_data(as_text=True)
    assert 'name="title" value="量子纠缠"' in editor
    assert re.search(r'name="similar"[^>]*>量子纠缠</textarea>', editor)
    key = gaps.query_key("量子纠缠")
    resp = trainer.post("/gaps/dismiss", data={"kind": "search", "key": key, "query": "量子纠缠"})
    assert resp.status_code == 302
    assert "量子纠缠" not in re.findall(
        r'class="gap-query">([^<]+)<', trainer.get("/gaps").get_data(as_text=True)
    )


def test_bad_open_records_are_refused_in_chinese(app, users):
    agent = signed_in(app, users["agent"])
    for body, field in (
        ({"id": "x"}, "q"),
        ({"q": "发票", "id": ""}, "id"),
        ({"q": "发票", "id": "x", "position": "1"}, "position"),
        ({"q": "发票", "id": "x", "extra": 1}, "extra"),
    ):
        resp = agent.post("/api/v1/search/opened", json=body)
        assert resp.status_code == 400 and field in resp.get_json()["error"]


@BOTH
def test_feedback_from_the_article_page_and_the_api_reaches_the_trainer(app, users, kb):
    agent = signed_in(app, users["agent"])
    trainer = signed_in(app, users["trainer"])
    page = agent.get("/articles/product-refund").get_data(as_text=True)
    assert "这篇文章有用吗" in page and "feedback-counts" not in page  # agents see no ratios
    resp = agent.post("/articles/product-refund/feedback", data={"useful": "", "comment": "x"})
    assert resp.status_code == 400 and "请选择「有用」或「没用」" in resp.get_data(as_text=True)
    resp = agent.post(
        "/articles/product-refund/feedback", data={"useful": "useless", "comment": "长" * 501}
    )
    text = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "最多 500 个字" in text and "长" * 501 in text  # kept
    resp = agent.post(
        "/articles/product-refund/feedback", data={"useful": "useless", "comment": "没写银行卡"}
    )
    assert resp.status_code == 302
    assert "你的评价：没用" in agent.get("/articles/product-refund").get_data(as_text=True)
    data = agent.post(
        "/api/v1/articles/product-invoice/feedback", json={"useful": "useful"}
    ).get_json()
    assert data["ok"] and data["useful"] == 1
    mine = agent.get("/api/v1/articles/product-invoice").get_json()["article"]["my_feedback"]
    assert mine["useful"] is True
    for missing in ("nope", "phrasing-draft"):  # a draft is as unknown to agents
        resp = agent.post(f"/api/v1/articles/{missing}/feedback", json={"useful": "useful"})
        assert resp.status_code == 404 and resp.get_json()["error"] == f"文章「{missing}」不存在"
        resp = agent.post(f"/articles/{missing}/feedback", data={"useful": "useful"})
        assert resp.status_code == 404
    article = trainer.get("/articles/product-refund").get_data(as_text=True)
    assert re.search(r'class="n-useless">1<', article) and "没写银行卡" in article
    listing = trainer.get("/feedback").get_data(as_text=True)
    assert re.findall(r'class="rate">([^<]+)<', listing) == ["100%", "0%"]


def test_the_scan_button_reports_what_it_found(app, users, kb):
    trainer = signed_in(app, users["trainer"])
    audits = AuditStore(kb.store)
    convs, _ = load_text(
        json.dumps(conversation("c1", "这个手机防水吗"), ensure_ascii=False), "chats.jsonl"
    )
    run_id = audits.create_run("x", convs, [], by="s")
    audits.claim(run_id)
    audits.check(run_id, Checker())
    assert "1 个已质检会话尚未分析" in trainer.get("/gaps").get_data(as_text=True)
    resp = trainer.post("/gaps/scan", follow_redirects=True)
    page = resp.get_data(as_text=True)
    assert "已分析 1 个质检会话，发现 1 个未能回答的客户问题" in page
    assert "这个手机防水吗" in page


def test_cli_scans_and_lists_the_gaps(kb, instance, tmp_path):
    log(kb, ("量子纠缠", 0, 5, "api"))
    chats = tmp_path / "chats.jsonl"
    chats.write_text(
        json.dumps(conversation("c1", "这个手机防水吗", "发票怎么开"), ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    run_cli("audit", "run", str(chats), instance=instance, check=True)
    out = run_cli("gaps", "--scan", "--json", instance=instance, check=True)
    body = json.loads(out.stdout)
    assert body["scanned"] == {"scanned": 1, "questions": 1, "left": 0}
    assert [g["query"] for g in body["searches"]] == ["量子纠缠"]
    assert [g["query"] for g in body["questions"]] == ["这个手机防水吗"]
    text = run_cli("gaps", instance=instance, check=True).stdout
    assert "量子纠缠" in text and "这个手机防水吗" in text
