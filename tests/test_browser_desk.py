"""The agent desk in a real browser (Debian chromium via Playwright): keyboard selection
in the results, the scripts panel and the suggestions; the draft check before sending."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

DRAFT = "这个差不多吧，我也不清楚哦"
SELECTED = re.compile(r"\bselected\b")


def close_suggestions(page):
    """Esc on the open dropdown: ↓/↑ move through the results again."""
    expect(page.locator("#suggest")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#suggest")).to_be_hidden()


# -- keyboard: nothing selected until ↓, Enter with nothing selected opens the first ------


def test_results_down_then_enter_opens_the_first_result(live_server, page):
    page.goto(live_server.url + "/?q=发票")  # server-rendered results: nothing selected either
    hits = page.locator("#results li.hit")
    expect(hits.first).to_be_visible()
    expect(page.locator("#results li.hit.selected")).to_have_count(0)
    page.fill("#q", "退款")
    expect(hits.first).to_contain_text("退款")
    expect(page.locator("#results li.hit.selected")).to_have_count(0)
    title = hits.first.locator(".hit-title").inner_text()
    close_suggestions(page)
    page.keyboard.press("ArrowDown")
    expect(hits.first).to_have_class(SELECTED)
    expect(page.locator("#results li.hit.selected")).to_have_count(1)
    page.keyboard.press("Enter")
    expect(page.locator("#pane h2")).to_have_text(title)


def test_results_enter_with_nothing_selected_opens_the_first(live_server, page):
    page.goto(live_server.url + "/")
    page.fill("#q", "发票")
    first = page.locator("#results li.hit").first
    expect(first).to_contain_text("发票")
    title = first.locator(".hit-title").inner_text()
    close_suggestions(page)
    page.keyboard.press("Enter")
    expect(page.locator("#pane h2")).to_have_text(title)
    expect(page.locator("#results li.hit.selected")).to_have_count(0)


def test_results_enter_right_after_typing_opens_the_first_of_the_new_query(live_server, page):
    page.goto(live_server.url + "/?q=发票")
    expect(page.locator("#results li.hit").first).to_be_visible()
    page.locator("#q").fill("")
    page.locator("#q").type("退款多久到账")
    page.keyboard.press("Enter")  # before the debounced search ran: searched, then opened
    expect(page.locator("#pane h2")).to_have_text("退款多久到账")


def test_scripts_panel_down_then_enter_opens_the_first_shown(live_server, page):
    page.goto(live_server.url + "/")
    panel = page.locator("#scripts-panel")
    page.keyboard.press("Alt+s")
    page.keyboard.type("稍等", delay=20)
    shown = panel.locator("li.script-item:visible")
    expect(panel.locator("#scripts-status")).to_contain_text("匹配")
    assert shown.count() > 1
    expect(panel.locator("li.script-item.selected")).to_have_count(0)
    first_title = shown.first.locator(".script-title").inner_text()
    page.keyboard.press("ArrowDown")
    expect(shown.first).to_have_class(SELECTED)
    page.keyboard.press("Enter")
    expect(page.locator("#pane h2")).to_have_text(first_title)


def test_scripts_panel_enter_with_nothing_selected_opens_the_first(live_server, page):
    page.goto(live_server.url + "/")
    panel = page.locator("#scripts-panel")
    page.keyboard.press("Alt+s")
    page.keyboard.type("稍等")
    page.keyboard.press("Enter")  # possibly before the filter answered: opens once it has
    shown = panel.locator("li.script-item:visible")
    expect(panel.locator("#scripts-status")).to_contain_text("匹配")
    first_title = shown.first.locator(".script-title").inner_text()
    expect(page.locator("#pane h2")).to_have_text(first_title)
    expect(panel.locator("li.script-item.selected")).to_have_count(0)


def test_suggestions_down_selects_the_first_and_enter_picks_it(live_server, page):
    page.goto(live_server.url + "/")
    page.locator("#q").focus()
    page.keyboard.type("tk", delay=30)
    dropdown = page.locator("#suggest")
    expect(dropdown).to_be_visible()
    expect(dropdown.locator("li.active")).to_have_count(0)
    first = dropdown.locator("li").first.locator(".text").inner_text()
    page.keyboard.press("ArrowDown")
    expect(dropdown.locator("li").first).to_have_class(re.compile(r"\bactive\b"))
    page.keyboard.press("Enter")
    expect(page.locator("#q")).to_have_value(first)
    expect(page.locator("#pane h2")).to_be_visible()


def test_suggestions_enter_with_nothing_selected_opens_the_first_result(live_server, page):
    page.goto(live_server.url + "/")
    page.locator("#q").focus()
    page.keyboard.type("发票", delay=30)
    expect(page.locator("#suggest")).to_be_visible()
    first = page.locator("#results li.hit").first
    expect(first).to_contain_text("发票")
    title = first.locator(".hit-title").inner_text()
    page.keyboard.press("Enter")
    expect(page.locator("#suggest")).to_be_hidden()
    expect(page.locator("#q")).to_have_value("发票")  # the typed query, not a suggestion
    expect(page.locator("#pane h2")).to_have_text(title)
