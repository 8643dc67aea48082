"""知识库中有答案 (issue 13): a finding where the agent did not know, hedged or sent the
customer away links the published article that answers the customer's question;
stored with the finding, shown on the conversation page, in the API and the exports."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest

from coach.audits import AuditStore
from coach.checker import Checker
from coach.exports import FINDING_HEADER, AuditExport, Scope
from coach.transcripts import Conversation, Turn
from core.kb_answer import KbAnswers, label, question_before, triggers

from .conftest import FIXTURES, run_cli, signed_in

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

# the fixture knowledge base (tests/fixtures/articles) answers 退款多久到账 (product)
# and 客户来了多久要回复 (a norm article: for agents, not an answer to a customer)
ASKED = {
    "id": "c-kb",
    "agent": "agent1",
    "turns": [
        {"role": "customer", "text": "你好"},
        {"role": "agent", "text": "您好，很高兴为您服务"},
        {"role": "customer", "text": "我的退款多久到账?"},
        {"role": "customer", "text": "[订单x] 钱什么时候退回来"},
        {"role": "agent", "text": "这个我也不清楚呢"},
        {"role": "customer", "text": "好吧"},
        {"role": "agent", "text": "感谢您的咨询，再见"},
    ],
}
UNANSWERED = {
    "id": "c-none",
    "agent": "agent1",
    "turns": [
        {"role": "customer", "text": "你们周六上班吗?"},
        {"role": "agent", "text": "您好，这个我也不知道"},
        {"role": "customer", "text": "好的"},
        {"role": "agent", "text": "您好，大概三天左右吧"},
        {"role": "agent", "text": "感谢您的咨询，再见"},
    ],
}
NORM_ONLY = {
    "id": "c-norm",
    "agent": "agent1",
    "turns": [
        {"role": "customer", "text": "客户来了多久要回复?"},
        {"role": "agent", "text": "您好，这个不清楚哦"},
        {"role": "agent", "text": "感谢您的咨询，再见"},
    ],
}


def conversation(data: dict) -> Conversation:
    return Conversation(
        id=data["id"],
        agent=data["agent"],
        turns=[Turn(t["role"], t["text"]) for t in data["turns"]],
    )


def checked(kb, chats: list[dict], **options) -> tuple[AuditStore, int]:
    """An audit run of `chats`, checked with the answer finder of `kb`."""
    store = AuditStore(kb.store, annotate=KbAnswers(kb, **options).annotate)
    run_id = store.create_run("t", [conversation(c) for c in chats], [], by="t", reaudit=True)
    assert store.claim(run_id)
    store.check(run_id, Checker())
    return store, run_id


def findings_of(store: AuditStore, run_id: int, conv_id: str) -> list[dict]:
    item = next(i for i in store.items(run_id) if i["conv_id"] == conv_id)
    return store.item(item["id"])["findings"]


# -- which findings, which question ------------------------------------------------------


@pytest.mark.parametrize(
    ("finding", "fires"),
    [
        ({"category": "vague", "match": "不清楚"}, True),
        ({"category": "vague", "match": "不太了解"}, True),
        ({"category": "vague", "match": "大概"}, True),  # hedged where the KB is definite
        ({"category": "improper", "match": "不归我管"}, True),
        ({"category": "improper", "match": "你去找"}, True),
        ({"category": "improper", "match": "你自己去查"}, True),
        ({"category": "improper", "match": "保证"}, False),  # a promise sends nobody away
        ({"category": "improper", "match": "爱买不买"}, False),
        ({"category": "filler", "match": "哦"}, False),
        ({"category": "no_closing", "match": ""}, False),
    ],
)
def test_which_findings_look_for_an_answer(finding, fires):
    assert triggers(finding) is fires


def test_the_question_is_the_customer_turns_right_before():
    turns = conversation(ASKED).turns
    assert question_before(turns, 4) == "我的退款多久到账? 钱什么时候退回来"  # placeholders out
    assert question_before(turns, 6) == "好吧"
    assert question_before(turns, 1) == "你好"
    # the agent's own turns in between are skipped; nothing before: no question
    turns = [Turn("customer", "发票怎么开"), Turn("agent", "稍等"), Turn("agent", "不清楚")]
    assert question_before(turns, 2) == "发票怎么开"
    assert question_before([Turn("agent", "不清楚")], 0) == ""
    assert question_before([Turn("customer", "问" * 500), Turn("agent", "不知道")], 1) == "问" * 200


# -- the audit stores the link -------------------------------------------------------------


@BOTH
def test_a_finding_links_the_article_that_answers_the_question(kb):
    store, run_id = checked(kb, [ASKED, UNANSWERED, NORM_ONLY])
    hedge = next(f for f in findings_of(store, run_id, "c-kb") if f["rule"] == "vague-hedge")
    answer = hedge["kb_answer"]
    assert answer["id"] == "product-refund" and answer["title"] == "退款多久到账"
    assert answer["score"] >= 15 and answer["question"] == "我的退款多久到账? 钱什么时候退回来"
    assert label(answer) == "知识库中可能有答案：《退款多久到账》"
    linked = [f["rule"] for f in findings_of(store, run_id, "c-kb") if "kb_answer" in f]
    assert linked == ["vague-hedge"]  # not the greeting or closing findings
    # no article answers 周六上班; 好的 asks nothing; a norm article is for the agents
    for conv_id in ("c-none", "c-norm"):
        found = findings_of(store, run_id, conv_id)
        assert any(f["category"] == "vague" for f in found)
        assert not any("kb_answer" in f for f in found), conv_id
    # not written to the search log: no agent searched
    kb.flush_search_log()
    assert not any(q["q"].startswith("我的退款") for q in kb.store.top_queries(100))


@BOTH
def test_an_article_under_the_threshold_is_no_answer(kb):
    store, run_id = checked(kb, [ASKED], threshold=10_000)
    assert not any("kb_answer" in f for f in findings_of(store, run_id, "c-kb"))


def test_a_draft_article_answers_nobody(kb):
    from kb.models import Article

    def article(slug: str, title: str, similar: list[str], status: str) -> Article:
        body = f"{title}：周六周日照常上班，客服 9:00 至 21:00 在线，发票随货寄出。"
        return Article(
            id=f"product-{slug}", title=title, category="product", body=body,
            similar=similar, status=status,
        )  # fmt: skip

    # both saved before anything is searched (a reader takes up writes within 0.5 s)
    kb.save(article("weekend", "周六上班吗", ["你们周六上班吗", "周末有人吗"], "draft"))
    kb.save(article("paper", "纸质发票怎么寄", ["纸质发票什么时候寄", "发票随货吗"], "published"))
    paper = {
        "id": "c-paper",
        "agent": "agent1",
        "turns": [
            {"role": "customer", "text": "纸质发票什么时候寄?"},
            {"role": "agent", "text": "您好，这个我不太清楚"},
            {"role": "agent", "text": "感谢您的咨询，再见"},
        ],
    }
    store, run_id = checked(kb, [UNANSWERED, paper])
    assert not any("kb_answer" in f for f in findings_of(store, run_id, "c-none"))
    hedge = next(f for f in findings_of(store, run_id, "c-paper") if f["category"] == "vague")
    assert hedge["kb_answer"]["id"] == "product-paper"


@BOTH
def test_the_export_names_the_article(kb):
    store, run_id = checked(kb, [ASKED])
    text = "".join(AuditExport(kb.database, Scope.of(run_id=run_id)).csv("findings"))
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == FINDING_HEADER and FINDING_HEADER[-1] == "知识库中可能有答案"
    linked = [r for r in rows[1:] if r[-1]]
    assert [r[-1] for r in linked] == ["《退款多久到账》（product-refund）"]
    assert linked[0][6] == "不清楚"


# -- every surface: the page, the API, the CLI ---------------------------------------------


def wait_done(client, run_id: int) -> dict:
    for _ in range(400):
        body = client.get(f"/api/v1/audits/{run_id}").get_json()
        if body["run"]["status"] not in ("queued", "running"):
            return body
        time.sleep(0.05)
    raise AssertionError(body)


@BOTH
def test_the_page_and_the_api_show_the_article(app, users):
    sup = signed_in(app, users["supervisor"])
    token = sup.environ_base["HTTP_X_CSRFTOKEN"]
    data = {"csrf_token": token, "name": "kb"}
    data["files"] = [(io.BytesIO(json.dumps(ASKED, ensure_ascii=False).encode()), "kb.jsonl")]
    resp = sup.post("/audits", data=data, content_type="multipart/form-data")
    run_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    item_id = wait_done(sup, run_id)["items"][0]["id"]

    page = sup.get(f"/audits/items/{item_id}").get_data(as_text=True)
    assert "知识库中可能有答案：" in page and 'href="/articles/product-refund"' in page
    assert "《退款多久到账》" in page

    body = sup.get(f"/api/v1/audits/items/{item_id}").get_json()
    assert body["ok"] and body["item"]["conv_id"] == "c-kb"
    linked = [f for f in body["item"]["findings"] if "kb_answer" in f]
    assert [f["kb_answer"]["id"] for f in linked] == ["product-refund"]
    assert "claimed_by" not in body["item"]  # the workers' bookkeeping stays inside

    agent = signed_in(app, users["agent"])  # agent1: the conversation's agent
    assert agent.get(f"/api/v1/audits/items/{item_id}").status_code == 200
    trainer = signed_in(app, users["trainer"])  # someone else's: it does not exist
    assert trainer.get(f"/api/v1/audits/items/{item_id}").status_code == 404
    assert sup.get("/api/v1/audits/items/999").status_code == 404


def test_the_cli_audit_links_the_article(instance, tmp_path):
    run_cli("import", str(FIXTURES / "articles"), instance=instance, check=True)
    chats = tmp_path / "chats.jsonl"
    chats.write_text(json.dumps(ASKED, ensure_ascii=False) + "\n", encoding="utf-8")
    run_cli("audit", "run", str(chats), instance=instance, check=True)
    out = tmp_path / "findings.csv"
    run_cli(
        "audit", "export", "1", "--format", "csv", "-o", str(out), instance=instance, check=True
    )
    assert "《退款多久到账》（product-refund）" in out.read_text(encoding="utf-8-sig")
