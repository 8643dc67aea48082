"""我的质检 in a real browser: an agent with audits in two weeks sees the trend (two
points), the mean and the habits, and a conversation uploaded in two runs once; an
empty appeal reason and a rejection without a reason are refused by the server with
the Chinese message next to the field (no browser "Please fill out this field")."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from coach.audits import AuditStore
from kb.store import Store
from storage import Database
from storage.database import close_all, sqlite_url

from .conftest import Server, open_logged_in, run_cli
from .test_my_audits import RUN1, RUN2, WEEK1, WEEK2, make_run

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server of its own: runs dated in two weeks, made through the core before it starts."""
    inst = tmp_path_factory.mktemp("myqa") / "instance"
    for name, role in (("agent1", "agent"), ("lead1", "supervisor")):
        run_cli("user", "add", name, "--role", role, "--password", "correct-horse-42",
                instance=inst, check=True)  # fmt: skip
    url = sqlite_url(inst)
    store = AuditStore(Store(Database.open(url)))
    make_run(store, "第一周", RUN1, WEEK1)
    make_run(store, "第二周", RUN2, WEEK2, reaudit=True)  # c-a again, on purpose
    expected = {
        "mean": round(
            sum(i["score"] for i in _latest(store)) / len(_latest(store)),
            1,
        )
    }
    store.store.close()
    close_all(url)
    srv = Server(inst, "serve")
    srv.expected = expected
    yield srv
    srv.stop()


def _latest(store: AuditStore) -> list[dict]:
    """agent1's latest audit of each conversation, as the page should count them."""
    latest: dict[str, dict] = {}
    for run in sorted(r["id"] for r in store.runs()):
        for item in store.items(run, agent="agent1"):
            latest[item["conv_id"]] = item
    return list(latest.values())


def test_trend_mean_habits_and_one_row_per_conversation(browser, server):
    ctx, page = open_logged_in(browser, server.url, "agent1")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.click("nav >> text=我的质检")
    expect(page.locator("h1")).to_have_text("我的质检")
    expect(page.locator(".mean-score")).to_have_text(str(server.expected["mean"]))
    chart = page.locator("figure.trend svg")
    expect(chart).to_be_visible()
    expect(chart.locator("g.point")).to_have_count(2)
    assert chart.locator("g.point").nth(0).get_attribute("data-label") == "11-02"
    assert chart.locator("g.point").nth(1).get_attribute("data-label") == "11-09"
    expect(chart.locator("text.axis-label").first).to_be_visible()
    expect(chart.locator("text.value")).to_have_count(2)  # each dot has its value written
    habit = page.locator("li.habit", has_text="模糊用语")
    expect(habit.locator(".count")).to_have_text("2 次")
    expect(habit.locator(".example mark").first).to_have_text("差不多")
    expect(habit.locator(".script")).to_contain_text("建议改用标准话术")
    rows = page.locator("table.items tbody tr")
    expect(rows).to_have_count(3)
    once = rows.filter(has_text="c-a")
    expect(once).to_have_count(1)  # uploaded in both runs, listed once
    expect(once.locator("td").nth(4)).to_have_text("2")  # audited twice
    # a filter: only the second week
    page.fill("input[name=from]", "2026-11-09")
    page.click("form.filters button")
    expect(rows).to_have_count(2)
    expect(page.locator("figure.trend g.point")).to_have_count(1)
    assert dialogs == []
    ctx.close()


def test_empty_appeal_and_bare_rejection_are_refused_next_to_the_field(browser, server):
    ctx, agent = open_logged_in(browser, server.url, "agent1")
    dialogs: list[str] = []
    agent.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    agent.click("nav >> text=我的质检")
    agent.locator("table.items a", has_text="c-b").click()
    finding = agent.locator(".finding", has_text="「差不多」")
    finding.locator("summary", has_text="申诉").click()
    finding.locator("button", has_text="提交申诉").click()  # nothing typed
    refused = agent.locator(".finding", has_text="「差不多」")
    message = refused.locator("textarea[name=reason] + .field-error")
    expect(message).to_have_text("请填写申诉理由")
    expect(refused.locator("textarea[name=reason]")).to_have_attribute("aria-invalid", "true")
    expect(agent.locator(".flash")).to_have_count(0)
    refused.locator("textarea[name=reason]").fill("只是估计，已说明以实际为准")
    refused.locator("button", has_text="提交申诉").click()
    expect(agent.locator(".flash")).to_contain_text("申诉已提交")

    sup_ctx, sup = open_logged_in(browser, server.url, "lead1")
    sup.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sup.click("nav >> text=申诉")
    row = sup.locator("table.appeals tr", has_text="只是估计")
    row.locator("button", has_text="驳回").click()  # no reason given
    row = sup.locator("table.appeals tr", has_text="只是估计")
    expect(row.locator(".field-error")).to_contain_text("驳回申诉时请填写理由")
    expect(row.locator("button", has_text="驳回")).to_be_visible()  # still open
    row.locator("input[name=note]").fill("差不多是模糊用语，请给出确切时间")
    row.locator("button", has_text="驳回").click()
    expect(sup.locator(".flash")).to_contain_text("已驳回申诉")

    agent.click("nav >> text=我的质检")
    appeal = agent.locator("table.my-appeals tr", has_text="只是估计")
    expect(appeal.locator(".state")).to_have_text("已驳回")
    expect(appeal).to_contain_text("请给出确切时间")
    assert dialogs == []
    sup_ctx.close()
    ctx.close()
