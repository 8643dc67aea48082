"""Standard scripts on the web: API, search integration, usage report, personal scripts."""

from __future__ import annotations

import textwrap
import time

import pytest

from kb.accounts import Accounts
from kb.service import KnowledgeBase
from scripts_lib import load_library
from scripts_lib.coachlink import suggestion_for
from scripts_lib.usage import (
    SOURCE_NAME,
    doc_id,
    register_source,
    script_document,
)

from .conftest import FIXTURES, csrf_token, login, run_cli

# the usage report and personal scripts (tables in the instance database), on both backends
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

SCRIPT_KEYS = {
    "id",
    "scenario",
    "scenario_title",
    "title",
    "text",
    "placeholders",
    "shortcut",
    "channels",
    "tags",
    "replaces",
    "origin",
    "url",
}


@pytest.fixture
def csrf(client):
    return {"X-CSRFToken": csrf_token(client, "/")}


def client_for(app, username: str):
    c = app.test_client()
    assert login(c, username).status_code == 302
    return c, {"X-CSRFToken": csrf_token(c, "/")}


def error_of(resp, status: int) -> str:
    """Assert the one error shape and return the message."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    data = resp.get_json()
    assert set(data) == {"ok", "error", "status"}
    assert data["ok"] is False and data["status"] == status
    return data["error"]


# -- listing and lookup ------------------------------------------------------------


def test_list_is_grouped_by_scenario_and_complete(client):
    data = client.get("/api/v1/scripts").get_json()
    assert data["ok"] is True and data["total"] == len(data["scripts"]) >= 60
    names = [sc["name"] for sc in data["scenarios"]]
    assert names[0] == "greeting" and {"hold", "queue", "notice_sms"} <= set(names)
    assert sum(sc["count"] for sc in data["scenarios"]) == data["total"]
    first = data["scripts"][0]
    assert set(first) == SCRIPT_KEYS
    assert first["scenario_title"] == "开场问候" and first["url"] == f"/scripts/{first['id']}"
    assert all(set(p) == {"name", "prompt"} for s in data["scripts"] for p in s["placeholders"])


@pytest.mark.parametrize(
    ("query", "expect_first"),
    [
        ("q=稍等", "hold-apology-1"),
        ("q=/dd", "hold-apology-1"),
        ("q=／ＤＤ", "hold-apology-1"),  # full-width, upper case
        ("q=查询订单", "hold-check-order-1"),
        ("scenario=queue", "queue-busy-1"),
    ],
)
def test_list_filters_as_you_type(client, query, expect_first):
    data = client.get(f"/api/v1/scripts?{query}").get_json()
    assert data["scripts"][0]["id"] == expect_first


def test_list_filters_by_scenario_and_channel(client):
    data = client.get("/api/v1/scripts?scenario=hold&channel=phone").get_json()
    assert data["scripts"] and all(
        s["scenario"] == "hold" and "phone" in s["channels"] for s in data["scripts"]
    )
    counts = {sc["name"]: sc["count"] for sc in data["scenarios"]}
    assert counts["hold"] == len(data["scripts"]) and counts["greeting"] == 0


def test_get_one_script(client):
    data = client.get("/api/v1/scripts/hold-check-order-1").get_json()
    script = data["script"]
    assert data["ok"] is True and set(script) == SCRIPT_KEYS
    assert script["shortcut"] == "/ddcx" and script["scenario_title"] == "等待与返回"
    assert [p["name"] for p in script["placeholders"]] == ["客户称呼", "订单号"]
    assert script["placeholders"][1]["prompt"] == "请输入客户的订单号"


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("/api/v1/scripts?scenario=nope", 400, "scenario"),
        ("/api/v1/scripts?channel=fax", 400, "channel"),
        ("/api/v1/scripts?q=" + "长" * 600, 400, "q"),
        ("/api/v1/scripts/no-such-script", 404, "no-such-script"),
        ("/api/v1/scripts/usage", 403, "权限"),  # agents do not see the report
        ("/api/v1/my/scripts/999", 404, "999"),
        ("/scripts/no-such-script", 404, "no-such-script"),
    ],
)
def test_get_errors_have_one_shape(client, url, status, words):
    resp = client.get(url, headers={"Accept": "application/json"})
    assert words in error_of(resp, status)


# -- render -------------------------------------------------------------------------


def render(client, csrf, script_id, body):
    return client.post(f"/api/v1/scripts/{script_id}/render", json=body, headers=csrf)


@pytest.mark.parametrize(
    ("values", "text", "missing"),
    [
        (
            {"客户称呼": "王先生", "订单号": "A1001"},
            "抱歉，王先生，我正在为您查询订单A1001的处理进度，需要占用您一点时间，"
            "请您稍等，感谢您的耐心。",
            [],
        ),
        (
            {"客户称呼": "李女士"},
            "抱歉，李女士，我正在为您查询订单【请输入客户的订单号】的处理进度，"
            "需要占用您一点时间，请您稍等，感谢您的耐心。",
            ["订单号"],
        ),
        (
            {"客户称呼": "  ", "订单号": None, "多余的键": "忽略"},
            "抱歉，【请输入客户称呼，如“王先生”】，我正在为您查询订单【请输入客户的订单号】"
            "的处理进度，需要占用您一点时间，请您稍等，感谢您的耐心。",
            ["客户称呼", "订单号"],
        ),
        ({"客户称呼": "王先生", "订单号": 1001}, None, []),  # numbers are fine
    ],
)
def test_render_fills_chinese_placeholders(client, csrf, values, text, missing):
    data = render(client, csrf, "hold-check-order-1", {"values": values}).get_json()
    assert data["ok"] is True and data["id"] == "hold-check-order-1"
    assert data["missing"] == missing
    if text is not None:
        assert data["text"] == text
    for name in missing:
        assert f'data-placeholder="{name}"' in data["html"]


def test_render_without_body_marks_every_placeholder(client, csrf):
    resp = client.post("/api/v1/scripts/hold-check-order-1/render", headers=csrf)
    assert resp.get_json()["missing"] == ["客户称呼", "订单号"]


def test_render_escapes_html_but_copies_plain_text(client, csrf):
    evil = '<img src=x onerror="alert(1)">&'
    data = render(client, csrf, "hold-check-order-1", {"values": {"客户称呼": evil}}).get_json()
    assert (
        "<img" not in data["html"]
        and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;" in (data["html"])
    )
    assert evil in data["text"]  # the clipboard gets what the agent typed
    data = render(
        client, csrf, "hold-check-order-1", {"values": {"客户称呼": "王\u202e先生\x07"}}
    ).get_json()
    assert "王先生" in data["text"]  # bidi override and control characters never reach a chat


def test_render_never_expands_a_value_twice(client, csrf):
    data = render(
        client, csrf, "hold-check-order-1", {"values": {"客户称呼": "{订单号}", "订单号": "A1"}}
    ).get_json()
    assert data["text"].startswith("抱歉，{订单号}，") and data["missing"] == []


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"values": ["王先生"]}, 400, "values"),
        ({"values": "王先生"}, 400, "values"),
        ({"values": {"客户称呼": ["王"]}}, 400, "values.客户称呼"),
        ({"values": {"客户称呼": {"a": 1}}}, 400, "values.客户称呼"),
        ({"values": {"客户称呼": True}}, 400, "values.客户称呼"),
        ({"values": {"客户称呼": "长" * 501}}, 400, "values.客户称呼"),
        ({"values": {f"k{i}": "v" for i in range(51)}}, 400, "values"),
        ({"values": {"名" * 40: "v"}}, 400, "values"),
        ({"value": {"客户称呼": "王"}}, 400, "value"),  # a typo is not silently ignored
        (["values"], 400, "JSON 对象"),
    ],
)
def test_render_validates_the_body(client, csrf, body, status, words):
    assert words in error_of(render(client, csrf, "hold-check-order-1", body), status)


def test_render_refuses_broken_json_and_huge_bodies(client, csrf):
    headers = {**csrf, "Content-Type": "application/json"}
    url = "/api/v1/scripts/hold-check-order-1/render"
    assert "JSON" in error_of(client.post(url, data="{oops", headers=headers), 400)
    big = '{"values": {"客户称呼": "' + "x" * 70_000 + '"}}'
    assert "过大" in error_of(client.post(url, data=big, headers=headers), 413)
    assert "no-such" in error_of(client.post("/api/v1/scripts/no-such/render", headers=csrf), 404)


def test_post_needs_csrf_for_cookies_but_not_for_tokens(app, client, kb, users):
    resp = client.post("/api/v1/scripts/hold-apology-1/render", json={})
    assert "CSRF" in error_of(resp, 400)
    token = Accounts(kb.store).create_token(users["agent"], "chat console")
    resp = app.test_client().post(
        "/api/v1/scripts/hold-apology-1/render",
        json={"values": {"预计时间": "2分钟"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status_code == 200 and "预计2分钟内" in resp.get_json()["text"]


# -- search integration ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "script_id"),
    [("稍等", "hold-apology-1"), ("排队", "queue-position-1"), ("差不多", None)],
)
def test_search_finds_scripts_beside_articles(client, q, script_id):
    data = client.get(f"/api/v1/search?q={q}").get_json()
    scripts = [h for h in data["hits"] if h["doctype"] == "script"]
    assert scripts, data
    if script_id:
        assert scripts[0]["id"] == script_id
    hit = scripts[0]
    assert hit["shortcut"].startswith("/") and hit["text"] and hit["url"] == f"/scripts/{hit['id']}"
    assert "shortcut" not in data  # not a shortcut query


def test_search_hits_say_their_doctype(client):
    data = client.get("/api/v1/search?q=退款").get_json()
    kinds = {h["id"]: h["doctype"] for h in data["hits"]}
    assert kinds["product-refund"] == "article"
    assert "script" in kinds.values()
    assert all(not h["id"].startswith("script:") for h in data["hits"])


@pytest.mark.parametrize("q", ["/dd", "／ｄｄ", "/DD"])
def test_a_shortcut_query_jumps_to_its_script(client, q):
    data = client.get("/api/v1/search", query_string={"q": q}).get_json()
    assert data["shortcut"]["id"] == "hold-apology-1"
    assert data["shortcut"]["placeholders"][0]["name"] == "预计时间"
    assert data["hits"][0]["id"] == "hold-apology-1" and data["hits"][0]["doctype"] == "script"
    assert [h["id"] for h in data["hits"]].count("hold-apology-1") == 1
    one = client.get("/api/v1/search", query_string={"q": q, "limit": 1}).get_json()
    assert [h["id"] for h in one["hits"]] == ["hold-apology-1"]  # the limit still holds


@pytest.mark.parametrize("q", ["/zzzz", "dd", "/dd 稍等"])
def test_no_jump_without_an_exact_shortcut(client, q):
    data = client.get("/api/v1/search", query_string={"q": q}).get_json()
    assert "shortcut" not in data


def test_search_page_links_script_hits_to_the_script_page(client):
    page = client.get("/?q=稍等").get_data(as_text=True)
    assert 'href="/scripts/hold-apology-1"' in page and 'data-doctype="script"' in page
    assert "script:" not in page.split('id="results"')[1].split("</ol>")[0]


def test_agent_page_has_the_panel_grouped_by_scenario(client, app):
    page = client.get("/").get_data(as_text=True)
    assert 'id="scripts-panel"' in page and 'id="scripts-filter"' in page
    for sc in app.extensions["scripts"].scenarios():
        assert f'data-scenario="{sc.name}"' in page and sc.title in page
    assert page.count('class="script-item"') == len(app.extensions["scripts"])
    assert "话术使用统计" not in page  # agents have no report link
    assert "scripts.js" in page


def test_script_page_fills_from_the_query_without_javascript(client):
    page = client.get(
        "/scripts/hold-check-order-1", query_string={"客户称呼": "<b>王先生</b>", "订单号": "A1"}
    ).get_data(as_text=True)
    assert "&lt;b&gt;王先生&lt;/b&gt;" in page and "<b>王先生</b>" not in page
    assert 'data-filled="抱歉，&lt;b&gt;王先生&lt;/b&gt;，我正在为您查询订单A1' in page
    empty = client.get("/scripts/hold-check-order-1").get_data(as_text=True)
    assert 'class="ph-missing" data-placeholder="订单号"' in empty and 'data-filled=""' in empty


# -- index maintenance ------------------------------------------------------------------


def overlay(dir_, text: str):
    dir_.mkdir(exist_ok=True)
    (dir_ / "team.yaml").write_text(
        textwrap.dedent(
            f"""\
            scenario: team
            title: 团队话术
            order: 900
            scripts:
              - id: team-lantern-1
                title: 灯笼节活动说明
                text: "{text}"
                shortcut: /dljt
                channels: [online]
            """
        ),
        encoding="utf-8",
    )


def search_ids(kb, q):
    time.sleep(0.6)  # search views refresh at most every 0.5 s
    return [h.id for h in kb.search(q, log=False).hits]


def test_scripts_reindex_when_the_library_changes(kb, users, tmp_path):
    from web import create_app

    team = tmp_path / "team"
    overlay(team, "您好，灯笼节活动今晚开始，欢迎参加。")
    app = create_app({"INSTANCE": str(kb.root), "TESTING": True, "SCRIPTS_DIRS": [str(team)]})
    base = app.extensions["kb"]
    assert doc_id("team-lantern-1") in search_ids(base, "灯笼节")
    assert base.sync_source(SOURCE_NAME)["mode"] == "none"  # unchanged: nothing to do

    overlay(team, "您好，元宵活动今晚开始，欢迎参加。")
    app = create_app({"INSTANCE": str(kb.root), "TESTING": True, "SCRIPTS_DIRS": [str(team)]})
    base = app.extensions["kb"]
    assert doc_id("team-lantern-1") in search_ids(base, "元宵")
    assert search_ids(base, "灯笼节") == [doc_id("team-lantern-1")]  # the title still says so

    (team / "team.yaml").unlink()
    app = create_app({"INSTANCE": str(kb.root), "TESTING": True, "SCRIPTS_DIRS": [str(team)]})
    assert search_ids(app.extensions["kb"], "元宵") == []  # removed scripts leave the index


def test_a_rebuild_without_the_source_is_repaired_at_start(kb, users):
    from web import create_app

    create_app({"INSTANCE": str(kb.root), "TESTING": True})
    other = KnowledgeBase(kb.root)  # a process that does not know about scripts
    other.rebuild_index()
    other.close()
    assert search_ids(kb, "稍等") == []
    app = create_app({"INSTANCE": str(kb.root), "TESTING": True})
    assert doc_id("hold-apology-1") in search_ids(app.extensions["kb"], "稍等")


def test_a_rebuild_with_the_source_keeps_scripts(tmp_path):
    base = KnowledgeBase(tmp_path / "inst")
    register_source(base)
    base.import_dir(FIXTURES / "articles")  # first import builds the index: scripts included
    stats = base.rebuild_index()
    assert stats["documents"] == base.store.count() + len(load_library())
    assert base.sync_source(SOURCE_NAME)["mode"] == "none"
    assert search_ids(base, "稍等")[0] == doc_id("hold-apology-1")
    base.close()


def test_script_document_uses_the_kb_schema():
    script = load_library().get("hold-apology-1")
    doc = script_document(script, "等待与返回")
    assert doc["id"] == "script:hold-apology-1" and doc["doctype"] == "script"
    assert doc["category"] == "phrasing" and doc["status"] == "published"
    assert "稍等" in doc["similar"] and "wait_no_apology" not in doc["similar"]
    assert "dd" in doc["similar"].split("\n") and "等待与返回" in doc["similar"]


def test_cli_init_and_index_include_scripts(tmp_path):
    inst = tmp_path / "inst"
    run_cli("init", "--articles", str(FIXTURES / "articles"), instance=inst, check=True)
    base = KnowledgeBase(inst)
    assert doc_id("hold-apology-1") in search_ids(base, "稍等")
    base.close()
    out = run_cli("index", instance=inst, check=True).stdout
    assert f"{4 + len(load_library())} 篇" in out


# -- usage ------------------------------------------------------------------------------


def used(client, headers, script_id, body=None):
    return client.post(f"/api/v1/scripts/{script_id}/used", json=body or {}, headers=headers)


@BOTH
def test_copy_events_and_the_usage_report(app, client, csrf, users):
    resp = used(client, csrf, "hold-apology-1", {"channel": "wechat"})
    assert resp.status_code == 201
    recorded = resp.get_json()["recorded"]
    assert recorded["script_id"] == "hold-apology-1" and recorded["channel"] == "wechat"
    used(client, csrf, "hold-apology-1", {"channel": "online"})
    used(client, csrf, "greeting-standard-1")
    trainer, trainer_csrf = client_for(app, users["trainer"])
    used(trainer, trainer_csrf, "hold-apology-1", {"channel": "online"})

    boss, _ = client_for(app, users["supervisor"])
    report = boss.get("/api/v1/scripts/usage").get_json()
    assert report["ok"] is True and report["total"] == 4
    top = report["scripts"][0]
    assert top["id"] == "hold-apology-1" and top["uses"] == 3 and top["users"] == 2
    assert top["by_user"] == {"agent1": 2, "trainer1": 1}
    assert top["by_channel"] == {"online": 2, "wechat": 1}
    assert top["title"] == "查询前致歉请稍等" and top["last_used"]
    second = report["scripts"][1]
    assert second["id"] == "greeting-standard-1" and second["by_channel"] == {"unknown": 1}
    assert [u["username"] for u in report["users"]] == ["agent1", "trainer1"]
    assert report["users"][0] == {
        "username": "agent1",
        "uses": 3,
        "scripts": 2,
        "last_used": report["users"][0]["last_used"],
    }
    never = {s["id"] for s in report["never_used"]}
    assert "hold-apology-1" not in never and "hold-check-order-1" in never
    assert len(never) == len(app.extensions["scripts"]) - 2

    assert boss.get("/api/v1/scripts/usage?days=7").get_json()["total"] == 4
    page = boss.get("/scripts/usage").get_data(as_text=True)
    assert "话术使用统计" in page and "agent1（2）" in page and "从未使用的话术" in page


@BOTH
@pytest.mark.parametrize(
    ("script_id", "body", "status", "words"),
    [
        ("hold-apology-1", {"channel": "fax"}, 400, "channel"),
        ("hold-apology-1", {"channel": 3}, 400, "channel"),
        ("hold-apology-1", {"by": "someone"}, 400, "by"),
        ("no-such-script", {}, 404, "no-such-script"),
    ],
)
def test_used_validates(client, csrf, script_id, body, status, words):
    assert words in error_of(used(client, csrf, script_id, body), status)


@BOTH
@pytest.mark.parametrize("days", ["0", "abc", "99999", "-1"])
def test_usage_report_validates_days(app, users, days):
    boss, _ = client_for(app, users["supervisor"])
    assert "days" in error_of(boss.get(f"/api/v1/scripts/usage?days={days}"), 400)


# -- personal scripts --------------------------------------------------------------------

MINE = {
    "title": "我的开场",
    "text": "{客户称呼}您好，我是小王，很高兴为您服务。",
    "shortcut": "/wd1",
}


@BOTH
def test_personal_scripts_crud(client, csrf):
    resp = client.post("/api/v1/my/scripts", json={**MINE, "tags": ["问候"]}, headers=csrf)
    assert resp.status_code == 201
    mine = resp.get_json()["script"]
    assert mine["origin"] == "personal" and isinstance(mine["id"], int)
    assert mine["placeholders"] == [{"name": "客户称呼", "prompt": "请输入客户称呼"}]
    assert mine["tags"] == ["问候"] and mine["shortcut"] == "/wd1"
    listed = client.get("/api/v1/my/scripts").get_json()["scripts"]
    assert [s["id"] for s in listed] == [mine["id"]]

    resp = client.put(
        f"/api/v1/my/scripts/{mine['id']}",
        json={**MINE, "text": "您好，{客户称呼}！", "shortcut": "ＷＤ2"},
        headers=csrf,
    )
    changed = resp.get_json()["script"]
    assert changed["text"] == "您好，{客户称呼}！" and changed["shortcut"] == "/wd2"
    assert client.get(f"/api/v1/my/scripts/{mine['id']}").get_json()["script"] == changed

    found = client.get("/api/v1/search?q=/wd2").get_json()
    assert found["shortcut"]["id"] == mine["id"] and found["shortcut"]["origin"] == "personal"

    assert client.delete(f"/api/v1/my/scripts/{mine['id']}", headers=csrf).get_json() == {
        "ok": True
    }
    assert client.get("/api/v1/my/scripts").get_json()["scripts"] == []
    error_of(client.delete(f"/api/v1/my/scripts/{mine['id']}", headers=csrf), 404)


@BOTH
def test_personal_scripts_belong_to_their_owner(app, client, csrf, users):
    mine = client.post("/api/v1/my/scripts", json=MINE, headers=csrf).get_json()["script"]
    other, other_csrf = client_for(app, users["trainer"])
    url = f"/api/v1/my/scripts/{mine['id']}"
    assert other.get("/api/v1/my/scripts").get_json()["scripts"] == []
    error_of(other.get(url), 404)
    error_of(other.put(url, json={**MINE, "title": "抢走"}, headers=other_csrf), 404)
    error_of(other.delete(url, headers=other_csrf), 404)
    assert "shortcut" not in other.get("/api/v1/search?q=/wd1").get_json()
    # The same shortcut is free for another user: personal shortcuts are per person.
    assert other.post("/api/v1/my/scripts", json=MINE, headers=other_csrf).status_code == 201
    assert client.get(url).get_json()["script"]["title"] == "我的开场"


@BOTH
@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"text": "您好"}, "title"),
        ({"title": "  ", "text": "您好"}, "title"),
        ({"title": "问候", "text": 5}, "text"),
        ({"title": "问候", "text": "长" * 1001}, "text"),
        ({"title": "问候", "text": "您好{客户 称呼}"}, "占位符"),
        ({"title": "问候", "text": "您好", "shortcut": "/dd"}, "共享话术"),
        ({"title": "问候", "text": "您好", "shortcut": "/toolong1"}, "shortcut"),
        ({"title": "问候", "text": "您好", "shortcut": 7}, "shortcut"),
        ({"title": "问候", "text": "您好", "tags": "问候"}, "tags"),
        ({"title": "问候", "text": "您好", "channels": ["fax"]}, "channels"),
        ({"title": "问候", "text": "您好", "owner": "admin1"}, "owner"),
    ],
)
def test_personal_scripts_are_validated(client, csrf, body, words):
    assert words in error_of(client.post("/api/v1/my/scripts", json=body, headers=csrf), 400)


@BOTH
def test_a_personal_shortcut_is_unique_per_user(client, csrf):
    assert client.post("/api/v1/my/scripts", json=MINE, headers=csrf).status_code == 201
    again = client.post("/api/v1/my/scripts", json={**MINE, "title": "另一条"}, headers=csrf)
    assert "/wd1" in error_of(again, 400)


# -- coach link ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "match", "script_id"),
    [
        ("vague", "差不多", "confirm-definite-time-1"),
        ("wait_no_apology", "等一下", "hold-apology-1"),
        ("vague", "大概三天左右吧", "confirm-definite-time-1"),
        ("wait_no_apology", "", "hold-apology-1"),
        ("filler", "哦", "confirm-received-1"),
    ],
)
def test_suggestion_for_a_coach_finding(category, match, script_id):
    found = suggestion_for(category, match)
    assert set(found) == {"script_id", "text"} and found["script_id"] == script_id
    assert "{" not in found["text"] and found["text"]  # rendered: prompts, not raw braces


def test_no_suggestion_for_unknown_findings():
    assert suggestion_for("no_such_category", "") is None
    assert suggestion_for("", "") is None


def test_anonymous_users_get_no_scripts(anon):
    assert error_of(anon.get("/api/v1/scripts"), 401)
    resp = anon.get("/scripts/hold-apology-1", headers={"Accept": "text/html"})
    assert resp.status_code == 302 and "/login" in resp.location
