"""The scripts panel of the agent page in a real browser (Debian chromium via Playwright)."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

ORDER_TEXT = (
    "抱歉，王先生，我正在为您查询订单A1001的处理进度，需要占用您一点时间，请您稍等，感谢您的耐心。"
)
HOLD_TEXT = "非常抱歉，您的问题需要为您查询确认，请您稍等，预计2分钟内给您答复。"


def usage_count(instance, script_id: str) -> int:
    import sqlalchemy as sa

    from kb.service import KnowledgeBase
    from storage.schema import script_usage as usage

    kb = KnowledgeBase(instance)
    try:
        with kb.database.read() as conn:
            return conn.execute(
                sa.select(sa.func.count()).where(usage.c.script_id == script_id)
            ).scalar_one()
    finally:
        kb.close()


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_open_panel_filter_fill_and_copy(live_server, page):
    before = usage_count(live_server.instance, "hold-check-order-1")
    page.goto(live_server.url + "/")
    panel = page.locator("#scripts-panel")
    expect(panel.locator("section.scenario[data-scenario=greeting] h3")).to_contain_text("开场问候")
    page.keyboard.press("Alt+s")  # keyboard: focus the panel's filter
    expect(page.locator("#scripts-filter")).to_be_focused()
    page.keyboard.type("查询订单", delay=30)
    shown = panel.locator("li.script-item:visible")
    expect(shown).to_have_count(1)
    expect(shown.first).to_have_attribute("data-id", "hold-check-order-1")
    expect(panel.locator("section.scenario[data-scenario=greeting]")).to_be_hidden()
    page.keyboard.press("Enter")  # open the selected script, cursor in its first empty field

    pane = page.locator("#pane")
    expect(pane.locator("h2")).to_have_text("查询订单请稍等")
    name = pane.locator("input[name='客户称呼']")
    expect(name).to_be_focused()
    page.keyboard.type("王先生")
    page.keyboard.press("Enter")  # next empty field
    expect(pane.locator("input[name='订单号']")).to_be_focused()
    page.keyboard.type("A1001")
    expect(pane.locator("#script-preview")).to_have_text(ORDER_TEXT)
    page.keyboard.press("Enter")  # nothing left to fill: copy

    expect(page.locator("#copied")).to_have_attribute("data-text", ORDER_TEXT)
    assert wait_for(lambda: usage_count(live_server.instance, "hold-check-order-1") == before + 1)


def test_values_are_remembered_for_the_chat_until_a_new_chat(live_server, page):
    page.goto(live_server.url + "/")
    panel = page.locator("#scripts-panel")
    panel.locator("li.script-item[data-id='hold-check-order-1']").click()
    page.locator("#pane input[name='客户称呼']").fill("李女士")
    page.reload()  # same tab, same chat
    panel.locator("li.script-item[data-id='hold-extend-1']").click()
    name = page.locator("#pane input[name='客户称呼']")
    expect(name).to_have_value("李女士")
    expect(page.locator("#script-preview")).to_contain_text("抱歉，李女士，")
    page.locator("#new-chat").click()
    expect(name).to_have_value("")
    expect(page.locator("#script-preview .ph-missing").first).to_contain_text("请输入客户称呼")


def test_shortcut_in_the_search_box_jumps_to_its_script(live_server, page):
    page.goto(live_server.url + "/")
    page.fill("#q", "/dd")
    pane = page.locator("#pane")
    expect(pane.locator("h2")).to_have_text("查询前致歉请稍等")
    first = page.locator("#results li.hit").first
    expect(first).to_have_attribute("data-doctype", "script")
    expect(first.locator("kbd")).to_have_text("/dd")

    pane.locator("button.copy").click()  # a half-filled script is never copied
    expect(pane.locator(".fill-status")).to_contain_text("请先填写：预计时间")
    expect(page.locator("#copied")).to_have_count(0)

    page.locator("#q").focus()
    page.keyboard.press("Enter")
    expect(pane.locator("input[name='预计时间']")).to_be_focused()
    page.keyboard.type("2分钟")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#copied")).to_have_attribute("data-text", HOLD_TEXT)


def test_search_lists_scripts_beside_articles(live_server, page):
    page.goto(live_server.url + "/")
    page.fill("#q", "稍等")
    hit = page.locator("#results li.hit[data-doctype=script]").first
    expect(hit.locator(".badge")).to_have_text("话术")
    hit.click()
    expect(page.locator("#pane .script-view")).to_be_visible()
    page.fill("#q", "发票怎么开")
    expect(page.locator("#results li.hit").first).to_contain_text("如何开具发票")


def test_personal_script_create_copy_and_delete(live_server, page):
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    page.goto(live_server.url + "/")
    page.locator("#my-new").click()
    pane = page.locator("#pane")
    pane.locator("input[name=title]").fill("<img src=x onerror=alert(1)>我的开场")
    pane.locator("textarea[name=text]").fill("{客户称呼}您好，我是小王，很高兴为您服务。")
    pane.locator("input[name=shortcut]").fill("/dd")
    pane.locator("button[type=submit]").click()
    expect(pane.locator(".fill-status")).to_contain_text("共享话术")  # /dd is taken
    pane.locator("input[name=shortcut]").fill("/wdkc")
    pane.locator("button[type=submit]").click()

    mine = page.locator("#my-scripts li.script-item")
    expect(mine).to_have_count(1)
    expect(mine.first.locator("kbd")).to_have_text("/wdkc")
    expect(pane.locator("h2")).to_have_text("<img src=x onerror=alert(1)>我的开场")
    pane.locator("input[name='客户称呼']").fill("张先生")
    pane.locator("button.copy").click()
    expect(page.locator("#copied")).to_have_attribute(
        "data-text", "张先生您好，我是小王，很高兴为您服务。"
    )

    page.fill("#q", "/wdkc")  # a personal shortcut jumps too
    expect(page.locator("#status")).to_contain_text("/wdkc")
    pane.locator("button", has_text="删除").click()
    expect(page.locator("#my-scripts li.script-item")).to_have_count(0)
    assert len(dialogs) == 1 and "删除" in dialogs[0]  # only the confirmation, no alert(1)
