"""Issue 10 item 9: every main page works under the Content-Security-Policy (no inline
script, no inline style), as the role that uses it, in a real browser."""

import pytest
from playwright.sync_api import expect

from .conftest import add_user, open_logged_in

pytestmark = pytest.mark.browser


def watch(pg) -> list[str]:
    """Collect CSP violations (Chromium reports them on the console) and page errors."""
    problems: list[str] = []

    def on_console(msg):
        text = msg.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            problems.append(f"console: {text}")

    pg.on("console", on_console)
    pg.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    return problems


def visit(browser, base: str, username: str, checks) -> None:
    ctx, pg = open_logged_in(browser, base, username)
    problems = watch(pg)
    try:
        for path, check in checks:
            resp = pg.goto(base + path)
            assert resp.ok, path
            assert "default-src 'self'" in resp.headers["content-security-policy"]
            check(pg)
            pg.wait_for_load_state("networkidle")
        assert problems == []
    finally:
        ctx.close()


def search_works(pg):
    pg.fill("#q", "发票")
    expect(pg.locator("#results li.hit").first).to_contain_text("如何开具发票")
    pg.locator("#results li.hit").first.click()
    expect(pg.locator("#pane h2")).to_have_text("如何开具发票")


def article_works(pg):
    expect(pg.locator("h1")).to_have_text("如何开具发票")
    pg.locator("button.copy").first.click()  # search.js ran
    expect(pg.locator("#copied")).to_contain_text("请先填写")  # it asks for the placeholders


def scripts_work(pg):
    pg.fill("#ph-1", "小王的店")
    expect(pg.locator(".script-preview")).to_contain_text("小王的店")  # scripts.js ran
    expect(pg.locator(".script-page")).to_have_css("max-width", "820px")  # scripts.css loaded


def editor_works(pg):
    pg.locator("#body").fill("## 标题\n\n1. 第一步")
    expect(pg.locator("#preview li").first).to_have_text("第一步")  # editor.js ran


def has_heading(pg):
    expect(pg.locator("main h1, main h2").first).to_be_visible()


def test_agent_pages_pass_the_csp(browser, live_server):
    visit(
        browser,
        live_server.url,
        "agent1",
        [
            ("/", search_works),
            ("/articles/product-invoice", article_works),
            ("/scripts/greeting-standard-1", scripts_work),
            ("/my/audits", has_heading),
        ],
    )


def test_trainer_editor_passes_the_csp(browser, live_server):
    add_user(live_server.instance, "csp_trainer", "trainer")
    visit(
        browser,
        live_server.url,
        "csp_trainer",
        [("/editor/product-invoice", editor_works), ("/editor", editor_works)],
    )


def test_supervisor_and_admin_pages_pass_the_csp(browser, live_server):
    add_user(live_server.instance, "csp_super", "supervisor")
    add_user(live_server.instance, "csp_admin", "admin")
    visit(
        browser,
        live_server.url,
        "csp_super",
        [
            ("/audits", has_heading),
            ("/appeals", has_heading),
            ("/rules", has_heading),
            ("/scripts/usage", has_heading),
            ("/settings/agents", has_heading),
        ],
    )
    visit(
        browser,
        live_server.url,
        "csp_admin",
        [
            ("/admin/audit-log", has_heading),
            ("/admin/users", has_heading),
            ("/admin/tokens", has_heading),
            ("/account/password", has_heading),
            ("/pins", has_heading),
        ],
    )


def test_an_inline_script_would_be_reported(browser, live_server):
    """The watch above does see violations: an injected inline script is refused."""
    ctx, pg = open_logged_in(browser, live_server.url, "agent1")
    problems = watch(pg)
    try:
        pg.goto(live_server.url + "/")
        pg.evaluate(
            "() => { const s = document.createElement('script');"
            " s.textContent = 'window.__inline = 1'; document.body.appendChild(s); }"
        )
        assert pg.evaluate("window.__inline") is None
        pg.wait_for_function("() => true")  # let the console message arrive
        assert any("Content Security Policy" in p for p in problems), problems
    finally:
        ctx.close()
