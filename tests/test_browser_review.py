"""Review and history in a real browser (issue 12, items 4, 5 and 6): a trainer writes
and submits an article, a second trainer sends it back with a comment (required, said
in Chinese next to the field) and then approves it; the agent finds it marked 已核实;
a trainer views the diff between two revisions and restores the first."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import FIXTURES, Server, add_user, open_logged_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server of its own: these tests add and change articles."""
    inst = tmp_path_factory.mktemp("review") / "instance"
    for name, role in (("author1", "trainer"), ("reviewer1", "trainer"), ("agent9", "agent")):
        add_user(inst, name, role)
    srv = Server(inst, "serve", "--articles", str(FIXTURES / "articles"))
    yield srv
    srv.stop()


FIRST = "延长保修可在下单后 30 天内购买，价格为商品价的 5%。"
SECOND = "延长保修可在签收后 60 天内购买，价格为商品价的 5%。"


def test_submit_send_back_approve_find_diff_and_restore(browser, server):
    url = server.url
    ctx1, author = open_logged_in(browser, url, "author1")
    ctx2, reviewer = open_logged_in(browser, url, "reviewer1")

    # the author writes a draft and submits it
    author.goto(url + "/editor")
    author.fill("input[name=title]", "延保服务怎么购买")
    author.locator("#body").fill(FIRST)
    author.click("button[value=save]")
    expect(author.locator(".flash")).to_contain_text("已保存")
    article_url = author.url.split("#")[0]
    article_id = article_url.rsplit("/", 1)[1]
    expect(author.locator("section.review")).to_be_visible()
    expect(author.locator("button.approve")).to_have_count(0)  # a draft: nothing to approve
    author.click("button.submit-review")
    expect(author.locator(".flash")).to_contain_text("已提交审核")
    expect(author.locator(".meta .status-review")).to_have_text("待审核")

    # the author may not approve their own change: no button, a hint instead
    expect(author.locator("button.approve")).to_have_count(0)
    expect(author.locator("section.review .own-change")).to_contain_text("需由其他审核人审核通过")

    # the reviewer sends it back: without a comment the server says why, next to the field
    reviewer.goto(article_url)
    reviewer.click("button.send-back")
    expect(reviewer.locator("section.review .field-error")).to_have_text(
        "退回修改时请填写意见，说明需要修改的地方"
    )
    reviewer.locator("section.review textarea[name=comment]").fill("请写明从签收起算，期限为 60 天")
    reviewer.click("button.send-back")
    expect(reviewer.locator(".flash")).to_contain_text("已退回修改")
    expect(reviewer.locator(".comment.kind-send_back")).to_contain_text("请写明从签收起算")
    expect(reviewer.locator(".meta .status-draft")).to_have_text("草稿")

    # the author sees the comment in the editor, fixes the text and submits again
    author.goto(url + f"/editor/{article_id}")
    expect(author.locator(".review-comments")).to_contain_text("请写明从签收起算")
    author.locator("#body").fill(SECOND)
    author.click("button[value=save]")
    expect(author.locator(".flash")).to_contain_text("已保存")
    author.click("button.submit-review")
    expect(author.locator(".flash")).to_contain_text("已提交审核")

    # the reviewer approves: published
    reviewer.goto(article_url)
    reviewer.click("button.approve")
    expect(reviewer.locator(".flash")).to_contain_text("已审核通过并发布")
    expect(reviewer.locator(".meta .status-published")).to_have_text("已发布")
    expect(reviewer.locator(".comment.kind-approve")).to_have_count(1)

    # the agent finds it, marked 已核实 with the date, on the results and the article
    ctx3, agent = open_logged_in(browser, url, "agent9")
    agent.goto(url + "/?q=延保服务怎么购买")
    hit = agent.locator(f"li.hit[data-id='{article_id}']")
    expect(hit.locator(".verify-verified")).to_have_text(re.compile(r"已核实（\d{4}-\d\d-\d\d）"))
    # the same mark on the results drawn as the agent types (the API's `verified`)
    agent.fill("#q", "延保服务购买")
    hit = agent.locator(f"#results li.hit[data-id='{article_id}']")
    expect(hit.locator(".verify-verified")).to_have_text(re.compile(r"已核实（\d{4}-\d\d-\d\d）"))
    agent.goto(article_url)
    expect(agent.locator(".meta .verify-verified")).to_contain_text("已核实")
    expect(agent.locator("section.review")).to_have_count(0)  # no review tools for agents
    expect(agent.locator("a.view-rev")).to_have_count(0)

    # the author compares the first and the current revision, then restores the first
    author.goto(article_url)
    author.locator(".diff-form input[name=from]").fill("1")
    author.locator(".diff-form button").click()
    body = author.locator(".diff-field[data-field=body] .diff")
    expect(body.locator("del")).to_have_text(["下单", "30"])
    expect(body.locator("ins")).to_have_text(["签收", "60"])
    expect(author.locator(".diff-field[data-field=status] .diff ins")).to_have_text("published")
    author.click("a.view-old")
    expect(author.locator(".revision-page .notice")).to_contain_text("第 1 版")
    expect(author.locator(".article-body")).to_contain_text("下单后 30 天")
    author.click("button.restore")
    expect(author.locator(".flash")).to_contain_text("已把第 1 版恢复为")
    expect(author.locator(".article-body")).to_contain_text("下单后 30 天")
    expect(author.locator(".meta .status-published")).to_have_text("已发布")  # status kept
    for ctx in (ctx1, ctx2, ctx3):
        ctx.close()
