"""Calibration in a real browser: a supervisor draws a sample of one agent's November
conversations, reviews it (a verdict on each finding, a rating, a missed finding)
and submits; a second supervisor sees none of the first one's answers, reviews the
same sample and submits; the report shows their agreement (percent agreement,
Cohen's kappa, rating agreement) and the checker's precision per rule."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from coach.audits import AuditStore
from kb.store import Store
from storage import Database
from storage.database import close_all, sqlite_url

from .conftest import Server, open_logged_in, run_cli
from .test_calibration import NOV, chat
from .test_my_audits import make_run

pytestmark = pytest.mark.browser

RUN = [
    chat("n-1", "agent1", "哦", "差不多明天能到吧"),  # filler-bare, no-greeting, vague, no-closing
    chat("n-2", "agent1", "您好，很高兴为您服务", "差不多后天到"),  # vague-hedge, no-closing
    chat("b-1", "bob", "哦"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    inst = tmp_path_factory.mktemp("calibration") / "instance"
    for name in ("lead1", "lead2"):
        run_cli("user", "add", name, "--role", "supervisor", "--password", "correct-horse-42",
                instance=inst, check=True)  # fmt: skip
    url = sqlite_url(inst)
    store = AuditStore(Store(Database.open(url)))
    make_run(store, "十一月", RUN, NOV)
    store.store.close()
    close_all(url)
    srv = Server(inst, "serve")
    yield srv
    srv.stop()


def review(page, verdict, ratings: dict[int, str]) -> None:
    """Answer the sample's conversations in turn: verdict(rule) per finding, a rating."""
    for seq in (1, 2):
        expect(page.locator("h1")).to_contain_text(f"第 {seq}/2 个会话")
        for box in page.locator("fieldset.cal-finding").all():
            value = verdict(box.get_attribute("data-rule"))
            box.locator(f"input[value={value}]").check()
        page.locator(f"fieldset.rating input[value='{ratings[seq]}']").check()
        page.click("button:has-text('保存并继续')")


def test_two_supervisors_review_a_sample_and_the_report_shows_their_agreement(browser, server):
    ctx1, p1 = open_logged_in(browser, server.url, "lead1")
    p1.click("nav >> text=质检校准")
    expect(p1.locator("h1")).to_have_text("质检校准")
    # a bad form is answered next to its fields, in Chinese
    p1.fill("input[name=per_agent]", "0")
    p1.fill("input[name=seed]", "abc")
    p1.click("button:has-text('抽取样本')")
    expect(p1.locator(".field-error[data-field=per_agent]")).to_have_text(
        "每位客服抽取的会话数应为 1 到 50 之间的整数"
    )
    expect(p1.locator(".field-error[data-field=seed]")).to_contain_text("随机种子应为")
    p1.fill("input[name=name]", "十一月校准")
    p1.fill("input[name=from]", "2026-11-01")
    p1.fill("input[name=to]", "2026-11-30")
    p1.fill("input[name=agents]", "agent1")
    p1.fill("input[name=per_agent]", "2")
    p1.fill("input[name=seed]", "42")
    p1.click("button:has-text('抽取样本')")
    expect(p1.locator("h1")).to_contain_text("十一月校准")
    expect(p1.locator(".seed")).to_have_text("42")
    expect(p1.locator("table.sample-items tbody tr")).to_have_count(2)

    # lead1 rejects the missing greeting only; adds a missed finding on the second chat
    p1.click("a:has-text('继续评审')")
    review(p1, lambda rule: "reject" if rule == "no-greeting" else "confirm", {1: "2", 2: "3"})
    expect(p1.locator(".flash")).to_contain_text("所有会话都已评完")
    p1.click("table.sample-items a >> text=2")
    p1.select_option("select[name=rule]", "improper-attitude")
    p1.fill("input[name=turn]", "9")
    p1.click("button:has-text('添加漏检')")
    expect(p1.locator(".field-error[data-field=turn]")).to_have_text("轮次应为 1 到 3 之间的整数")
    p1.fill("input[name=turn]", "3")
    p1.fill("input[name=note]", "语气生硬")
    p1.click("button:has-text('添加漏检')")
    expect(p1.locator("table.misses tr[data-rule=improper-attitude]")).to_contain_text("语气生硬")
    p1.click("a:has-text('← 校准样本')")
    p1.click("button:has-text('提交评审')")
    expect(p1.locator(".flash")).to_contain_text("评审已提交")
    expect(p1.locator(".calibration-report")).to_contain_text("至少两位主管提交评审后")

    # lead2 sees the sample, none of lead1's answers, and no report yet
    ctx2, p2 = open_logged_in(browser, server.url, "lead2")
    p2.click("nav >> text=质检校准")
    p2.click("table.samples a >> text=#1")
    expect(p2.locator(".reviewers")).to_contain_text("lead1（已提交）")
    p2.goto(server.url + "/calibration/1/report")
    expect(p2.locator(".locked")).to_contain_text("提交你对本样本的评审后才能看到")
    p2.goto(server.url + "/calibration/1/items/1")
    expect(p2.locator("input[type=radio]:checked")).to_have_count(0)
    review(
        p2,
        lambda rule: "reject" if rule in ("no-greeting", "no-closing") else "confirm",
        {1: "2", 2: "4"},
    )
    p2.click("button:has-text('提交评审')")

    # 6 findings, judged alike on 4: 66.7 %; kappa (2/3 - 1/2) / (1 - 1/2) = 0.33;
    # ratings 2,3 against 2,4: 50.0 % exactly alike, mean absolute difference 0.50
    pair = p2.locator("table.pairs tr[data-pair='lead1|lead2']")
    expect(pair.locator(".agreement")).to_have_text("66.7%")
    expect(pair.locator(".kappa")).to_have_text("0.33")
    expect(pair.locator(".exact")).to_have_text("50.0%")
    expect(pair.locator(".mad")).to_have_text("0.50")
    precision = p2.locator("table.precision")
    expect(precision.locator("tr[data-rule=no-closing] .precision-value")).to_have_text("50.0%")
    expect(precision.locator("tr[data-rule=no-greeting] .precision-value")).to_have_text("0.0%")
    expect(precision.locator("tr[data-rule=vague-hedge] .precision-value")).to_have_text("100.0%")
    expect(p2.locator("table.miss-rules tr[data-rule=improper-attitude]")).to_contain_text("lead1")
    expect(p2.locator("table.compare tr.disagree")).to_have_count(2)

    # lead1 now sees both too
    p1.reload()
    expect(p1.locator("table.pairs .kappa")).to_have_text("0.33")
    ctx1.close()
    ctx2.close()
