"""Phrasing lint while writing (issue 12, item 7), in a real browser: a trainer types a
vague wording into a phrasing article and the coach's finding appears beside the
editor; an error-level one shows the override box, publishing is refused without a
reason and goes through with one, and the audit log keeps the reason."""

import pytest
from playwright.sync_api import expect

from .conftest import add_user, open_logged_in, run_cli

pytestmark = pytest.mark.browser


def test_typing_a_vague_wording_shows_the_finding_and_publishing_needs_a_reason(
    browser, live_server
):
    add_user(live_server.instance, "linter1", "trainer")
    ctx, tr = open_logged_in(browser, live_server.url, "linter1")
    tr.goto(live_server.url + "/editor")
    tr.fill("input[name=id]", "phrasing-delivery-eta")
    tr.fill("input[name=title]", "发货时效答复话术")
    panel = tr.locator("#lint")
    expect(panel).to_be_hidden()  # a product article (the default) is not linted
    tr.select_option("select[name=category]", "phrasing")
    expect(panel).to_be_visible()

    body = tr.locator("#body")
    body.click()
    body.press_sequentially("## 标准话术\n\n> 您的包裹大概三天到。")
    finding = tr.locator("#lint-findings li.lint-finding")
    expect(finding).to_have_count(1)
    expect(finding).to_contain_text("第 3 行")
    expect(finding).to_contain_text("大概")
    expect(finding).to_contain_text("含糊")  # the rule's explanation
    expect(finding.locator(".lint-suggestion")).to_contain_text("建议")
    expect(tr.locator("#lint-override")).to_be_hidden()  # a warning does not block

    body.press("End")
    body.press_sequentially("\n\n> 我保证明天一定送到。")
    expect(tr.locator("#lint-findings li.level-error")).to_have_count(2)
    expect(tr.locator("#lint-status")).to_contain_text("2 个错误级问题会阻止发布")
    expect(tr.locator("#lint-override")).to_be_visible()

    tr.select_option("select[name=status]", "published")
    tr.click("button[value=save]")
    expect(tr.locator("#lint-override .field-error")).to_contain_text(
        "未保存：标准话术中有错误级问题"
    )
    tr.check("#lint-override-check")
    tr.click("button[value=save]")
    expect(tr.locator("#lint-override .field-error")).to_contain_text("请填写理由")
    tr.fill("#lint-reason", "反面示例：培训时对照讲解")
    tr.click("button[value=save]")
    expect(tr.locator(".flash")).to_contain_text("已保存")
    expect(tr.locator(".meta")).to_contain_text("已发布")
    ctx.close()

    log = run_cli("audit-log", instance=live_server.instance, check=True).stdout
    line = next(x for x in log.splitlines() if "\tarticle.lint_override\t" in x)
    assert "\tlinter1\tarticle.lint_override\tphrasing-delivery-eta\t" in line
    assert "反面示例：培训时对照讲解" in line and "improper-promise" in line
