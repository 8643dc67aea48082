"""Issue 13 in a real browser: the same file uploaded twice is audited once (the second
run lists its conversations as skipped duplicates), and the run's XLSX download opens
in openpyxl with the expected sheets, headers and rows."""

import json

import openpyxl
import pytest
from playwright.sync_api import expect

from coach.exports import AGENT_HEADER, CONVERSATION_HEADER, FINDING_HEADER

from .conftest import add_user, open_logged_in

pytestmark = pytest.mark.browser

CHATS = [
    {
        "id": "export-1",
        "agent": "agent1",
        "turns": [
            {"role": "customer", "text": "发票什么时候开"},
            {"role": "agent", "text": "哦"},
            {"role": "agent", "text": "差不多下周吧"},
        ],
    },
    {
        "id": "export-2",
        "agent": "agent2",
        "turns": [
            {"role": "customer", "text": "你好"},
            {"role": "agent", "text": "您好，很高兴为您服务，请问有什么可以帮您？"},
            {"role": "customer", "text": "没事了"},
            {"role": "agent", "text": "感谢您的咨询，祝您生活愉快，再见！"},
        ],
    },
]


def upload(pg, path) -> str:
    pg.click("nav >> text=会话质检")
    pg.set_input_files("input[name=files]", str(path))
    pg.click("text=上传并质检")
    expect(pg.locator(".run-status")).to_contain_text("已完成", timeout=15000)
    return pg.url


def test_a_duplicate_upload_is_skipped_and_the_xlsx_download_reads_back(
    browser, live_server, tmp_path
):
    add_user(live_server.instance, "exporter1", "supervisor")
    src = tmp_path / "export-chats.jsonl"
    src.write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in CHATS) + "\n", "utf-8")
    ctx, sup = open_logged_in(browser, live_server.url, "exporter1")
    first = upload(sup, src)
    expect(sup.locator(".run-status")).to_contain_text("已检查 2/2")
    expect(sup.locator(".dupes-note")).to_have_count(0)

    second = upload(sup, src)
    assert second != first
    expect(sup.locator(".run-status")).to_contain_text("已检查 0/0")
    expect(sup.locator(".dupes-note")).to_contain_text("重复会话 2 个，已跳过")
    expect(sup.locator("table.duplicates tbody tr")).to_have_count(2)
    expect(sup.locator("table.duplicates")).to_contain_text("内容相同")
    expect(sup.locator("table.items tbody tr")).to_have_count(0)
    # the listed duplicate leads to the conversation's earlier audit
    sup.locator("table.duplicates a").first.click()
    expect(sup.locator("main")).to_contain_text("export-1")

    # counted once: the runs list shows two conversations in all, not four
    sup.click("nav >> text=会话质检")
    rows = sup.locator("table.runs tbody tr")
    progress = [rows.nth(n).locator("td").nth(3).inner_text() for n in range(2)]
    assert progress == ["0/0", "2/2"]

    sup.goto(first)
    with sup.expect_download() as info:
        sup.click("a.export-xlsx")
    path = tmp_path / "download.xlsx"
    info.value.save_as(path)
    assert info.value.suggested_filename.endswith(".xlsx")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["会话", "问题", "客服"]
    convs = [list(r) for r in wb["会话"].iter_rows(values_only=True)]
    assert convs[0] == CONVERSATION_HEADER
    assert [(r[0], r[1]) for r in convs[1:]] == [("export-1", "agent1"), ("export-2", "agent2")]
    findings = [list(r) for r in wb["问题"].iter_rows(values_only=True)]
    assert findings[0] == FINDING_HEADER
    assert {r[0] for r in findings[1:]} == {"export-1"}
    assert "差不多" in [r[6] for r in findings[1:]]  # the flagged words
    assert all(r[9] for r in findings[1:])  # each with its suggested script
    agents = [list(r) for r in wb["客服"].iter_rows(values_only=True)]
    assert agents[0] == AGENT_HEADER and sorted(r[0] for r in agents[1:]) == ["agent1", "agent2"]

    with sup.expect_download() as info:
        sup.click("a.export-csv")
    text = open(info.value.path(), encoding="utf-8").read()  # noqa: SIM115
    assert text.startswith("\ufeff会话ID,客服,轮次")
    ctx.close()
