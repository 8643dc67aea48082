"""我的质检 (one agent across runs: latest audit per conversation, mean, weekly trend,
habits with their own sentences, filters), the trend chart, and the forms whose
required fields and reasons the server checks (appeal reason, rejection reason,
upload files) on the pages and the API."""

from __future__ import annotations

import io
import json
import time
import xml.etree.ElementTree as ET

import pytest

from coach.audits import AuditError, AuditStore
from coach.checker import Checker
from coach.transcripts import load_text
from core.agent_audits import AgentAudits, AgentFilters, parse_filters, weekly
from core.charts import ChartPoint, line_chart_svg

from .conftest import signed_in

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

WEEK1 = "2026-11-03T09:00:00.000+00:00"  # a Tuesday: week of Monday 11-02
WEEK2 = "2026-11-12T15:30:00.000+00:00"  # a Thursday: week of Monday 11-09


def chat(conv_id: str, agent: str, *agent_lines: str) -> dict:
    turns = [{"role": "customer", "text": "我的快递到哪了"}]
    turns += [{"role": "agent", "text": line} for line in agent_lines]
    return {"id": conv_id, "agent": agent, "turns": turns}


RUN1 = [
    chat("c-a", "agent1", "哦", "差不多明天能到吧"),
    chat("c-b", "agent1", "您好，很高兴为您服务", "差不多后天到"),
    chat("c-x", "bob", "哦"),
]
RUN2 = [
    chat("c-a", "agent1", "哦", "差不多明天能到吧"),  # the same conversation again
    chat(
        "c-c", "agent1", "您好，很高兴为您服务，请问有什么可以帮您？", "好的，已为您查询，明天送达"
    ),
]


def jsonl(records) -> str:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n"


def make_run(store: AuditStore, name: str, records, created_at: str, reaudit: bool = False) -> int:
    convs, _ = load_text(jsonl(records), f"{name}.jsonl")
    run_id = store.create_run(name, convs, [], by="super1", created_at=created_at, reaudit=reaudit)
    assert store.claim(run_id)
    assert store.check(run_id, Checker())["status"] == "done"
    return run_id


def two_weeks(store: AuditStore) -> tuple[int, int]:
    # re-audited on purpose: c-a is in both weeks (else skipped as a duplicate)
    return (
        make_run(store, "第一周", RUN1, WEEK1),
        make_run(store, "第二周", RUN2, WEEK2, reaudit=True),
    )


def scores(store: AuditStore, run_id: int) -> dict[str, float]:
    return {i["conv_id"]: i["score"] for i in store.items(run_id, agent="agent1")}


# -- library ---------------------------------------------------------------------------


@BOTH
def test_latest_audit_per_conversation_mean_trend_and_habits(audits):
    run1, run2 = two_weeks(audits)
    assert audits.run(run1)["created_at"] == WEEK1  # dated as asked
    s1, s2 = scores(audits, run1), scores(audits, run2)
    view = AgentAudits(audits.database).overview("agent1", AgentFilters())
    rows = view["conversations"]
    assert sorted(r["conv_id"] for r in rows) == ["c-a", "c-b", "c-c"]  # c-a once
    by_id = {r["conv_id"]: r for r in rows}
    assert by_id["c-a"]["run_id"] == run2 and by_id["c-a"]["audits"] == 2
    assert view["conversation_count"] == 3
    latest = [s2["c-a"], s1["c-b"], s2["c-c"]]
    summary = view["summary"]
    assert summary["conversations"] == 3 and summary["audits"] == 4
    assert summary["mean_score"] == round(sum(latest) / 3, 1)
    assert summary["agent_turns"] == 6  # two agent turns in each of the three
    assert summary["findings_per_100_turns"] == round(100 * summary["findings"] / 6, 1)
    assert view["weeks"] == [
        {"week": "2026-11-02", "conversations": 1, "mean_score": s1["c-b"]},
        {
            "week": "2026-11-09",
            "conversations": 2,
            "mean_score": round((s2["c-a"] + s2["c-c"]) / 2, 1),
        },
    ]
    assert view["chart"].count('class="point"') == 2
    habits = {h["rule"]: h for h in view["habits"]}
    hedge = habits["vague-hedge"]
    assert (hedge["count"], hedge["conversations"]) == (2, 2)  # c-a (latest), c-b
    assert len(hedge["examples"]) == 2
    texts = {e["text"] for e in hedge["examples"]}
    assert texts == {"差不多明天能到吧", "差不多后天到"}
    assert all(e["flagged"] == "差不多" and e["before"] == "" for e in hedge["examples"])
    assert hedge["script"]  # the standard script to use instead
    assert "filler-bare" in habits and habits["filler-bare"]["examples"][0]["text"] == "哦"
    # bob's conversations are not agent1's
    assert all(e["item_id"] != 0 for h in view["habits"] for e in h["examples"])
    assert (
        AgentAudits(audits.database).overview("bob", AgentFilters())["summary"]["conversations"]
        == 1
    )


