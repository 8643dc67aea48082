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
    expect(panel.locator("#scripts-filter")).to_be_focused()
    # one input event, so one filter request: no status of a half-typed query to misread
    panel.locator("#scripts-filter").fill("稍等")
    shown = panel.locator("li.script-item:visible")
    expect(panel.locator("#scripts-status")).to_contain_text("匹配")
    count = int(re.search(r"\d+", panel.locator("#scripts-status").inner_text()).group())
    expect(shown).to_have_count(count)
    assert count > 1
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


# -- check before sending ------------------------------------------------------------------


def type_draft(page, text: str) -> None:
    page.keyboard.press("Alt+d")
    expect(page.locator("#draft")).to_be_focused()
    page.keyboard.type(text, delay=15)


def test_draft_shows_both_vague_findings_and_a_script_to_take(live_server, page):
    page.goto(live_server.url + "/")
    sent = []
    page.on(
        "request",
        lambda r: sent.append(r.post_data_json) if r.url.endswith("/check-reply") else None,
    )
    type_draft(page, DRAFT)
    findings = page.locator("#desk-findings li.desk-finding")
    expect(findings).to_have_count(2)
    # debounced: not a request per keystroke; mid-chat unless the agent says otherwise
    assert 1 <= len(sent) <= 3, sent
    assert sent[-1] == {"text": DRAFT, "position": "middle"}
    expect(findings.nth(0).locator("mark")).to_have_text("差不多")
    expect(findings.nth(1).locator("mark")).to_have_text("不清楚")
    expect(findings.nth(0)).to_contain_text("含糊")
    expect(findings.nth(0).locator("q.take-text")).to_contain_text("完成后我会第一时间通知您")
    expect(findings.nth(0).locator("button.take")).to_be_visible()
    # mid-chat (the default): never a greeting or closing finding
    expect(page.locator("#desk-findings li[data-category=no_greeting]")).to_have_count(0)
    expect(page.locator("#desk-findings li[data-category=no_closing]")).to_have_count(0)

    page.keyboard.press("Tab")  # to the first suggestion
    expect(findings.nth(0).locator("button.take")).to_be_focused()
    page.keyboard.press("Enter")  # take it: the sentence (here the whole draft) is replaced
    draft = page.locator("#draft")
    expect(draft).to_be_focused()
    expect(draft).to_have_value(
        "【请输入客户称呼，如“王先生”】，【请输入办理的事项，如“您的退款”】"
        "预计【请输入预计时间，如“明天18:00前”】完成，完成后我会第一时间通知您。"
    )
    page.locator("#draft-copy").click()  # never copied with a placeholder left
    expect(page.locator("#desk-status")).to_contain_text("请先填写：客户称呼")
    expect(page.locator("#copied")).to_contain_text("请先填写")

    # back in the draft, the first placeholder selected: typing replaces it, Tab goes on
    expect(draft).to_be_focused()
    page.keyboard.type("王先生")
    page.keyboard.press("Tab")
    page.keyboard.type("您的退款")
    page.keyboard.press("Tab")
    page.keyboard.type("明天18:00前")
    final = "王先生，您的退款预计明天18:00前完成，完成后我会第一时间通知您。"
    expect(draft).to_have_value(final)
    expect(page.locator("#desk-status")).to_contain_text("未发现问题")
    expect(findings).to_have_count(0)
    page.keyboard.press("Control+Enter")
    expect(page.locator("#copied")).to_have_attribute("data-text", final)
    page.keyboard.press("Escape")  # out of the draft, back to the search box
    expect(page.locator("#q")).to_be_focused()


def test_taking_a_script_fills_the_chat_values_and_keeps_the_other_sentences(live_server, page):
    page.goto(live_server.url + "/")
    page.evaluate(
        "sessionStorage.setItem('kbcoach.placeholders', JSON.stringify({'客户称呼': '李女士'}))"
    )
    type_draft(page, "您好。这个我不清楚哦。还有别的问题吗？")
    finding = page.locator("#desk-findings li.desk-finding")
    expect(finding).to_have_count(1)
    expect(finding.locator("mark")).to_have_text("不清楚")
    expect(finding.locator(".excerpt")).to_contain_text("…这个我不清楚哦。…")
    expect(finding.locator("q.take-text")).to_contain_text("李女士，")
    finding.locator("button.take").click()
    value = page.locator("#draft").input_value()
    assert value.startswith("您好。李女士，为了给您准确的答复") and value.endswith(
        "。还有别的问题吗？"
    )
    assert "不清楚" not in value


def test_position_opening_asks_for_a_greeting_and_the_script_goes_first(live_server, page):
    page.goto(live_server.url + "/")
    type_draft(page, "好的，您的订单已经发出了")
    expect(page.locator("#desk-status")).to_contain_text("未发现问题")
    page.select_option("#desk-position", "opening")
    greeting = page.locator("#desk-findings li[data-category=no_greeting]")
    expect(greeting).to_have_count(1)
    expect(greeting.locator(".excerpt")).to_contain_text("开头")
    greeting.locator("button.take").click()
    value = page.locator("#draft").input_value()
    assert value.startswith("您好，欢迎光临") and value.endswith("？好的，您的订单已经发出了")
    page.select_option("#desk-position", "middle")


def test_customer_context_is_sent_with_the_draft(live_server, page):
    page.goto(live_server.url + "/")
    type_draft(page, "是的，差不多的")
    expect(page.locator("#desk-findings li[data-category=vague]")).to_have_count(1)
    page.fill("#desk-context", "这两个差不多吗")  # echoing the customer's words is not vague
    expect(page.locator("#desk-status")).to_contain_text("未发现问题")
    expect(page.locator("#desk-findings li")).to_have_count(0)
