"""Trainers write an article in the editor (live, sanitised preview), save it as a
draft, publish it; agents find it only once published; the audit log has it."""

import pytest
from playwright.sync_api import expect

from .conftest import add_user, open_logged_in, run_cli

pytestmark = pytest.mark.browser

BODY = """## 办理步骤

1. 到门店出示旧机
2. 评估后抵扣

> 您好，{客户称呼}，以旧换新可在门店当场抵扣，请携带旧机前往。

<img src=x onerror="window.__xss = 1"><script>window.__xss = 2</script>
"""


def test_write_preview_save_draft_then_publish(browser, live_server, page):
    add_user(live_server.instance, "writer1", "trainer")
    ctx, tr = open_logged_in(browser, live_server.url, "writer1")
    tr.click("nav >> text=新建文章")
    tr.fill("input[name=id]", "product-trade-in")
    tr.fill("input[name=title]", "以旧换新怎么办理")
    tr.select_option("select[name=category]", "product")
    tr.fill("textarea[name=similar]", "旧手机能换新的吗\n旧机抵扣")
    tr.fill("input[name=tags]", "以旧换新，门店")
    tr.locator("#body").fill(BODY)
    expect(tr.locator("#preview li").first).to_have_text("到门店出示旧机")  # live preview
    expect(tr.locator("#preview")).to_have_attribute("data-state", "fresh")
    assert tr.evaluate("window.__xss") is None
    assert tr.locator("#preview script, #preview [onerror]").count() == 0
    tr.click("button[value=save]")  # status defaults to draft
    expect(tr.locator(".flash")).to_contain_text("已保存")
    expect(tr.locator("h1")).to_have_text("以旧换新怎么办理")
    expect(tr.locator(".meta")).to_contain_text("草稿")

    page.goto(live_server.url + "/")
    page.fill("#q", "旧手机能换新的吗")
    expect(page.locator("#results")).not_to_contain_text("以旧换新怎么办理")

    tr.click("a.edit")
    tr.select_option("select[name=status]", "published")
    tr.click("button[value=save]")
    expect(tr.locator(".meta")).to_contain_text("已发布")
    expect(tr.locator("section.history tbody tr")).to_have_count(2)

    first = page.locator("#results li.hit").first
    for _ in range(10):  # searches see an edit within a second (views refresh every 0.5 s)
        page.fill("#q", "")
        page.fill("#q", "旧手机能换新的吗")
        page.wait_for_timeout(300)
        if "以旧换新怎么办理" in first.inner_text():
            break
    expect(first).to_contain_text("以旧换新怎么办理")

    # a second article with the same id is refused, nothing is overwritten
    tr.goto(live_server.url + "/editor")
    tr.fill("input[name=id]", "product-trade-in")
    tr.fill("input[name=title]", "另一篇")
    tr.locator("#body").fill("正文")
    tr.click("button[value=save]")
    expect(tr.locator(".error")).to_contain_text("已存在")
    assert tr.locator("input[name=title]").input_value() == "另一篇"  # the draft is kept
    ctx.close()

    log = run_cli("audit-log", instance=live_server.instance, check=True).stdout
    assert "\twriter1\tarticle.publish\tproduct-trade-in\t" in log
    assert "\twriter1\tarticle.create\tproduct-trade-in\t" in log
