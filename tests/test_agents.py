"""Agents over time (/agents, /agents/<name>): the team ranking for a month with the
trend against the month before and the KPI figure 咨询工作标准度 (5 × mean ÷ 100),
one agent per day / week / month with findings per 100 agent turns by category,
the chart and the habits; a conversation re-audited counts once; roles."""

from __future__ import annotations

import pytest

from coach.audits import AuditStore
from coach.checker import Checker
from core.agent_trends import (
    AgentTrends,
    kpi_points,
    month_period,
    parse_team_args,
    previous_month,
    trend_arrow,
)

from .conftest import signed_in
from .test_my_audits import chat, make_run

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

OCT = "2026-10-28T09:00:00.000+00:00"  # week of Monday 10-26
NOV1 = "2026-11-03T09:00:00.000+00:00"  # week of Monday 11-02
NOV2 = "2026-11-12T15:30:00.000+00:00"  # week of Monday 11-09

RUN_OCT = [
    chat("o-1", "agent1", "您好，很高兴为您服务", "好的，已为您查询，明天送达"),
    chat("o-2", "bob", "哦"),
]
RUN_NOV1 = [
    chat("n-1", "agent1", "哦", "差不多明天能到吧"),
    chat("n-2", "agent1", "您好，很高兴为您服务", "差不多后天到"),
    chat("n-3", "bob", "您好，很高兴为您服务，请问有什么可以帮您？", "好的，已为您查询，明天送达"),
]
RUN_NOV2 = [
    chat("n-1", "agent1", "哦", "差不多明天能到吧"),  # the same conversation again: skipped
    chat("n-4", "agent1", "您好，很高兴为您服务，请问有什么可以帮您？", "好的，明天送达"),
]


def three_runs(store: AuditStore) -> list[int]:
    return [
        make_run(store, "十月", RUN_OCT, OCT),
        make_run(store, "十一月一", RUN_NOV1, NOV1),
        make_run(store, "十一月二", RUN_NOV2, NOV2),
    ]


def latest_items(store: AuditStore, agent: str, month: str) -> list[dict]:
    """The agent's latest audit of each conversation among runs of the month."""
    latest: dict[str, dict] = {}
    for run in sorted(store.runs(), key=lambda r: r["id"]):
        if run["created_at"][:7] != month:
            continue
        for item in store.items(run["id"], agent=agent):
            latest[item["conv_id"]] = item
    return list(latest.values())


# -- library ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mean", "points"),
    [(100, 5.0), (0, 0.0), (85.0, 4.3), (84.9, 4.2), (91.0, 4.6), (72.3, 3.6), (None, None)],
)
def test_kpi_points_on_the_five_point_weight(mean, points):
    assert kpi_points(mean) == points


def test_months_and_trend_words():
    assert month_period("2026-12").before == "2027-01-01"
    assert month_period("2026-02").since == "2026-02-01"
    assert previous_month("2026-01") == "2025-12"
    assert previous_month("2026-11") == "2026-10"
    for bad in ("2026-13", "2026-1", "11-2026", "", "2026-11-01"):
        with pytest.raises(ValueError):
            month_period(bad)
    assert trend_arrow(90, 80)[0] == "↑"
    assert trend_arrow(80, 90) == ("↓", "比上月低 10")
    assert trend_arrow(80.5, 80)[0] == "→"
    assert trend_arrow(80, None) == ("", "上月无数据")
    args, errors = parse_team_args({"month": "2026/11", "sort": "evil"}, ["2026-10"])
    assert errors == {"month": "月份应为「年-月」，例如 2026-11"}
    assert args == {"month": "2026-10", "sort": "score", "order": "desc"}


@BOTH
def test_team_ranking_counts_a_conversation_once_with_trend_and_kpi(audits):
    three_runs(audits)
    t = AgentTrends(audits.database)
    assert t.months() == ["2026-11", "2026-10"]
    team = {a["agent"]: a for a in t.team("2026-11")}
    mine = latest_items(audits, "agent1", "2026-11")
    assert len(mine) == 3  # n-1 (twice), n-2, n-4
    mean = round(sum(i["score"] for i in mine) / 3, 1)
    a1 = team["agent1"]
    assert (a1["conversations"], a1["mean_score"]) == (3, mean)
    assert a1["kpi"] == kpi_points(mean)
    oct_mean = latest_items(audits, "agent1", "2026-10")[0]["score"]
    assert a1["previous_mean"] == oct_mean
    assert a1["trend"] == ("↓" if mean <= oct_mean - 1 else "↑" if mean >= oct_mean + 1 else "→")
    turns = sum(i["agent_turns"] for i in mine)
    findings = sum(
        len([f for f in audits.item(i["id"])["findings"] if not f.get("waived")]) for i in mine
    )
    assert a1["findings_per_100_turns"] == round(100 * findings / turns, 1)
    # sorted by mean score, best first by default; ascending when asked
    ranked = t.team("2026-11")
    assert [a["mean_score"] for a in ranked] == sorted(
        (a["mean_score"] for a in ranked), reverse=True
    )
    assert [a["rank"] for a in ranked] == [1, 2]
    assert [a["agent"] for a in t.team("2026-11", sort="agent", order="asc")] == ["agent1", "bob"]
    assert t.team("2026-09") == []


