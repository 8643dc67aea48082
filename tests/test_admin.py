"""Issue 14 item 5: the admin pages (users, API tokens, the audit log) and the password
change forced after an admin reset, through the library and over HTTP."""

from __future__ import annotations

import csv
import io

import pytest

from kb import accounts as accounts_mod
from kb.accounts import Accounts, FieldError, Refused
from kb.store import Store
from storage import Database

from .conftest import PASSWORD, csrf_token, login, signed_in

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
NEW_PASSWORD = "brand-new-secret-7"


@pytest.fixture
def acc(instance, database_url):
    store = Store(Database.for_instance(instance, database_url))
    yield Accounts(store)
    store.close()


# -- the library ----------------------------------------------------------------------------


@BOTH
def test_an_admin_cannot_lock_the_admins_out(acc):
    acc.add("boss", PASSWORD, ["admin"])
    acc.add("agent7", PASSWORD, ["agent"])
    with pytest.raises(Refused, match="不能停用自己的账号"):
        acc.set_disabled("boss", True, actor="boss")
    with pytest.raises(Refused, match="最后一位启用的管理员"):
        acc.set_disabled("boss", True, actor="cli")
    with pytest.raises(Refused, match="最后一位启用的管理员"):
        acc.set_roles("boss", ["trainer"], actor="cli")
    with pytest.raises(Refused, match="不能去掉自己的管理员角色"):
        acc.set_roles("boss", ["trainer"], actor="boss")
    assert not acc.by_name("boss").disabled and acc.by_name("boss").roles == ("admin",)
    refused = [e["action"] for e in acc.audit_entries()]
    assert refused == ["user.add", "user.add"]  # nothing written for a refused change

    acc.add("boss2", PASSWORD, ["admin", "agent"])
    acc.set_roles("boss", ["trainer", "admin"], actor="boss")  # keeps admin: fine
    acc.set_disabled("boss", True, actor="boss2")  # another admin remains
    with pytest.raises(Refused, match="最后一位"):
        acc.set_roles("boss2", ["agent"], actor="cli")
    acc.set_disabled("agent7", True, actor="boss2")  # not an admin: no guard
    acc.set_disabled("boss", False, actor="boss2")
    acc.set_roles("boss2", ["agent"], actor="boss")
    assert [u.username for u in acc.list() if u.has("admin") and not u.disabled] == ["boss"]


@BOTH
def test_a_reset_password_must_be_changed_and_logins_are_stamped(acc):
    acc.add("amy", PASSWORD, ["agent"])
    assert acc.overview()[0]["last_login_at"] == ""
    user = acc.authenticate("amy", PASSWORD)
    assert not user.must_change
    (row,) = acc.overview()
    assert row["last_login_at"][:4] == row["created_at"][:4] and row["created_at"]

    acc.set_password("amy", "temporary-pass-1", actor="boss", must_change=True)
    user = acc.authenticate("amy", "temporary-pass-1")
    assert user.must_change and acc.session_user(acc.create_session(user)).must_change
    entry = acc.audit_entries(1)[0]
    assert (entry["actor"], entry["action"], entry["target"]) == ("boss", "user.passwd", "amy")
    assert entry["detail"] == '{"must_change": true}'

    cases = [
        (("", NEW_PASSWORD, NEW_PASSWORD), "current", "请输入当前密码"),
        (("temporary-pass-1", "", ""), "new", "请输入密码"),
        (("temporary-pass-1", "short", "short"), "new", "至少 8 个字符"),
        (("temporary-pass-1", "aaaaaaaaaa", "aaaaaaaaaa"), "new", "同一个字符"),
        (("temporary-pass-1", "AMY", "AMY"), "new", "至少 8"),
        (("temporary-pass-1", NEW_PASSWORD, NEW_PASSWORD + "x"), "confirm", "不一致"),
        (("temporary-pass-1", "temporary-pass-1", "temporary-pass-1"), "new", "不能与当前密码相同"),
        (("wrong-password-9", NEW_PASSWORD, NEW_PASSWORD), "current", "当前密码不正确"),
    ]
    for (current, new, confirm), field, message in cases:
        with pytest.raises(FieldError, match=message) as info:
            acc.change_own_password("amy", current, new, confirm)
        assert info.value.field == field
    acc.change_own_password("amy", "temporary-pass-1", NEW_PASSWORD, NEW_PASSWORD)
    assert not acc.authenticate("amy", NEW_PASSWORD).must_change
    assert acc.audit_entries(1)[0]["actor"] == "amy"