@BOTH
def test_filters_period_score_and_findings(audits):
    run1, run2 = two_weeks(audits)
    s2 = scores(audits, run2)
    overview = AgentAudits(audits.database).overview
    f, errors = parse_filters({"from": "2026-11-09", "to": "2026-11-15"})
    assert errors == {}
    view = overview("agent1", f)
    assert sorted(r["conv_id"] for r in view["conversations"]) == ["c-a", "c-c"]
    assert view["summary"]["audits"] == 2 and len(view["weeks"]) == 1
    f, _ = parse_filters({"to": "2026-11-08"})  # week 1 only: c-a's audit then counts
    view = overview("agent1", f)
    assert sorted(r["conv_id"] for r in view["conversations"]) == ["c-a", "c-b"]
    f, _ = parse_filters({"findings": "1"})
    view = overview("agent1", f)
    assert all(r["nfindings"] > 0 for r in view["conversations"])
    assert view["summary"]["conversations"] == 3  # the list is filtered, not the figures
    assert view["conversation_count"] == len(view["conversations"])
    f, _ = parse_filters({"min": str(s2["c-c"]), "max": "100"})
    assert [r["conv_id"] for r in overview("agent1", f)["conversations"]] == ["c-c"]


def test_filter_errors_are_chinese_and_by_field():
    f, errors = parse_filters({"from": "昨天", "to": "2026-13-01", "min": "-1", "max": "abc"})
    assert set(errors) == {"from", "to", "min", "max"}
    assert "年-月-日" in errors["from"] and "0 到 100" in errors["min"]
    assert f.since is None and f.min_score is None and f.raw["from"] == "昨天"
    _, errors = parse_filters({"from": "2026-11-10", "to": "2026-11-01", "min": "90", "max": "80"})
    assert errors == {"to": "结束日期不能早于开始日期", "max": "最高分不能低于最低分"}


@BOTH
def test_an_accepted_appeal_leaves_the_habits(audits):
    _, run2 = two_weeks(audits)
    item = next(i for i in audits.items(run2) if i["conv_id"] == "c-a")
    stored = audits.item(item["id"])["findings"]
    n = next(k for k, f in enumerate(stored) if f["rule"] == "filler-bare")
    appeal = audits.appeal(item["id"], n, "顾客还在输入", by="agent1")
    audits.decide(appeal, True, "", by="super1", pack=Checker().pack)
    habits = {
        h["rule"]: h for h in AgentAudits(audits.database).habits("agent1", AgentFilters().period())
    }
    assert "filler-bare" not in habits  # c-b and c-c have no bare 哦; c-a's is waived


@BOTH
def test_a_rejection_needs_a_reason_and_an_appeal_a_reason(audits):
    run1 = make_run(audits, "一", RUN1[:1], WEEK1)
    item = audits.items(run1)[0]
    with pytest.raises(AuditError) as empty:
        audits.appeal(item["id"], 0, " \n ", by="agent1")
    assert (empty.value.field, str(empty.value)) == ("reason", "请填写申诉理由")
    appeal = audits.appeal(item["id"], 0, "顾客在输入", by="agent1")
    with pytest.raises(AuditError) as bare:
        audits.decide(appeal, False, "  ", by="super1", pack=Checker().pack)
    assert bare.value.field == "note" and "驳回" in str(bare.value)
    assert audits.get_appeal(appeal)["status"] == "open"  # nothing was decided
    audits.decide(appeal, False, "「哦」单独一句就是敷衍", by="super1", pack=Checker().pack)
    assert audits.get_appeal(appeal)["status"] == "rejected"


