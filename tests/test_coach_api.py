"""Coach endpoints over HTTP (Flask test client, real rule pack)."""

import pytest

from .conftest import csrf_token, signed_in


@pytest.fixture
def supervisor(app, users):
    return signed_in(app, users["supervisor"])


@pytest.fixture
def agent(client):
    client.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(client, "/")
    return client


CONV = {
    "id": "c1",
    "agent": "小王",
    "turns": [
        {"role": "customer", "text": "我的快递什么时候到"},
        {"role": "agent", "text": "哦"},
        {"role": "agent", "text": "差不多明天吧"},
    ],
}


def test_check_reply_flags_a_vague_draft(agent):
    resp = agent.post("/api/v1/coach/check-reply", json={"text": "大概三天到吧"})
    data = resp.get_json()
    assert resp.status_code == 200 and data["ok"] and not data["clean"]
    f = data["findings"][0]
    assert f["category"] == "vague" and f["match"] == "大概" and f["span"] == [0, 2]
    assert f["suggestion"]


def test_check_reply_clean_draft(agent):
    data = agent.post(
        "/api/v1/coach/check-reply",
        json={"text": "您好，您的订单预计明天18点前送达，请问还有其他可以帮您的吗？"},
    ).get_json()
    assert data["clean"] is True and data["findings"] == []


def test_check_reply_uses_context_for_holds(agent):
    ctx = [
        {"role": "customer", "text": "在吗"},
        {"role": "agent", "text": "您好，请问有什么可以帮您？"},
        {"role": "customer", "text": "帮我查下订单"},
    ]
    data = agent.post("/api/v1/coach/check-reply", json={"text": "稍等", "context": ctx}).get_json()
    assert [f["category"] for f in data["findings"]] == ["wait_no_apology"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"text": 3}, 400, "text"),
        ({}, 400, "text"),
        ({"text": "好", "context": "x"}, 400, "context"),
        ({"text": "好" * 6000}, 413, "过长"),
        ([1, 2], 400, "对象"),
        ({"text": "好", "position": "start"}, 400, "position"),
        ({"text": "好", "position": ["opening"]}, 400, "position"),
    ],
)
def test_check_reply_validation_names_the_field(agent, body, status, needle):
    resp = agent.post("/api/v1/coach/check-reply", json=body)
    assert resp.status_code == status
    data = resp.get_json()
    assert set(data) == {"ok", "error", "status"} and needle in data["error"]


def categories(agent, body):
    data = agent.post("/api/v1/coach/check-reply", json=body).get_json()
    assert data["ok"], data
    return {f["category"] for f in data["findings"]}


def test_check_reply_mid_chat_draft_gets_no_greeting_or_closing_finding(agent):
    # a draft without context, position or greeting: mid-chat unless said otherwise
    assert categories(agent, {"text": "这个差不多吧，我也不清楚哦"}) == {"vague"}
    assert categories(agent, {"text": "好的", "position": "middle"}) == set()
    ctx = [{"role": "customer", "text": "我的快递什么时候到"}]
    assert categories(agent, {"text": "好的", "context": ctx}) == set()


def test_check_reply_position_opening_and_closing(agent):
    assert categories(agent, {"text": "好的", "position": "opening"}) == {"no_greeting"}
    assert categories(agent, {"text": "您好，请问有什么可以帮您？", "position": "opening"}) == set()
    # not the first agent turn: no greeting expected, even when marked as opening
    ctx = [
        {"role": "customer", "text": "在吗"},
        {"role": "agent", "text": "您好，请问有什么可以帮您？"},
        {"role": "customer", "text": "好的"},
    ]
    assert categories(agent, {"text": "好的", "context": ctx, "position": "opening"}) == set()
    assert categories(agent, {"text": "好的", "context": ctx, "position": "closing"}) == {
        "no_closing"
    }
    assert categories(agent, {"text": "好的", "position": "closing"}) == {"no_closing"}
    closing = "请问还有其他可以帮您的吗？感谢您的耐心，祝您生活愉快！"
    assert categories(agent, {"text": closing, "context": ctx, "position": "closing"}) == set()


def test_check_reply_needs_json(agent):
    resp = agent.post("/api/v1/coach/check-reply", data="text=x")
    assert resp.status_code == 415


def test_supervisor_checks_a_batch_with_a_broken_record(supervisor):
    resp = supervisor.post("/api/v1/coach/check", json={"conversations": [CONV, {"turns": 5}]})
    data = resp.get_json()
    assert resp.status_code == 200 and data["ok"]
    (conv,) = data["conversations"]
    assert conv["id"] == "c1" and conv["score"] < 100
    assert {f["category"] for f in conv["findings"]} >= {"filler", "vague"}
    assert data["errors"] and data["errors"][0]["line"] == 2
    assert data["agents"][0]["agent"] == "小王"


def test_agents_may_not_audit(agent):
    assert agent.post("/api/v1/coach/check", json=CONV).status_code == 403


def test_findings_carry_the_standard_script_that_replaces_them(agent):
    data = agent.post("/api/v1/coach/check-reply", json={"text": "大概三天到吧"}).get_json()
    script = data["findings"][0]["script"]
    assert script["script_id"].startswith("confirm-") and "预计" in script["text"]


def test_deeply_nested_json_is_a_clear_400(supervisor):
    body = "[" * 100000 + "]" * 100000
    resp = supervisor.post(
        "/api/v1/coach/check", data=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400
    assert resp.get_json() == {"ok": False, "error": "请求体 JSON 嵌套过深", "status": 400}
