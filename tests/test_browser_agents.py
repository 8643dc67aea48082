"""Agents over time and remembered waivers in a real browser: three runs dated in
different weeks (and two months); the supervisor opens the team ranking, sees the
KPI figure ready to paste, opens an agent's page with the trend chart and the
monthly KPI figure; an agent's appeal accepted, the same wording uploaded again is
waived automatically (已自动豁免（依据申诉 #N）) and the rules page counts it."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from coach.audits import AuditStore
from core.agent_trends import AgentTrends
from kb.store import Store
from storage import Database
from storage.database import close_all, sqlite_url

from .conftest import Server, open_logged_in, run_cli
from .test_agents import NOV1, NOV2, OCT, RUN_NOV1, RUN_NOV2, RUN_OCT
from .test_my_audits import make_run

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server of its own: three runs dated in three weeks, made before it starts."""
    inst = tmp_path_factory.mktemp("agents") / "instance"
    for name, role in (("agent1", "agent"), ("lead1", "supervisor")):
        run_cli("user", "add", name, "--role", role, "--password", "correct-horse-42",
                instance=inst, check=True)  # fmt: skip
    url = sqlite_url(inst)
    store = AuditStore(Store(Database.open(url)))
    make_run(store, "十月", RUN_OCT, OCT)
    make_run(store, "十一月一", RUN_NOV1, NOV1)
    make_run(store, "十一月二", RUN_NOV2, NOV2)
    trends = AgentTrends(store.database)
    expected = {a["agent"]: a for a in trends.team("2026-11")}
    months = {m["bucket"]: m for m in trends.agent("agent1", {"by": "month"})[0]["months"]}
    store.store.close()
    close_all(url)
    srv = Server(inst, "serve")
    srv.expected = expected
    srv.months = months
    yield srv
    srv.stop()


def test_team_ranking_agent_trend_and_kpi(browser, server):
    ctx, page = open_logged_in(browser, server.url, "lead1")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.click("nav >> text=客服趋势")
    expect(page.locator("h1")).to_have_text("客服趋势与排名")
    expect(page.locator("h2").first).to_contain_text("2026-11")
    expect(page.locator(".kpi-rule")).to_contain_text("5 × 当月平均分 ÷ 100")
    a1 = server.expected["agent1"]
    row = page.locator("table.team tr[data-agent=agent1]")
    expect(row.locator(".mean")).to_have_text(str(a1["mean_score"]))
    expect(row.locator(".kpi-value")).to_have_text(str(a1["kpi"]))
    expect(row.locator(".trend")).to_contain_text(a1["trend_words"])
    paste = page.locator("textarea.kpi-paste")
    assert f"agent1\t{a1['kpi']}" in paste.input_value()
    ctx.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("button.copy-kpi")
    expect(page.locator("button.copy-kpi")).to_have_text("已复制")
    # sortable: by conversations, most first
    page.click("table.team th >> text=会话")
    expect(page.locator("table.team tbody tr").first).to_have_attribute("data-agent", "agent1")
    page.click("table.team th >> text=会话")  # again: fewest first
    expect(page.locator("table.team tbody tr").first).to_have_attribute("data-agent", "bob")
    # a bad month is refused next to the field, in Chinese
    page.goto(server.url + "/agents?month=2026-13")  # typed by hand into the address
    expect(page.locator(".field-error")).to_contain_text("月份应为「年-月」")

    page.goto(server.url + "/agents?month=2026-11")
    page.click("table.team a >> text=agent1")
    expect(page.locator("h1")).to_have_text("客服「agent1」的趋势")
    chart = page.locator("figure.trend svg")
    expect(chart).to_be_visible()
    expect(chart.locator("g.point")).to_have_count(2)  # weeks of 11-02 and 11-09
    nov = server.months["2026-11"]
    kpi = page.locator("table.kpi tr[data-month='2026-11'] .kpi-value")
    expect(kpi).to_have_text(str(nov["kpi"]))
    assert nov["kpi"] == a1["kpi"]
    expect(page.locator("li.habit", has_text="模糊用语").locator("mark").first).to_have_text(
        "差不多"
    )
    # per month, over everything: October and November
    page.fill("input[name=from]", "")
    page.check("input[name=by][value=month]")
    page.click("form.filters button")
    expect(chart.locator("g.point")).to_have_count(2)
    assert chart.locator("g.point").nth(0).get_attribute("data-label") == "2026-10"
    expect(page.locator("table.kpi tbody tr")).to_have_count(2)
    # the run page links the agent to this page
    page.goto(server.url + "/audits/2")
    page.click("table.agents a.agent-trend >> text=agent1")
    expect(page.locator("h1")).to_have_text("客服「agent1」的趋势")
    assert dialogs == []
    ctx.close()


