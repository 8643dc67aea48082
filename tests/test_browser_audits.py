"""The supervisor workspace in a real browser: upload, read a conversation with its
flags, appeal as the agent, decide as the supervisor; hostile transcripts stay text."""

import json

import pytest
from playwright.sync_api import expect

from .conftest import add_user, open_logged_in

pytestmark = pytest.mark.browser

HOSTILE = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
CHATS = [
    {
        "id": "conv-<b>1</b>",
        "agent": "agent1",
        "turns": [
            {"role": "customer", "text": "我的退款到哪了" + HOSTILE},
            {"role": "agent", "text": "哦"},
            {"role": "agent", "text": "差不多明天到吧" + HOSTILE},
        ],
    },
    {
        "id": "conv-2",
        "agent": '<svg onload="window.__xss = 3">',
        "turns": [
            {"role": "customer", "text": "你好"},
            {"role": "agent", "text": "您好，很高兴为您服务"},
        ],
    },
]


def no_script_ran(pg) -> None:
    assert pg.evaluate("window.__xss") is None
    assert pg.locator("main script, main [onerror], main [onload], main svg").count() == 0


def test_upload_read_appeal_and_decide_with_hostile_transcripts(browser, live_server, tmp_path):
    add_user(live_server.instance, "lead1", "supervisor")
    upload = tmp_path / "<img src=x onerror=alert(1)>.jsonl"
    upload.write_text(
        "\n".join(json.dumps(c, ensure_ascii=False) for c in CHATS) + "\n{broken\n",
        encoding="utf-8",
    )
    dialogs = []
    sup_ctx, sup = open_logged_in(browser, live_server.url, "lead1")
    sup.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sup.click("nav >> text=会话质检")
    sup.set_input_files("input[name=files]", str(upload))
    sup.fill("input[name=name]", "<i>夜班</i>" + HOSTILE)
    sup.click("text=上传并质检")
    expect(sup.locator(".run-status")).to_contain_text("已完成", timeout=15000)
    expect(sup.locator("h1")).to_contain_text("<i>夜班</i>")
    expect(sup.locator("table.errors")).to_contain_text("第")  # the broken line is listed
    expect(sup.locator("table.agents")).to_contain_text("<svg onload")
    no_script_ran(sup)

    sup.click("text=conv-<b>1</b>")
    expect(sup.locator("ol.transcript")).to_contain_text("差不多明天到吧<script>")
    expect(sup.locator(".finding").first).to_be_visible()
    expect(sup.locator(".finding .script").first).to_contain_text("标准话术")
    no_script_ran(sup)
    conv_url = sup.url

    agent_ctx, agent = open_logged_in(browser, live_server.url, "agent1")
    agent.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    agent.click("nav >> text=我的质检")
    agent.click("text=conv-<b>1</b>")
    assert agent.url == conv_url
    no_script_ran(agent)
    score_before = float(agent.locator("strong.score").inner_text())
    bare = agent.locator(".finding", has_text="「哦」")
    bare.locator("summary", has_text="申诉").click()
    bare.locator("textarea[name=reason]").fill("顾客还在打字" + HOSTILE)
    bare.locator("button", has_text="提交申诉").click()
    expect(agent.locator(".flash")).to_contain_text("申诉已提交")
    expect(agent.locator(".appeal-open")).to_contain_text("顾客还在打字<script>")
    no_script_ran(agent)

    sup.click("nav >> text=申诉")
    row = sup.locator("table.appeals tr", has_text="顾客还在打字")
    row.locator("input[name=note]").fill("同意，下不为例")
    row.locator("button", has_text="采纳").click()
    expect(sup.locator(".flash")).to_contain_text("分数已重算")
    no_script_ran(sup)

    agent.goto(conv_url)
    expect(agent.locator(".appeal-accepted")).to_contain_text("同意，下不为例")
    assert float(agent.locator("strong.score").inner_text()) > score_before
    assert dialogs == []
    sup_ctx.close()
    agent_ctx.close()