def test_weeks_fold_days_and_leave_gaps():
    days = [("2026-11-02", 1, 80.0), ("2026-11-08", 1, 90.0), ("2026-11-23", 2, 150.0)]
    assert weekly(days) == [
        {"week": "2026-11-02", "conversations": 2, "mean_score": 85.0},
        {"week": "2026-11-09", "conversations": 0, "mean_score": None},
        {"week": "2026-11-16", "conversations": 0, "mean_score": None},
        {"week": "2026-11-23", "conversations": 2, "mean_score": 75.0},
    ]
    assert weekly([]) == []


def test_chart_is_wellformed_labelled_and_escaped():
    svg = line_chart_svg(
        [
            ChartPoint("11-02", 72.5, "3 个会话"),
            ChartPoint("<b>", None),
            ChartPoint("11-16", 90, '<script>"x"</script>'),
        ],
        title="客服 <i>甲</i> 每周平均分",
    )
    root = ET.fromstring(svg)  # well-formed XML: every label escaped
    ns = {"s": "http://www.w3.org/2000/svg"}
    points = root.findall("s:g[@class='point']", ns)
    assert [(p.get("data-label"), p.get("data-value")) for p in points] == [
        ("11-02", "72.5"),
        ("11-16", "90"),
    ]
    assert [t.text for t in root.findall("s:text[@class='x-tick']", ns)] == [
        "11-02",
        "<b>",
        "11-16",
    ]
    assert {t.text for t in root.findall("s:text[@class='axis-label']", ns)} == {"平均分", "周"}
    assert "<script" not in svg and "style=" not in svg
    assert line_chart_svg([ChartPoint("a", None)], title="t") == ""
    one = ET.fromstring(line_chart_svg([ChartPoint("11-02", 100)], title="t"))
    assert len(one.findall("s:g[@class='point']", ns)) == 1


# -- web -------------------------------------------------------------------------------


def web_audits(kb) -> AuditStore:
    return AuditStore(kb.store)


def logged_in(app, username):
    c = signed_in(app, username)
    return c, c.environ_base["HTTP_X_CSRFTOKEN"]


@BOTH
def test_my_audits_page_and_api(app, kb, users):
    store = web_audits(kb)
    two_weeks(store)
    agent, _ = logged_in(app, users["agent"])
    page = agent.get("/my/audits").get_data(as_text=True)
    assert page.count('href="/audits/items/') >= 3
    assert page.count(">c-a</a>") == 1 and "c-x" not in page  # bob's is not shown
    assert 'class="mean-score"' in page and "<svg" in page and page.count('class="point"') == 2
    assert (
        "常犯的问题" in page and "<mark>差不多</mark>后天到" in page and "建议改用标准话术" in page
    )
    body = agent.get("/api/v1/my/audits?findings=1").get_json()
    assert body["ok"] and body["summary"]["conversations"] == 3 and "chart" not in body
    assert len(body["weeks"]) == 2 and body["habits"][0]["examples"]
    # filters checked by the server, next to their field, input kept
    resp = agent.get("/my/audits?from=昨天&min=120")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert 'data-field="from">开始日期应为「年-月-日」' in page and 'value="昨天"' in page
    assert 'data-field="min">最低分应为 0 到 100 之间的数字' in page
    bad = agent.get("/api/v1/my/audits?max=x")
    assert bad.status_code == 400 and bad.get_json()["error"] == "最高分应为 0 到 100 之间的数字"
    # an agent sees only their own; a supervisor may look at an agent's
    assert agent.get("/my/audits?agent=bob").status_code == 403
    assert agent.get("/api/v1/my/audits?agent=bob").status_code == 403
    sup, _ = logged_in(app, users["supervisor"])
    page = sup.get("/my/audits?agent=agent1").get_data(as_text=True)
    assert "客服「agent1」的质检" in page and ">c-a</a>" in page
    assert 'name="agent" value="agent1"' in page  # a supervisor picks the agent on the page
    assert 'name="agent"' not in agent.get("/my/audits").get_data(as_text=True)
    assert sup.get("/api/v1/my/audits?agent=bob").get_json()["summary"]["conversations"] == 1


