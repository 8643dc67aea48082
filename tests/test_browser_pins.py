"""A trainer pins an answer from the pins page; agents then see it first, marked."""

import pytest
from playwright.sync_api import expect

from .conftest import add_user, open_logged_in

pytestmark = pytest.mark.browser


def test_trainer_pins_from_the_results_and_agents_see_it_first(browser, live_server, page):
    add_user(live_server.instance, "trainer9", "trainer")
    ctx, tr = open_logged_in(browser, live_server.url, "trainer9")
    tr.click("nav >> text=置顶答案")
    tr.fill("form.pin-search input[name=query]", "到账要多久 发票")
    tr.click("text=查看当前结果")
    row = tr.locator("ol.pin-preview li", has_text="如何开具发票")
    expect(row).to_be_visible()
    row.locator("button", has_text="置顶这篇").click()
    expect(tr.locator(".flash")).to_contain_text("已将「如何开具发票」置顶")
    expect(tr.locator("table.pins")).to_contain_text("到账要多久 发票")

    # the agent types a variant of the query (order and script changed)
    page.goto(live_server.url + "/")
    page.fill("#q", "發票 到賬要多久")
    first = page.locator("#results li.hit").first
    expect(first).to_contain_text("如何开具发票", timeout=10000)
    expect(first).to_contain_text("置顶")

    # a bad article id is refused with a clear message, nothing else changes
    tr.click("summary:has-text('直接置顶')")
    tr.fill("form.pin-form input[name=query]", "发票")
    tr.fill("form.pin-form input[name=article_id]", "no-such-article")
    tr.click("text=按 ID 置顶")
    expect(tr.locator(".error")).to_contain_text("no-such-article")
    tr.goto(live_server.url + "/pins")
    tr.locator("table.pins tr", has_text="到账要多久 发票").locator("button").click()
    expect(tr.locator(".flash")).to_contain_text("已取消置顶")
    expect(tr.locator("p.empty")).to_contain_text("还没有置顶")
    ctx.close()
    page.goto(live_server.url + "/")
    page.fill("#q", "到账要多久 发票")
    expect(page.locator("#results li.hit").first).not_to_contain_text("置顶", timeout=10000)
