"""Trainers in a real browser (issue 12): one article edited from two browser contexts
(the second save is refused with the diff, then re-applied), 文章管理 with its filters,
and a new article whose id is made from its Chinese title."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import FIXTURES, Server, add_user, open_logged_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server of its own: these tests change the fixture articles."""
    inst = tmp_path_factory.mktemp("trainer") / "instance"
    for name in ("writer1", "writer2"):
        add_user(inst, name, "trainer")
    srv = Server(inst, "serve", "--articles", str(FIXTURES / "articles"))
    yield srv
    srv.stop()


def test_second_save_from_another_browser_is_refused_with_the_diff_then_reapplied(browser, server):
    ctx1, one = open_logged_in(browser, server.url, "writer1")
    ctx2, two = open_logged_in(browser, server.url, "writer2")
    for page in (one, two):
        page.goto(server.url + "/editor/product-refund")
    original = one.locator("#body").input_value()
    assert "3 到 5 个工作日" in original

    one.locator("#body").fill(original.replace("1 个工作日", "2 个工作日"))
    one.click("button[value=save]")
    expect(one.locator(".flash")).to_contain_text("已保存")

    mine = original.replace("3 到 5 个工作日", "3 到 7 个工作日") + "\n\n节假日顺延。"
    two.locator("#body").fill(mine)
    two.click("button[value=save]")
    conflict = two.locator("section.conflict")
    expect(conflict).to_be_visible()
    expect(conflict.locator("p.error")).to_contain_text("writer1")
    expect(conflict.locator("p.error")).to_contain_text("未保存")
    body_diff = conflict.locator(".diff-field[data-field=body] .diff").first
    expect(body_diff.locator("ins").first).to_have_text("1")  # mine still says 1 …
    expect(body_diff.locator("del").first).to_have_text("2")  # … where the current says 2
    expect(body_diff.locator("ins", has_text="节假日顺延")).to_have_count(1)
    expect(body_diff.locator("del", has_text="5")).to_have_count(1)
    assert two.locator("#body").input_value() == mine  # my text is kept, unsaved

    # re-apply: my text on top of the current version; I put back writer1's change and save
    two.click("button.reapply")
    expect(two.locator(".notice")).to_contain_text("请检查后再保存")
    expect(two.locator("section.conflict")).to_have_count(0)
    assert two.locator("input[name=version]").input_value() == "2"
    two.locator("#body").fill(mine.replace("1 个工作日", "2 个工作日"))
    two.click("button[value=save]")
    expect(two.locator(".flash")).to_contain_text("已保存")
    expect(two.locator(".meta")).to_contain_text("版本 3")
    text = two.locator(".article-body").inner_text()
    assert "2 个工作日" in text and "3 到 7 个工作日" in text and "节假日顺延" in text

    # a form opened now is based on the newest version
    one.goto(server.url + "/editor/product-refund")
    assert one.locator("input[name=version]").input_value() == "3"
    ctx1.close()
    ctx2.close()


def test_new_article_gets_an_id_from_its_chinese_title(browser, server):
    ctx, page = open_logged_in(browser, server.url, "writer1")
    page.goto(server.url + "/editor")
    page.fill("input[name=title]", "以旧换新怎么办理")
    expect(page.locator("#article-id")).to_have_value("product-yijiuhuanxin-zenme-banli")
    page.select_option("select[name=category]", "norm")
    expect(page.locator("#article-id")).to_have_value("norm-yijiuhuanxin-zenme-banli")
    page.select_option("select[name=category]", "product")
    expect(page.locator("#article-id")).to_have_value("product-yijiuhuanxin-zenme-banli")
    page.locator("#body").fill("到门店出示旧机，评估后抵扣。")
    page.click("button[value=save]")
    expect(page).to_have_url(server.url + "/articles/product-yijiuhuanxin-zenme-banli")
    expect(page.locator("h1")).to_have_text("以旧换新怎么办理")

    # the same title again: the next free id; a Chinese id typed by hand gets the
    # server's Chinese message beside the field, never the browser's English one
    page.goto(server.url + "/editor")
    page.fill("input[name=title]", "以旧换新怎么办理")
    expect(page.locator("#article-id")).to_have_value("product-yijiuhuanxin-zenme-banli-2")
    page.fill("#article-id", "以旧换新")
    page.fill("input[name=title]", "以旧换新怎么办理（门店）")  # typed ids are never replaced
    page.click("button[value=save]")
    expect(page.locator(".field-error")).to_contain_text("只能用字母、数字")
    assert page.locator("#article-id").input_value() == "以旧换新"
    assert page.locator("#article-id").evaluate("el => el.validationMessage") == ""
    # emptied, the server makes the id itself (no JavaScript needed for that)
    page.fill("#article-id", "")
    page.click("button[value=save]")
    expect(page).to_have_url(re.compile(r"/articles/product-yijiuhuanxin-zenme-banli-men-?dian"))
    ctx.close()


def test_article_management_filters(browser, server):
    ctx, page = open_logged_in(browser, server.url, "writer2")
    page.click("nav >> text=文章管理")
    expect(page.locator("h1")).to_have_text("文章管理")
    rows = page.locator("table.article-list tbody tr")
    drafts_tab = page.locator(".status-tabs a[data-status=draft]")
    drafts = int(re.search(r"草稿（(\d+)）", drafts_tab.inner_text()).group(1))
    all_count = rows.count()
    assert all_count >= 4 and drafts >= 1
    drafts_tab.click()
    expect(rows).to_have_count(drafts)
    expect(rows.locator(".badge", has_text="草稿")).to_have_count(drafts)
    expect(rows.filter(has_text="草稿中的发票话术")).to_have_count(1)
    page.click(".status-tabs a[data-status='']")
    page.fill("input[name=q]", "发票")
    page.click(".filters button[type=submit]")
    expect(rows).to_have_count(2)  # 如何开具发票 and the draft
    page.select_option("select[name=category]", "phrasing")
    page.click(".filters button[type=submit]")
    expect(rows).to_have_count(1)
    assert "q=" in page.url and "category=phrasing" in page.url
    page.click("text=清除筛选")
    expect(rows).to_have_count(all_count)
    # 我的草稿: a draft of my own, and nobody else's
    page.goto(server.url + "/editor")
    page.fill("input[name=title]", "我的新草稿")
    page.locator("#body").fill("正文")
    page.click("button[value=save]")
    expect(page.locator(".flash")).to_contain_text("已保存")
    page.goto(server.url + "/articles")
    page.click(".status-tabs a.mine")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("我的新草稿")
    ctx.close()
