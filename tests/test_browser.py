"""The agent search page in a real browser (Debian chromium via Playwright)."""

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_type_a_query_and_see_highlighted_results(live_server, page):
    page.goto(live_server.url + "/")
    page.keyboard.press("/")
    page.keyboard.type("发票怎么开", delay=30)
    first = page.locator("#results li.hit").first
    expect(first).to_contain_text("如何开具发票")
    expect(first.locator("mark").first).to_have_text("发票")
    expect(page.locator("#status")).to_contain_text("毫秒")
    assert "q=" in page.url  # the URL follows the query, so it can be shared or reloaded


def test_keyboard_opens_article_and_copies_filled_wording(live_server, page):
    page.goto(live_server.url + "/")
    page.fill("#q", "发票")
    expect(page.locator("#results li.hit").first).to_be_visible()
    page.locator("#q").focus()
    expect(page.locator("#suggest")).to_be_visible()
    page.keyboard.press("Escape")  # close the suggestions: ↓/↑ move through the results
    expect(page.locator("#results li.hit.selected")).to_have_count(0)  # none until ↓
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    expect(page.locator("#results li.hit.selected")).to_have_count(1)
    page.keyboard.press("Enter")
    pane = page.locator("#pane")
    expect(pane.locator("h2")).to_have_text("如何开具发票")
    pane.locator("input[name='客户称呼']").fill("王女士")
    pane.locator("input[name='订单号']").fill("A1001")
    pane.locator("button.copy").first.click()
    copied = page.locator("#copied")
    expect(copied).to_have_attribute(
        "data-text",
        "您好，王女士，订单 A1001 的电子发票将在 1 个工作日内发送到您的邮箱，请注意查收。",
    )


def test_nothing_found_says_so(live_server, page):
    page.goto(live_server.url + "/")
    page.fill("#q", "量子纠缠")
    expect(page.locator("#results li.empty")).to_contain_text("没有找到")


XSS_BODY = """<script>alert('script')</script>
<img src=x onerror="alert('img')">
[点我](javascript:alert('link'))

> 您好<svg onload=alert('svg')>，发票已开具
"""


def test_stored_xss_in_an_article_never_executes(live_server, page):
    from kb.models import Article
    from kb.service import KnowledgeBase

    kb = KnowledgeBase(live_server.instance)
    kb.save(
        Article(
            id="product-xss",
            title="<img src=x onerror=alert('title')>发票攻击",
            category="product",
            body=XSS_BODY,
        ),
        by="attacker",
    )
    kb.close()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(live_server.url + "/articles/product-xss")
    expect(page.locator("h1")).to_contain_text("发票攻击")
    page.goto(live_server.url + "/")
    page.fill("#q", "发票攻击")
    hit = page.locator("#results li.hit[data-id='product-xss']")
    expect(hit).to_be_visible(timeout=10000)
    hit.click()
    expect(page.locator("#pane .wordings")).to_contain_text("发票已开具")
    page.locator("#pane a", has_text="点我").click()
    page.wait_for_timeout(300)
    assert dialogs == []
    assert page.locator("#pane script, #pane [onerror], #pane svg").count() == 0


def test_full_article_page_fills_placeholders_before_copying(live_server, page):
    page.goto(live_server.url + "/articles/product-invoice")
    wordings = page.locator(".article-page .wordings")
    wordings.locator("input[name='客户称呼']").fill("李先生")
    wordings.locator("button.copy").first.click()  # 订单号 still empty: nothing is copied
    expect(page.locator("#copied")).to_have_text("请先填写：订单号")
    expect(page.locator("#copied")).to_have_attribute("data-text", "")
    expect(wordings.locator("input[name='订单号']")).to_be_focused()
    wordings.locator("input[name='订单号']").fill("B2002")
    wordings.locator("button.copy").first.click()
    expect(page.locator("#copied")).to_have_attribute(
        "data-text",
        "您好，李先生，订单 B2002 的电子发票将在 1 个工作日内发送到您的邮箱，请注意查收。",
    )