@BOTH
def test_forms_refuse_missing_reasons_next_to_the_field(app, kb, users):
    store = web_audits(kb)
    run1 = make_run(store, "一", RUN1[:1], WEEK1)
    item = store.items(run1)[0]["id"]
    agent, atok = logged_in(app, users["agent"])
    url = f"/audits/items/{item}/appeals"
    resp = agent.post(url, data={"csrf_token": atok, "finding": "0", "reason": "  "})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'data-field="reason">请填写申诉理由' in page
    assert '<details class="appeal-form" open>' in page and "novalidate" in page
    assert " required" not in page
    long = "理" * 1001
    resp = agent.post(url, data={"csrf_token": atok, "finding": "0", "reason": long})
    assert resp.status_code == 413 and f">{long}</textarea>" in resp.get_data(as_text=True)
    api = agent.post(f"/api/v1/audits/items/{item}/appeals", json={"finding": 0, "reason": ""},
                     headers={"X-CSRFToken": atok})  # fmt: skip
    assert api.status_code == 400
    assert api.get_json() == {"ok": False, "error": "请填写申诉理由", "status": 400}
    api = agent.post(f"/api/v1/audits/items/{item}/appeals",
                     json={"finding": 0, "reason": "顾客在输入"}, headers={"X-CSRFToken": atok})  # fmt: skip
    assert api.status_code == 201
    appeal_id = api.get_json()["appeal_id"]

    sup, stok = logged_in(app, users["supervisor"])
    resp = sup.post(f"/appeals/{appeal_id}", data={"csrf_token": stok, "decision": "reject"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'data-field="note">驳回申诉时请填写理由' in page
    resp = sup.post(f"/appeals/{appeal_id}",
                    data={"csrf_token": stok, "decision": "reject", "note": " ", "back": "item"})  # fmt: skip
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "会话 c-a" in page and "驳回申诉时请填写理由" in page
    api = sup.post(f"/api/v1/appeals/{appeal_id}", json={"decision": "reject"},
                   headers={"X-CSRFToken": stok})  # fmt: skip
    assert api.status_code == 400 and api.get_json()["error"].startswith("驳回申诉时请填写理由")
    assert store.get_appeal(appeal_id)["status"] == "open"
    api = sup.post(f"/api/v1/appeals/{appeal_id}", json={"decision": "reject", "note": "是敷衍"},
                   headers={"X-CSRFToken": stok})  # fmt: skip
    assert api.status_code == 200 and api.get_json()["appeal"]["status"] == "rejected"
    assert "已驳回" in agent.get("/my/audits").get_data(as_text=True)

    # the upload form: no file → the message by the file field, the name kept
    resp = sup.post("/audits", data={"csrf_token": stok, "name": "夜班"},
                    content_type="multipart/form-data")  # fmt: skip
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'data-field="files">请选择要质检的会话记录文件' in page
    assert 'value="夜班"' in page
    resp = sup.post("/audits", data={"csrf_token": stok, "files": [(io.BytesIO(b"x"), "a.exe")]},
                    content_type="multipart/form-data")  # fmt: skip
    assert resp.status_code == 415 and 'data-field="files">文件「a.exe」' in resp.get_data(
        as_text=True
    )
    api = sup.post("/audits", data={"csrf_token": stok}, headers={"Accept": "application/json"},
                   content_type="multipart/form-data")  # fmt: skip
    assert api.status_code == 400 and api.get_json()["error"] == "请选择要质检的会话记录文件"


def test_many_audits_take_a_handful_of_queries(app, kb, users):
    """Hundreds of audits of one agent: the page's statements do not grow with them."""
    store = web_audits(kb)
    # each its own content: identical chats would be one conversation (duplicates)
    records = [chat(f"c-{n}", "agent1", "哦", f"差不多{n}号到吧") for n in range(300)]
    make_run(store, "大批", records, WEEK1)
    make_run(store, "再一批", records[:150], WEEK2, reaudit=True)
    from sqlalchemy import event

    engine = kb.store.database.engine
    statements = []

    def count(*args):
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        agent, _ = logged_in(app, users["agent"])
        statements.clear()
        start = time.perf_counter()
        page = agent.get("/my/audits").get_data(as_text=True)
        took = time.perf_counter() - start
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert "共 300 个会话" in page and "共质检 450 次" in page
    print(f"/my/audits over 450 audits: {len(statements)} statements, {took * 1000:.0f} ms")
    assert len(statements) < 40
