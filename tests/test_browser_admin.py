"""Issue 14 item 5 in a real browser: an admin adds a user, creates an API token that is
shown once and revokes it, filters the audit log and exports it; the new user must
change the initial password before anything else; other roles get 403."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from playwright.sync_api import expect

from .conftest import PASSWORD, add_user, open_logged_in

pytestmark = pytest.mark.browser

NEW_USER = "xiaoli_b"
INITIAL = "initial-pass-88"
CHOSEN = "my-own-secret-99"


def test_admin_adds_a_user_creates_and_revokes_a_token_and_filters_the_log(
    browser, live_server, tmp_path
):
    add_user(live_server.instance, "adm_b", "admin")
    ctx, pg = open_logged_in(browser, live_server.url, "adm_b")
    try:
        # -- users: the server's Chinese messages next to the fields, then a new user
        pg.click("nav >> text=账号")
        expect(pg.locator("h1")).to_have_text("账号管理")
        form = pg.locator("form.user-add")
        form.locator("button[type=submit]").click()
        expect(pg.locator("#add-username-error")).to_have_text("请输入用户名")
        form = pg.locator("form.user-add")
        form.locator("input[name=username]").fill(NEW_USER)
        form.locator("label:has-text('客服专员') input").check()
        form.locator("input[name=password]").fill("short")
        form.locator("button[type=submit]").click()
        expect(pg.locator("#add-password-error")).to_contain_text("至少 8 个字符")
        form = pg.locator("form.user-add")
        expect(form.locator("input[name=username]")).to_have_value(NEW_USER)
        form.locator("input[name=password]").fill(INITIAL)
        form.locator("button[type=submit]").click()
        expect(pg.locator(".flash")).to_contain_text(f"已添加账号 {NEW_USER}")
        row = pg.locator(f"tr.user[data-username={NEW_USER}]")
        expect(row).to_contain_text("客服专员")
        expect(row.locator("td.state")).to_contain_text("待修改密码")

        # -- tokens: created for the new user, shown once, then revoked
        pg.click("nav >> text=API 令牌")
        pg.select_option("form.token-create select[name=username]", NEW_USER)
        pg.fill("form.token-create input[name=name]", "聊天工作台")
        pg.click("form.token-create button[type=submit]")
        secret_box = pg.locator("#new-token")
        expect(secret_box).to_have_value(re.compile(r"^kbc_"))
        secret = secret_box.input_value()
        row = pg.locator("table.tokens tr.token", has_text=NEW_USER)
        expect(row).to_contain_text("聊天工作台")
        expect(row).to_contain_text("从未使用")
        pg.goto(live_server.url + "/admin/tokens")
        expect(pg.locator("#new-token")).to_have_count(0)
        assert secret not in pg.content()  # shown once only
        row = pg.locator("table.tokens tr.token", has_text=NEW_USER)
        row.locator("button", has_text="吊销").click()
        expect(pg.locator(".flash")).to_contain_text("已吊销令牌")
        row = pg.locator("table.tokens tr.token", has_text=NEW_USER)
        expect(row.locator("td.state")).to_contain_text("已吊销")
        expect(row.locator("button")).to_have_count(0)

        # -- the audit log: filtered by who, what and when, then exported
        pg.click("nav >> text=审计日志")
        today = dt.datetime.now(dt.UTC).date()  # a day either side: no edge at midnight
        filt = pg.locator("form.log-filter")
        filt.locator("input[name=actor]").fill("adm_b")
        filt.locator("select[name=action]").select_option("token.")
        filt.locator("input[name=from]").fill((today - dt.timedelta(1)).isoformat())
        filt.locator("input[name=to]").fill((today + dt.timedelta(1)).isoformat())
        filt.locator("button[type=submit]").click()
        expect(pg.locator("p.count")).to_have_text("符合条件的共 2 条，最新的在前。")
        rows = pg.locator("table.audit-log tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_contain_text("吊销 API 令牌")
        expect(rows.nth(1)).to_contain_text("创建 API 令牌")
        expect(rows.nth(1).locator("dl.detail")).to_contain_text("用途")
        expect(rows.nth(1).locator("dl.detail")).to_contain_text("聊天工作台")
        expect(pg.locator("table.audit-log")).not_to_contain_text("user.add")
        with pg.expect_download() as info:
            pg.click("form.log-filter >> text=导出 CSV")
        path = tmp_path / "log.csv"
        info.value.save_as(path)
        raw = path.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")
        lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
        assert [line[3] for line in lines[1:]] == ["token.revoke", "token.create"]
        assert lines[2][4] == NEW_USER and lines[2][5] == "用途：聊天工作台"

        # a bad date is refused with a Chinese message next to it
        pg.goto(live_server.url + "/admin/audit-log?from=2026-02-30")
        expect(pg.locator("#log-from-error")).to_contain_text("年-月-日")
    finally:
        ctx.close()

    # -- the new user logs in with the initial password: a new one comes first
    ctx = browser.new_context(locale="zh-CN")
    try:
        user = ctx.new_page()
        user.goto(live_server.url + "/login")
        user.fill("input[name=username]", NEW_USER)
        user.fill("input[name=password]", INITIAL)
        user.click("button[type=submit]")
        user.wait_for_url(live_server.url + "/account/password")
        expect(user.locator(".forced")).to_contain_text("管理员设置的临时密码")
        user.goto(live_server.url + "/")
        user.wait_for_url(live_server.url + "/account/password")  # nothing else until changed
        user.fill("input[name=current]", INITIAL)
        user.fill("input[name=new]", CHOSEN)
        user.fill("input[name=confirm]", CHOSEN + "x")
        user.click("form.change-password button[type=submit]")
        expect(user.locator("#confirm-error")).to_have_text("两次输入的新密码不一致")
        user.fill("input[name=current]", INITIAL)
        user.fill("input[name=new]", CHOSEN)
        user.fill("input[name=confirm]", CHOSEN)
        user.click("form.change-password button[type=submit]")
        user.wait_for_url(live_server.url + "/")
        expect(user.locator(".flash")).to_contain_text("密码已修改")
        expect(user.locator("#q")).to_be_visible()
        # an agent: no admin links, and 403 on the admin pages
        expect(user.locator("nav")).not_to_contain_text("审计日志")
        expect(user.locator("nav")).not_to_contain_text("账号")
        for path in ("/admin/users", "/admin/tokens", "/admin/audit-log"):
            resp = user.goto(live_server.url + path)
            assert resp.status == 403, path
            expect(user.locator(".error-page")).to_contain_text("没有权限")
    finally:
        ctx.close()


def test_an_admin_reset_sends_the_user_to_change_the_password(browser, live_server):
    add_user(live_server.instance, "adm_r", "admin")
    add_user(live_server.instance, "agent_r", "agent")
    actx, admin = open_logged_in(browser, live_server.url, "adm_r")
    uctx, agent = open_logged_in(browser, live_server.url, "agent_r")
    try:
        admin.goto(live_server.url + "/admin/users")
        row = admin.locator("tr.user[data-username=agent_r]")
        row.locator("summary").click()
        row.locator("form.user-password input[name=password]").fill("temp-pass-123")
        row.locator("form.user-password button").click()
        expect(admin.locator(".flash")).to_contain_text("下次登录后须先修改密码")
        # the agent's old session ended; logging in with the reset password leads to the form
        agent.goto(live_server.url + "/")
        agent.wait_for_url(re.compile(r"/login"))
        agent.fill("input[name=username]", "agent_r")
        agent.fill("input[name=password]", "temp-pass-123")
        agent.click("button[type=submit]")
        agent.wait_for_url(live_server.url + "/account/password")
        agent.fill("input[name=current]", "temp-pass-123")
        agent.fill("input[name=new]", PASSWORD + "-2")
        agent.fill("input[name=confirm]", PASSWORD + "-2")
        agent.click("form.change-password button[type=submit]")
        agent.wait_for_url(live_server.url + "/")
        # the admin cannot disable themself
        admin.goto(live_server.url + "/admin/users")
        row = admin.locator("tr.user[data-username=adm_r]")
        row.locator("summary").click()
        row.locator("form.user-state button").click()
        expect(admin.locator("tr.user[data-username=adm_r] [role=alert]")).to_have_text(
            "不能停用自己的账号"
        )
    finally:
        actx.close()
        uctx.close()