@BOTH
def test_one_agent_per_day_week_month_with_categories(audits):
    three_runs(audits)
    t = AgentTrends(audits.database)
    view, errors = t.agent("agent1", {"by": "week"})
    assert errors == {}
    assert [r["bucket"] for r in view["rows"]] == ["2026-10-26", "2026-11-02", "2026-11-09"]
    # n-1 uploaded again on 11-12 is skipped as a duplicate: it counts in 11-02 only
    assert [r["conversations"] for r in view["rows"]] == [1, 2, 1]
    assert "vague" in view["categories"]
    week2 = view["rows"][1]
    assert week2["by_category"]["vague"] == round(100 * 2 / week2["agent_turns"], 1)
    assert view["chart"].count('class="point"') == 3
    months = {m["bucket"]: m for m in view["months"]}
    assert set(months) == {"2026-10", "2026-11"}
    assert months["2026-11"]["kpi"] == kpi_points(months["2026-11"]["mean_score"])
    by_day, _ = t.agent("agent1", {"by": "day", "from": "2026-11-01"})
    assert [r["bucket"] for r in by_day["rows"]] == ["2026-11-03", "2026-11-12"]
    by_month, _ = t.agent("agent1", {"by": "month"})
    assert [r["bucket"] for r in by_month["rows"]] == ["2026-10", "2026-11"]
    assert by_month["chart"].count('class="point"') == 2
    habits = {h["rule"]: h for h in view["habits"]}
    assert any(e["flagged"] == "差不多" for h in habits.values() for e in h["examples"])
    _, errors = t.agent("agent1", {"from": "yesterday"})
    assert errors == {"from": "开始日期应为「年-月-日」，例如 2026-11-02"}


def test_a_waived_finding_leaves_the_ranking(audits):
    three_runs(audits)
    t = AgentTrends(audits.database)
    before = {a["agent"]: a for a in t.team("2026-10")}["bob"]
    item = audits.items(1, agent="bob")[0]
    stored = audits.item(item["id"])["findings"]
    for n, _ in enumerate(stored):
        appeal = audits.appeal(item["id"], n, "顾客在等待", by="bob")
        audits.decide(appeal, True, "", by="super1", pack=Checker().pack)
    after = {a["agent"]: a for a in t.team("2026-10")}["bob"]
    assert before["findings"] > 0 and after["findings"] == 0
    assert after["mean_score"] == 100 and after["kpi"] == 5.0


# -- pages --------------------------------------------------------------------------------


@pytest.fixture
def web_runs(app, kb):
    store = AuditStore(kb.store)
    three_runs(store)
    return store


@BOTH
def test_pages_show_ranking_kpi_and_agent_trend(app, web_runs):
    sup = signed_in(app, "super1")
    page = sup.get("/agents?month=2026-11")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "咨询工作标准度（满分 5 分）= 5 × 当月平均分 ÷ 100" in html
    a1 = {a["agent"]: a for a in AgentTrends(web_runs.database).team("2026-11")}["agent1"]
    assert f"agent1\t{a1['kpi']}" in html  # the paste-ready text
    assert 'href="/agents/agent1?from=2026-11-01"' in html
    agent = sup.get("/agents/agent1?by=month").get_data(as_text=True)
    assert "<svg" in agent and 'data-month="2026-11"' in agent
    bad = sup.get("/agents?month=2026-13")
    assert bad.status_code == 400 and "月份应为「年-月」" in bad.get_data(as_text=True)
    assert sup.get("/agents/agent1?from=x").status_code == 400
    run = sup.get("/audits/2").get_data(as_text=True)
    assert 'href="/agents/agent1"' in run


@pytest.mark.parametrize("role", ["agent", "trainer"])
def test_agents_and_trainers_may_not_see_the_team(app, users, role):
    client = signed_in(app, users[role])
    assert client.get("/agents").status_code == 403
    assert client.get("/agents/agent1").status_code == 403


def test_the_export_agent_sheet_has_the_kpi_figure(audits):
    from coach.exports import AGENT_HEADER, AuditExport, Scope

    three_runs(audits)
    rows = list(
        AuditExport(audits.database, Scope.of(since="2026-11-01", until="2026-11-30")).agents()
    )
    assert AGENT_HEADER[-1].startswith("咨询工作标准度")
    team = {a["agent"]: a for a in AgentTrends(audits.database).team("2026-11")}
    by_agent = {r[0]: r for r in rows}
    # the export counts each audit of the scope; in November no conversation was re-audited
    assert by_agent["agent1"][-1] == team["agent1"]["kpi"] == kpi_points(by_agent["agent1"][3])


@BOTH
def test_a_conversation_re_audited_under_another_agent_counts_for_that_agent_only(audits):
    # an alias added later: 小王's chat re-audited as agent1's moves to agent1
    make_run(audits, "别名前", [chat("c-m", "小王", "哦", "差不多明天到")], "2026-11-03T10:00:00")
    make_run(
        audits,
        "别名后",
        [chat("c-m", "agent1", "哦", "差不多明天到")],
        "2026-11-04T10:00:00",
        reaudit=True,
    )
    team = {a["agent"]: a["conversations"] for a in AgentTrends(audits.database).team("2026-11")}
    assert team == {"agent1": 1}