def test_the_password_policy_names_the_field(acc):
    for args, field, message in [
        (("", PASSWORD, ["agent"]), "username", "请输入用户名"),
        (("a", PASSWORD, ["agent"]), "username", "2–32"),
        (("carol", PASSWORD, []), "roles", "角色无效"),
        (("carol", "", ["agent"]), "password", "请输入密码"),
        (("carol", "1234567", ["agent"]), "password", "至少 8"),
        (("carol", "x" * 201, ["agent"]), "password", "最多 200"),
        (("carolcarol", "CarolCarol", ["agent"]), "password", "不能与用户名相同"),
    ]:
        with pytest.raises(FieldError, match=message) as info:
            acc.add(*args)
        assert info.value.field == field
    acc.add("carol", PASSWORD, ["agent"], must_change=True)
    assert acc.by_name("carol").must_change
    with pytest.raises(FieldError, match="已存在") as info:
        acc.add("carol", PASSWORD, ["agent"])
    assert info.value.field == "username"


@BOTH
def test_token_last_use_is_recorded_at_most_once_a_minute(acc, monkeypatch):
    acc.add("bot", PASSWORD, ["agent"])
    tok = acc.create_token("bot", "聊天工作台", actor="boss")
    (t,) = acc.all_tokens()
    assert (t["username"], t["name"], t["last_used_at"]) == ("bot", "聊天工作台", "")
    assert acc.user_for_token(tok).username == "bot"
    first = acc.all_tokens()[0]["last_used_at"]
    assert first
    acc.user_for_token(tok)
    assert acc.all_tokens()[0]["last_used_at"] == first
    later = "2999-01-01T00:00:00.000+00:00"
    monkeypatch.setattr(accounts_mod, "now_iso", lambda: later)
    acc.user_for_token(tok)
    assert acc.all_tokens()[0]["last_used_at"] == later
    with pytest.raises(FieldError, match="最多 100") as info:
        acc.create_token("bot", "名" * 101)
    assert info.value.field == "name"
    with pytest.raises(FieldError, match="不存在"):
        acc.create_token("nobody")
    assert acc.token_count() == 1


@BOTH
def test_audit_log_filters(acc):
    from core.auditlog import AuditFilter

    acc.add("boss", PASSWORD, ["admin"], actor="cli")
    acc.add("amy", PASSWORD, ["agent"], actor="boss")
    acc.create_token("amy", "console", actor="boss")
    acc.audit("boss", "pin.add", "product-invoice", {"pin": 1, "query": "发票"})
    acc.audit("trainer1", "article.publish", "product-invoice", {"version": 2})
    today = acc.audit_entries(1)[0]["at"][:10]

    def actions(**args) -> list[str]:
        where = AuditFilter.from_args(args).where()
        assert acc.audit_count(where) == len(acc.audit_entries(100, 0, where))
        return [e["action"] for e in acc.audit_entries(100, 0, where)]

    assert actions(actor="boss") == ["pin.add", "token.create", "user.add"]
    assert actions(action="user.add") == ["user.add", "user.add"]
    assert actions(action="token.") == ["token.create"]
    assert actions(target="product-invoice") == ["article.publish", "pin.add"]
    assert actions(actor="boss", action="user.") == ["user.add"]
    assert len(actions(**{"from": today, "to": today})) == 5
    assert actions(**{"from": "2999-01-01"}) == []
    assert actions(to="2000-01-01") == []
    assert actions(actor="nobody") == []
    assert AuditFilter.from_args({"action": "user.%"}).errors == {"action": "没有这种操作"}

    bad = AuditFilter.from_args({"from": "2026-13-01", "to": "yesterday", "action": "x;y"})
    assert set(bad.errors) == {"from", "to", "action"} and bad.where() == {}
    swapped = AuditFilter.from_args({"from": "2026-02-01", "to": "2026-01-01"})
    assert swapped.errors == {"to": "结束日期不能早于开始日期"}
    assert acc.audit_actors() == ["boss", "cli", "trainer1"]


