"""Issue 15 in a real browser: a supervisor uploads a MemoTrace TXT export whose agent
is not named 客服…, names the agent on the upload page (a bad pattern first: refused
next to its field, the name typed kept), and sees the agent's findings."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import FIXTURES, add_user, open_logged_in

pytestmark = pytest.mark.browser


def test_upload_memotrace_txt_naming_the_agent_on_the_page(browser, live_server):
    add_user(live_server.instance, "lead15", "supervisor")
    export = FIXTURES / "exports" / "memotrace.txt"
    ctx, page = open_logged_in(browser, live_server.url, "lead15")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.click("nav >> text=会话质检")
    page.set_input_files("input[name=files]", str(export))
    page.fill("input[name=name]", "微信导出")
    page.fill("input[name=agents]", "阿青")
    page.fill("input[name=agent_pattern]", "(a|ab)*c")
    page.select_option("select[name=format]", "memotrace-txt")
    page.click("text=上传并质检")
    expect(page.locator("#agent-pattern-error")).to_contain_text("客服名称规则过于复杂")
    expect(page.locator("input[name=agents]")).to_have_value("阿青")
    expect(page.locator("input[name=name]")).to_have_value("微信导出")
    expect(page.locator("select[name=format]")).to_have_value("memotrace-txt")

    page.fill("input[name=agent_pattern]", "")
    page.set_input_files("input[name=files]", str(export))  # a browser cannot keep files
    page.click("text=上传并质检")
    expect(page.locator(".run-status")).to_contain_text("已完成", timeout=15000)
    expect(page.locator("table.agents")).to_contain_text("阿青")
    page.locator("table.items a").first.click()
    expect(page.locator("ol.transcript")).to_contain_text("亲，您好，可能明天到吧，您再等等。")
    vague = page.locator(".finding", has_text="「可能」")
    expect(vague).to_have_count(1)
    expect(vague).to_contain_text("扣")

    # the team setting: 阿青 is agent1's alias, so the next upload needs no name and
    # the conversation is agent1's own (我的质检)
    page.click("nav >> text=客服名单")
    page.fill("input[name=name]", "阿青")
    page.fill("input[name=username]", "nobody-here")
    page.click("button >> text=添加")
    expect(page.locator("#username-error")).to_contain_text("账号「nobody-here」不存在")
    expect(page.locator("input[name=name]")).to_have_value("阿青")
    page.fill("input[name=username]", "agent1")
    page.click("button >> text=添加")
    expect(page.locator(".flash")).to_contain_text("已添加客服名称「阿青」（账号 agent1）")
    expect(page.locator("tr[data-name=阿青] .account")).to_have_text("agent1")
    page.click("nav >> text=会话质检")
    page.set_input_files("input[name=files]", str(export))
    page.check("input[name=reaudit]")
    page.click("text=上传并质检")
    expect(page.locator(".run-status")).to_contain_text("已完成", timeout=15000)
    expect(page.locator("table.agents")).to_contain_text("agent1")
    assert dialogs == []
    ctx.close()

    ctx, agent = open_logged_in(browser, live_server.url, "agent1")
    agent.click("nav >> text=我的质检")
    expect(agent.locator("main")).to_contain_text("memotrace.txt")
    ctx.close()