def test_agents_may_not_open_the_team_page(browser, server):
    ctx, page = open_logged_in(browser, server.url, "agent1")
    expect(page.locator("nav >> text=客服趋势")).to_have_count(0)
    resp = page.goto(server.url + "/agents")
    assert resp.status == 403
    ctx.close()


def test_an_accepted_appeal_waives_the_same_wording_next_time(browser, server, tmp_path):
    ctx, agent = open_logged_in(browser, server.url, "agent1")
    dialogs: list[str] = []
    agent.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    agent.click("nav >> text=我的质检")
    agent.locator("table.items a", has_text="n-2").click()
    finding = agent.locator(".finding", has_text="「差不多」")
    finding.locator("summary", has_text="申诉").click()
    finding.locator("textarea[name=reason]").fill("后面已说明以物流信息为准")
    finding.locator("button", has_text="提交申诉").click()
    expect(agent.locator(".flash")).to_contain_text("申诉已提交")

    sup_ctx, sup = open_logged_in(browser, server.url, "lead1")
    sup.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sup.click("nav >> text=申诉")
    row = sup.locator("table.appeals tr", has_text="以物流信息为准")
    row.locator("button", has_text="采纳").click()
    expect(sup.locator(".flash")).to_contain_text("已采纳申诉")

    upload = tmp_path / "next.jsonl"
    chats = [
        {
            "id": "next-1",
            "agent": "agent1",
            "turns": [
                {"role": "customer", "text": "我的快递到哪了"},
                {"role": "agent", "text": "差不多后天到"},
                {"role": "agent", "text": "大概周五吧"},
            ],
        }
    ]
    upload.write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in chats) + "\n")
    sup.click("nav >> text=会话质检")
    sup.set_input_files("input[name=files]", str(upload))
    sup.fill("input[name=name]", "下一批")
    sup.click("text=上传并质检")
    expect(sup.locator(".run-status")).to_contain_text("已完成", timeout=15000)
    sup.click("text=next-1")
    waived = sup.locator(".finding", has_text="「差不多」")
    expect(waived.locator(".auto-waived")).to_contain_text("已自动豁免（依据申诉 #1）")
    expect(waived.locator(".deduct")).to_have_count(0)
    still = sup.locator(".finding", has_text="「大概」")
    expect(still.locator(".deduct")).to_be_visible()  # another wording still counts

    sup.click("nav >> text=质检规则")
    rule = sup.locator("table.rule-list tr", has=sup.locator("td.remembered", has_text="1"))
    expect(rule).to_have_count(1)
    expect(rule.locator(".waiver-rate")).to_contain_text("%")
    assert dialogs == []
    sup_ctx.close()
    ctx.close()


def test_reaudit_after_a_rule_change_shows_the_comparison(browser, server):
    """Last in this module: it changes the team rules of the shared server."""
    ctx, sup = open_logged_in(browser, server.url, "lead1")
    dialogs: list[str] = []
    sup.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sup.click("nav >> text=质检规则")
    sup.fill("textarea[name=yaml]", "disable: [vague-hedge]\n")
    sup.fill("input[name=note]", "试试不查模糊用语")
    sup.click("button[name=action][value=save]")  # the YAML editor's, not the form's
    expect(sup.locator(".flash")).to_contain_text("已保存团队规则")
    sup.goto(server.url + "/audits/2")  # 十一月一: n-1 says 差不多 (n-2 had it waived above)
    sup.click("button.reaudit-button")
    expect(sup.locator("h1")).to_contain_text("重新质检：十一月一")
    expect(sup.locator(".run-status")).to_contain_text("已完成", timeout=15000)
    sup.click("a.compare-link")
    expect(sup.locator("h1")).to_have_text("重新质检对比")
    expect(sup.locator(".compared")).to_have_text("3")
    row = sup.locator("table.compare-rows tr[data-conv=n-1]")
    expect(row.locator(".removed")).to_contain_text("vague-hedge")
    expect(row.locator(".removed")).to_contain_text("「差不多」")
    expect(row.locator(".delta")).to_contain_text("+")
    expect(sup.locator("table.by-rule tr[data-rule=vague-hedge] .removed")).not_to_have_text("0")
    # the agent's figures count each conversation once: the re-audit replaces the old
    sup.goto(server.url + "/agents?month=2026-11")
    expect(sup.locator("table.team tr[data-agent=agent1] td").nth(4)).to_have_text("4")
    assert dialogs == []
    ctx.close()
