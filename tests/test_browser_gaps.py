"""Content gaps and article feedback in a real browser: a query that finds nothing,
made by an agent, shows on the trainer's 内容缺口 page and one click opens a prefilled
draft; 没用 given by an agent from the search panel shows in the trainer's ratios."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import add_user, open_logged_in

pytestmark = pytest.mark.browser

NOTHING = "月球基地办签证"  # nothing in the fixture articles


def test_a_zero_result_search_becomes_a_prefilled_draft(browser, live_server, page):
    page.fill("#q", NOTHING)
    expect(page.locator("#results .empty")).to_contain_text(NOTHING)

    add_user(live_server.instance, "gaptrainer", "trainer")
    ctx, tr = open_logged_in(browser, live_server.url, "gaptrainer")
    tr.click("nav >> text=内容缺口")
    row = tr.locator("tr.gap", has=tr.locator(".gap-query", has_text=NOTHING))
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(2)).to_have_text("1")  # 无结果 once
    row.locator("a.new-article").click()
    expect(tr.locator("h1")).to_have_text("新建文章")
    expect(tr.locator("input[name=title]")).to_have_value(NOTHING)
    expect(tr.locator("textarea[name=similar]")).to_have_value(NOTHING)

    # dismissed, it is gone until someone searches it again
    tr.go_back()
    row.locator("button", has_text="忽略").click()
    expect(tr.locator(".flash")).to_contain_text("已忽略")
    expect(row).to_have_count(0)
    ctx.close()


def test_useless_feedback_from_the_search_panel_shows_in_the_ratios(browser, live_server, page):
    page.fill("#q", "退款多久到账")
    first = page.locator("#results li.hit").first
    expect(first).to_contain_text("退款多久到账")
    first.click()
    panel = page.locator("#pane .pane-feedback")
    expect(panel).to_contain_text("这篇文章有用吗")
    panel.locator("textarea").fill("没写银行卡要几天")
    panel.locator("button", has_text="没用").click()
    expect(panel.locator(".feedback-state")).to_have_text("已记录：没用（可以改）")
    # a comment over the limit is refused with the server's message
    panel.locator("textarea").fill("长" * 501)
    panel.locator("button", has_text="没用").click()
    expect(panel.locator(".error")).to_contain_text("最多 500 个字")

    add_user(live_server.instance, "fbtrainer", "trainer")
    ctx, tr = open_logged_in(browser, live_server.url, "fbtrainer")
    tr.click("nav >> text=文章反馈")
    row = tr.locator("tr[data-id=product-refund]")
    expect(row).to_have_count(1)
    useless = int(row.locator("td").nth(2).inner_text())
    assert useless >= 1
    assert re.fullmatch(r"\d+%", row.locator("td.rate").inner_text())
    row.locator("a").click()
    expect(tr.locator(".feedback-comments")).to_contain_text("没写银行卡要几天")
    expect(tr.locator(".n-useless")).to_have_text(str(useless))
    ctx.close()