def test_details_are_readable_and_csv_cells_are_safe():
    from core.auditlog import csv_chunks, detail_items, detail_text, safe_cell

    assert detail_items('{"roles": ["agent", "admin"], "must_change": true}') == [
        ("角色", "客服专员、管理员"),
        ("下次登录须改密码", "是"),
    ]
    assert detail_text('{"from": "draft", "to": "published", "version": 3}') == (
        "原状态：草稿；新状态：已发布；版本：3"
    )
    assert detail_items('{"mystery": 1}') == [("mystery", "1")] and detail_items("{}") == []
    assert detail_items("not json") == [("详情", "not json")]
    for cell in ("=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(cell) == "'" + cell
    assert safe_cell("发票 = 1") == "发票 = 1" and safe_cell(None) == ""
    entry = {"at": "2026-11-29T10:00:00.000+00:00", "actor": "=cmd|' /C calc'!A0",
             "action": "pin.add", "target": "@x", "detail": '{"query": "-发票"}'}  # fmt: skip
    text = "".join(csv_chunks(iter([entry])))
    assert text.startswith("\ufeff时间（UTC）,操作人,操作")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[1] == [
        "2026-11-29 10:00:00",
        "'=cmd|' /C calc'!A0",
        "置顶答案",
        "pin.add",
        "'@x",
        "查询：-发票",
    ]


# -- the pages --------------------------------------------------------------------------


ADMIN_ROUTES = [
    ("GET", "/admin/users"),
    ("POST", "/admin/users"),
    ("POST", "/admin/users/agent1/roles"),
    ("POST", "/admin/users/agent1/disable"),
    ("POST", "/admin/users/agent1/enable"),
    ("POST", "/admin/users/agent1/password"),
    ("GET", "/admin/tokens"),
    ("POST", "/admin/tokens"),
    ("POST", "/admin/tokens/1/revoke"),
    ("GET", "/admin/audit-log"),
    ("GET", "/admin/audit-log.csv"),
]


def test_every_admin_route_is_for_admins_only(app, users):
    admin_rules = {r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/admin/")}
    assert len(admin_rules) == 9  # a new admin route is added to ADMIN_ROUTES too
    for role in ("agent", "trainer", "supervisor"):
        c = signed_in(app, users[role])
        for method, url in ADMIN_ROUTES:
            resp = c.open(url, method=method, data={"username": "x", "password": PASSWORD})
            assert resp.status_code == 403, (role, method, url)
            assert "没有权限" in resp.get_data(as_text=True)
        nav = c.get("/").get_data(as_text=True)
        assert "/admin/users" not in nav and "/admin/tokens" not in nav
    admin = signed_in(app, users["admin"])
    nav = admin.get("/").get_data(as_text=True)
    assert all(link in nav for link in ("/admin/users", "/admin/tokens", "/admin/audit-log"))
    anon = app.test_client()
    assert anon.get("/admin/users").status_code == 302  # to the login page


def test_admin_posts_need_a_csrf_token(app, users):
    c = app.test_client()
    assert login(c, users["admin"]).status_code == 302
    resp = c.post("/admin/users", data={"username": "nocsrf", "password": PASSWORD,
                                        "roles": "agent"})  # fmt: skip
    assert resp.status_code == 400 and "CSRF" in resp.get_data(as_text=True)
    assert "nocsrf" not in [u.username for u in Accounts(app.extensions["kb"].store).list()]


def _field_error(html: str, field_id: str) -> str:
    import re

    match = re.search(rf'id="{field_id}-error"[^>]*>([^<]*)<', html)
    return match.group(1) if match else ""


@BOTH
def test_users_page_adds_changes_and_disables_with_the_cli_audit_entries(app, kb, users):
    admin = signed_in(app, users["admin"])
    acc = Accounts(kb.store)
    page = admin.get("/admin/users").get_data(as_text=True)
    assert all(name in page for name in users.values()) and "最近登录" in page

    def add(**form):
        return admin.post("/admin/users", data=form)

    for form, field, message in [
        ({"username": "", "roles": "agent", "password": PASSWORD}, "username", "请输入用户名"),
        ({"username": "agent1", "roles": "agent", "password": PASSWORD}, "username", "已存在"),
        ({"username": "newbie", "password": PASSWORD}, "roles", "角色无效"),
        ({"username": "newbie", "roles": "agent", "password": ""}, "password", "请输入密码"),
        ({"username": "newbie", "roles": "agent", "password": "short"}, "password", "至少 8"),
        ({"username": "newbie", "roles": "agent", "password": "1111111111"}, "password", "太弱"),
    ]:
        resp = add(**form)
        html = resp.get_data(as_text=True)
        assert resp.status_code == 400, form
        assert message in _field_error(html, f"add-{field}"), (form, html[:300])
        assert form.get("username", "") in html  # what was typed is kept
    resp = add(username="newbie", roles=["agent", "trainer"], password=PASSWORD, must_change="1")
    assert resp.status_code == 302
    assert "已添加账号 newbie" in admin.get("/admin/users").get_data(as_text=True)
    user = acc.by_name("newbie")
    assert user.roles == ("agent", "trainer") and user.must_change

    assert (
        admin.post("/admin/users/newbie/roles", data={"roles": ["supervisor"]}).status_code == 302
    )
    resp = admin.post("/admin/users/newbie/roles", data={})
    assert resp.status_code == 400 and "角色无效" in resp.get_data(as_text=True)
    assert admin.post("/admin/users/newbie/disable").status_code == 302
    assert acc.by_name("newbie").disabled
    assert admin.post("/admin/users/newbie/enable").status_code == 302
    resp = admin.post("/admin/users/admin1/disable")
    assert resp.status_code == 409 and "不能停用自己的账号" in resp.get_data(as_text=True)
    resp = admin.post("/admin/users/admin1/roles", data={"roles": ["agent"]})
    assert resp.status_code == 409 and "管理员角色" in resp.get_data(as_text=True)
    assert admin.post("/admin/users/nobody/disable").status_code == 404

    log = [(e["actor"], e["action"], e["target"]) for e in acc.audit_entries(4)]
    assert log == [
        ("admin1", "user.enable", "newbie"),
        ("admin1", "user.disable", "newbie"),
        ("admin1", "user.roles", "newbie"),
        ("admin1", "user.add", "newbie"),
    ]


def test_a_reset_password_is_changed_before_anything_else(app, kb, users):
    admin = signed_in(app, users["admin"])
    resp = admin.post("/admin/users/agent1/password", data={"password": "abc"})
    assert resp.status_code == 400 and "至少 8" in _field_error(resp.get_data(as_text=True),
                                                                "password")  # fmt: skip
    old = signed_in(app, users["agent"])
    resp = admin.post("/admin/users/agent1/password", data={"password": "temporary-pass-1"})
    assert resp.status_code == 302
    assert old.get("/api/v1/search?q=发票").status_code == 401  # signed out everywhere

    c = app.test_client()
    resp = login(c, users["agent"], "temporary-pass-1")
    assert resp.status_code == 302 and resp.location == "/account/password"
    for url in ("/", "/articles/product-invoice", "/my/audits"):
        resp = c.get(url)
        assert resp.status_code == 302 and resp.location == "/account/password", url
    api = c.get("/api/v1/search?q=发票")
    assert api.status_code == 403 and "请先修改密码" in api.get_json()["error"]
    token = csrf_token(c, "/account/password")
    form = {"csrf_token": token, "current": "temporary-pass-1", "new": "x", "confirm": "x"}
    resp = c.post("/account/password", data=form)
    assert resp.status_code == 400
    assert "至少 8" in _field_error(resp.get_data(as_text=True), "new")
    form.update(new=NEW_PASSWORD, confirm=NEW_PASSWORD)
    resp = c.post("/account/password", data=form)
    assert resp.status_code == 302 and resp.location == "/"
    assert c.get("/api/v1/search?q=发票").status_code == 200
    assert login(app.test_client(), users["agent"], NEW_PASSWORD).status_code == 302
    actions = [(e["actor"], e["action"]) for e in Accounts(kb.store).audit_entries(2)]
    assert actions == [("agent1", "user.passwd"), ("admin1", "user.passwd")]


@BOTH
def test_tokens_are_shown_once_listed_with_last_use_and_revoked(app, kb, users):
    admin = signed_in(app, users["admin"])
    resp = admin.post("/admin/tokens", data={"username": "", "name": "x"})
    assert resp.status_code == 400
    assert "请选择账号" in _field_error(resp.get_data(as_text=True), "token-username")
    resp = admin.post("/admin/tokens", data={"username": "agent1", "name": "聊天工作台"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 201 and resp.headers["Cache-Control"] == "no-store"
    import re

    secret = re.search(r'id="new-token"[^>]*value="(kbc_[^"]+)"', html).group(1)
    again = admin.get("/admin/tokens").get_data(as_text=True)
    assert secret not in again and "聊天工作台" in again and "从未使用" in again
    api = app.test_client()
    assert (
        api.get("/api/v1/search?q=发票", headers={"Authorization": f"Bearer {secret}"}).status_code
        == 200
    )
    assert "从未使用" not in admin.get("/admin/tokens").get_data(as_text=True)
    (tok,) = Accounts(kb.store).all_tokens()
    assert admin.post(f"/admin/tokens/{tok['id']}/revoke").status_code == 302
    assert "已吊销" in admin.get("/admin/tokens").get_data(as_text=True)
    assert (
        api.get("/api/v1/search?q=发票", headers={"Authorization": f"Bearer {secret}"}).status_code
        == 401
    )
    assert admin.post("/admin/tokens/99999/revoke").status_code == 404
    log = [(e["actor"], e["action"], e["target"]) for e in Accounts(kb.store).audit_entries(2)]
    assert log == [("admin1", "token.revoke", str(tok["id"])), ("admin1", "token.create", "agent1")]


def test_audit_log_page_filters_pages_and_exports(app, kb, users, monkeypatch):
    from core import auditlog

    monkeypatch.setattr(auditlog, "EXPORT_CHUNK", 50)  # the export reads several chunks
    acc = Accounts(kb.store)
    for n in range(130):
        acc.audit("admin1", "user.add", f"u{n}", {"roles": ["agent"]})
    acc.audit("=evil", "pin.add", "+target", {"query": "@发票"})
    admin = signed_in(app, users["admin"])

    page = admin.get("/admin/audit-log?actor=admin1&action=user.add").get_data(as_text=True)
    assert "符合条件的共 130 条" in page and page.count("<tr><td") == 100
    assert "<dt>角色</dt><dd>客服专员</dd>" in page and "{&#34;roles" not in page
    assert "actor=admin1" in re_link(page, "next") and "action=user.add" in re_link(page, "next")
    second = admin.get(re_link(page, "next")).get_data(as_text=True)
    assert second.count("<tr><td") == 30 and "u0<" in second

    resp = admin.get("/admin/audit-log?from=2026-02-30")
    assert resp.status_code == 400
    assert "年-月-日" in _field_error(resp.get_data(as_text=True), "log-from")
    assert admin.get("/admin/audit-log?actor=nobody").get_data(as_text=True).count("<tr><td") == 0

    resp = admin.get("/admin/audit-log.csv?action=pin.add")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    raw = resp.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == 2
    assert rows[1][1:] == ["'=evil", "置顶答案", "pin.add", "'+target", "查询：@发票"]
    whole = admin.get("/admin/audit-log.csv?actor=admin1").get_data().decode("utf-8-sig")
    assert len(list(csv.reader(io.StringIO(whole)))) == 131
    assert admin.get("/admin/audit-log.csv?to=bad").status_code == 400


def re_link(html: str, rel: str) -> str:
    import html as html_mod
    import re

    return html_mod.unescape(re.search(rf'rel="{rel}" href="([^"]+)"', html).group(1))


def test_the_cli_filters_the_audit_log_and_marks_a_forced_change(instance):
    from .conftest import run_cli

    run_cli("user", "add", "boss", "--role", "admin", "--password", PASSWORD, instance=instance,
            check=True)  # fmt: skip
    run_cli("token", "create", "boss", "--name", "集成", instance=instance, check=True)
    out = run_cli("user", "passwd", "boss", "--password", "temporary-pass-1", "--must-change",
                  instance=instance, check=True).stdout  # fmt: skip
    assert "下次登录后须先修改" in out
    lines = run_cli("audit-log", "--actor", "cli", "--action", "token.", instance=instance,
                    check=True).stdout.splitlines()  # fmt: skip
    assert len(lines) == 1 and "\ttoken.create\tboss\t" in lines[0]
    passwd = run_cli("audit-log", "--action", "user.passwd", "--json", instance=instance).stdout
    assert '"must_change": true' in passwd
    bad = run_cli("audit-log", "--from", "2026-13-01", instance=instance)
    assert bad.returncode == 2 and "年-月-日" in bad.stderr
