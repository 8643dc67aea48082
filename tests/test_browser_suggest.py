"""Suggest as you type on the agent page, in a real browser (Debian chromium via Playwright)."""

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_type_initials_and_pick_a_suggestion_with_the_keyboard(live_server, page):
    page.goto(live_server.url + "/")
    page.locator("#q").focus()
    page.keyboard.type("tk", delay=30)
    dropdown = page.locator("#suggest")
    expect(dropdown).to_be_visible()
    expect(dropdown.locator("li").first).to_contain_text("退款多久到账")
    expect(page.locator("#q")).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("ArrowDown")
    expect(dropdown.locator("li.active")).to_contain_text("退款多久到账")
    page.keyboard.press("Enter")
    expect(dropdown).to_be_hidden()
    expect(page.locator("#q")).to_have_value("退款多久到账")
    expect(page.locator("#results li.hit").first).to_have_attribute("data-id", "product-refund")
    expect(page.locator("#pane h2")).to_have_text("退款多久到账")
    assert "q=%E9%80%80" in page.url


def test_escape_closes_the_dropdown_and_arrows_move_through_results_again(live_server, page):
    page.goto(live_server.url + "/")
    page.locator("#q").focus()
    page.keyboard.type("发票", delay=30)
    dropdown = page.locator("#suggest")
    expect(dropdown).to_be_visible()
    expect(page.locator("#results li.hit").first).to_be_visible()
    page.keyboard.press("Escape")
    expect(dropdown).to_be_hidden()
    page.keyboard.press("Enter")  # the selected result opens, as without suggestions
    expect(page.locator("#pane h2")).to_have_text("如何开具发票")
    expect(page.locator("#q")).to_have_value("发票")


def test_did_you_mean_link_searches_it(live_server, page):
    page.goto(live_server.url + "/")
    page.fill("#q", "kehulaiduojiu")
    link = page.locator("#results li.did-you-mean a")
    expect(link).to_have_text("客户来了多久要回复")
    link.click()
    expect(page.locator("#q")).to_have_value("客户来了多久要回复")
    expect(page.locator("#results li.hit").first).to_have_attribute("data-id", "norm-greeting")
