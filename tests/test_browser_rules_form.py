"""Rules by form in a real browser (issue 13, item 6): a supervisor switches a rule off
in the form, tries the draft on a pasted chat, and sees the finding gone beside the
saved pack's, with nothing saved."""

from __future__ import annotations

from .conftest import add_user, open_logged_in

CHAT = "客服: 您好，请问有什么可以帮您？\n顾客: 快递什么时候到\n客服: 估计明天到\n"


def test_switching_a_rule_off_by_form_shows_in_the_playground(browser, live_server):
    add_user(live_server.instance, "rules_lead", "supervisor")
    ctx, pg = open_logged_in(browser, live_server.url, "rules_lead")
    try:
        pg.goto(live_server.url + "/rules")
        versions = pg.locator("#history").inner_text()  # 历史版本（共 N 个）
        row = pg.locator('tr[data-rule="vague-hedge"]').first
        row.get_by_label("启用 vague-hedge").uncheck()
        pg.get_by_label("试运行的会话").fill(CHAT)
        pg.click("button.try-form")
        result = pg.locator("section.playground-result")
        result.wait_for()
        saved = result.locator(".play-saved tr.finding.removed[data-rule=vague-hedge]")
        assert saved.count() == 1 and "估计" in saved.inner_text()
        assert "草稿中没有" in saved.inner_text()
        assert result.locator(".play-draft tr[data-rule=vague-hedge]").count() == 0
        score_saved = float(result.locator(".score-saved").inner_text())
        score_draft = float(result.locator(".score-draft").inner_text())
        assert score_draft > score_saved
        # the draft stays a draft: the form still shows it, nothing was saved
        assert not pg.get_by_label("启用 vague-hedge").is_checked()
        assert pg.get_by_label("试运行的会话").input_value().startswith("客服: 您好")
        assert pg.locator("#history").inner_text() == versions
        # a bad paste is said in Chinese, next to the playground
        pg.get_by_label("试运行的会话").fill("随便写点什么")
        pg.click("button.try-yaml")
        assert "无法读取粘贴的会话" in pg.locator("section.playground-result").inner_text()
    finally:
        ctx.close()
