"""Issue 15, the open parts: the upload page's and the API's 格式 and 映射文件 fields
(beside 客服 and 客服名称规则), each refused field's Chinese message next to it with
nothing else lost; the team's agent names and aliases (/settings/agents) used by every
upload and `kbcoach audit run`, an alias linking a transcript to its account; and the
English-locale QQ 消息管理器 header lines."""

from __future__ import annotations

import base64
import io
import json
import re

import pytest

from coach.options import FORMAT_LABELS, ImportOptions, read_options
from coach.transcripts import FORMATS_IN, load_path
from core.team_agents import TeamAgentError, TeamAgents
from kb.accounts import Accounts

from .conftest import FIXTURES, PASSWORD, run_cli, signed_in
from .test_audits import wait_done
from .test_import_formats import shape, ts

EXPORTS = FIXTURES / "exports"
QQ = (EXPORTS / "qq_zh.txt").read_bytes()
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


def _upload(client, files, mapping: tuple[str, bytes] | None = None, **fields):
    data = {"csrf_token": client.environ_base["HTTP_X_CSRFTOKEN"], **fields}
    data["files"] = [(io.BytesIO(content), name) for name, content in files]
    if mapping is not None:
        data["mapping"] = (io.BytesIO(mapping[1]), mapping[0])
    return client.post("/audits", data=data, content_type="multipart/form-data")


def _run_of(resp) -> int:
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return int(resp.headers["Location"].rsplit("/", 1)[1])


def _field_error(html: str, id_: str) -> str:
    m = re.search(rf'<p class="field-error" role="alert" id="{id_}"[^>]*>([^<]*)</p>', html)
    assert m, f"no {id_} in page"
    return m.group(1)


# -- the options value -------------------------------------------------------------------


def test_every_format_name_has_a_label_on_the_page():
    assert set(FORMAT_LABELS) == set(FORMATS_IN)


def test_read_options_names_each_refused_field():
    options, errors = read_options("阿青，小王", "^售后", "qq")
    assert errors == {} and options.agent_names == ("阿青", "小王") and options.fmt == "qq"
    _, errors = read_options("", "(a|ab)*c", "pdf", b"text: [\n", "m.yaml")
    assert set(errors) == {"agent_pattern", "format", "mapping"}
    assert "客服名称规则过于复杂" in errors["agent_pattern"]
    assert "未知的格式「pdf」" in errors["format"]
    assert errors["mapping"] == "映射文件 m.yaml：YAML 格式错误（第2行）"
    # a mapping file only applies to JSON / CSV / XLSX
    _, errors = read_options(fmt="qq", mapping=b"text: body\nsender: who\n")
    assert set(errors) == {"format"} and "映射文件只用于" in errors["format"]
    # anchors (a YAML bomb's material) and oversize files are refused
    _, errors = read_options(mapping=b"a: &x [1]\nb: *x\n", mapping_name="m.yaml")
    assert "不支持 YAML 锚点" in errors["mapping"]
    _, errors = read_options(mapping=b"text: body\n" + b"#" * 70_000, mapping_name="m.yaml")
    assert "过大" in errors["mapping"]
    _, errors = read_options(mapping=b"", mapping_name="m.yaml")
    assert errors["mapping"] == "映射文件 m.yaml：文件为空"


def test_aliases_make_agents_and_link_their_account():
    options = ImportOptions().with_team(["店员小骰"], {"售后阿青": "aqing"})
    convs, issues = load_path(EXPORTS / "qq_zh.txt", **options.loader())
    assert issues == []
    assert [c.agent for c in convs] == ["aqing", "aqing"]
    assert shape(convs)[0][1][1] == ("agent", "售后阿青")  # the transcript keeps the name


# -- the English-locale QQ export --------------------------------------------------------


def test_qq_english_locale_headers_read_like_the_chinese_ones():
    convs, issues = load_path(EXPORTS / "qq_en_headers.txt", agent_names=["售后阿青"])
    assert issues == []
    assert shape(convs) == [
        ("Lin Xiaoman", [("customer", "Lin Xiaoman"), ("agent", "售后阿青"), ("customer", "Lin Xiaoman")]),
        ("Zhou Yiming", [("customer", "Zhou Yiming"), ("agent", "售后阿青")]),
    ]  # fmt: skip
    first = convs[0].turns
    assert first[0].ts == ts("2019-09-23 20:43:38") and first[2].ts == ts("2019-09-24 00:05:09")
    assert first[1].text == "您好，在的。\n\n退货请先在订单页申请，再把单号发我。"
    assert all("has received" not in t.text for c in convs for t in c.turns)  # system
    # told from the content whatever the file's name, and --format-in qq reads it too
    data = (EXPORTS / "qq_en_headers.txt").read_bytes()
    from coach.transcripts import load_bytes

    for name, fmt in (("chat.log", None), ("export", "qq")):
        again, issues = load_bytes(data, name, fmt, agent_names=["售后阿青"])
        assert issues == [] and shape(again) == shape(convs)


# -- the upload page ---------------------------------------------------------------------


def test_upload_page_has_format_and_mapping_fields(app, users):
    sup = signed_in(app, users["supervisor"])
    html = sup.get("/audits").get_data(as_text=True)
    assert '<select name="format"' in html and 'name="mapping"' in html and "novalidate" in html
    for key in FORMATS_IN:
        assert f'<option value="{key}">' in html
    assert "客服名单" in html


def test_upload_refuses_bad_fields_next_to_each_and_keeps_what_was_typed(app, users):
    sup = signed_in(app, users["supervisor"])
    resp = _upload(
        sup,
        [("qq.txt", QQ)],
        ("m.yaml", b"text: [\n"),
        name="十一月批次",
        agents="售后阿青",
        agent_pattern="(a|ab)*c",
        format="pdf",
        reaudit="1",
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "客服名称规则过于复杂" in _field_error(html, "agent-pattern-error")
    assert "未知的格式「pdf」" in _field_error(html, "format-error")
    assert _field_error(html, "mapping-error") == "映射文件 m.yaml：YAML 格式错误（第2行）"
    # nothing else lost: the name, the agents, the pattern and the re-audit box kept
    assert 'value="十一月批次"' in html and 'value="售后阿青"' in html
    assert 'value="(a|ab)*c"' in html and 'name="reaudit" value="1" checked' in html
    assert 'id="err-files"' not in html and 'id="agents-error"' not in html
    assert sup.get("/api/v1/audits/1").status_code == 404  # no run was made
    # a known format stays selected when another field is refused
    resp = _upload(sup, [("qq.txt", QQ)], ("m.yaml", b"text: body\n"), format="csv")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and '<option value="csv" selected>' in html
    assert "键 sender" in _field_error(html, "mapping-error")
    # a mapping with a format it cannot apply to: the message is at the format
    resp = _upload(sup, [("qq.txt", QQ)], ("m.yaml", b"text: a\nsender: b\n"), format="qq")
    assert "映射文件只用于" in _field_error(resp.get_data(as_text=True), "format-error")


def test_upload_with_format_agents_and_mapping(app, users):
    sup = signed_in(app, users["supervisor"])
    # the QQ export renamed .txt → read as QQ when the format says so
    run_id = _run_of(_upload(sup, [("export.txt", QQ)], format="qq", agents="售后阿青"))
    body = wait_done(sup, run_id)
    assert body["run"]["total"] == 2 and body["errors"] == []
    assert {i["agent"] for i in body["items"]} == {"售后阿青"}
    # a forced format that does not fit says so for the file
    run_id = _run_of(_upload(sup, [("export.txt", QQ)], format="wecom", reaudit="1"))
    body = wait_done(sup, run_id)
    assert body["run"]["total"] == 0 and "企业微信" in body["errors"][0]["reason"]
    # a team's own JSON export through a mapping file
    mapping = (EXPORTS / "helpdesk.yaml").read_bytes()
    data = (EXPORTS / "helpdesk.json").read_bytes()
    run_id = _run_of(_upload(sup, [("tickets.json", data)], ("helpdesk.yaml", mapping)))
    body = wait_done(sup, run_id)
    assert body["run"]["total"] == 1 and body["errors"] == [], body
    assert [i["agent"] for i in body["items"]] == ["阿青"]


# -- the JSON API ------------------------------------------------------------------------


def test_api_takes_a_file_with_agents_format_and_mapping(app, users):
    sup = signed_in(app, users["supervisor"])
    text = QQ.decode("utf-8")

    def post(**body):
        return sup.post("/api/v1/audits", json=body)

    resp = post(file={"name": "qq.txt", "content": text}, agents=["售后阿青"], format="qq")
    assert resp.status_code == 202, resp.get_json()
    body = wait_done(sup, resp.get_json()["run_id"])
    assert body["run"]["total"] == 2 and {i["agent"] for i in body["items"]} == {"售后阿青"}
    # bytes (an .xlsx, say) as base64; a pattern instead of names
    resp = post(
        file={"name": "qq.txt", "base64": base64.b64encode(QQ).decode()},
        agent_pattern="^售后",
        reaudit=True,
    )
    assert resp.status_code == 202
    assert wait_done(sup, resp.get_json()["run_id"])["run"]["total"] == 2
    mapping = (EXPORTS / "helpdesk.yaml").read_text(encoding="utf-8")
    data = (EXPORTS / "helpdesk.json").read_text(encoding="utf-8")
    resp = post(file={"name": "t.json", "content": data}, mapping=mapping)
    assert resp.status_code == 202
    assert [i["agent"] for i in wait_done(sup, resp.get_json()["run_id"])["items"]] == ["阿青"]
    # refused fields are named, in Chinese, in the one error shape
    for body, words in (
        ({"agent_pattern": "(a|ab)*c"}, "字段 agent_pattern：客服名称规则过于复杂"),
        ({"format": "pdf"}, "字段 format：未知的格式「pdf」"),
        ({"mapping": "text: [\n"}, "字段 mapping：映射文件 mapping：YAML 格式错误"),
        ({"mapping": 5}, "字段 mapping 应为映射文件"),
        ({"agents": [1, 2]}, "字段 agents：客服名称应为文字"),
        ({"agents": {"a": 1}}, "字段 agents：客服名称应为文字"),
    ):
        resp = post(file={"name": "qq.txt", "content": text}, **body)
        got = resp.get_json()
        assert resp.status_code == 400 and got["ok"] is False and words in got["error"], got
    resp = post(file={"name": "qq.txt", "base64": "**"})
    assert resp.status_code == 400 and "Base64" in resp.get_json()["error"]


def test_api_conversations_take_agent_names_too(app, users):
    sup = signed_in(app, users["supervisor"])
    conv = {
        "id": "api-1",
        "turns": [
            {"role": "customer", "speaker": "林小满", "text": "在吗"},
            {"role": "customer", "speaker": "阿青", "text": "在的，您说"},
        ],
    }
    resp = sup.post("/api/v1/audits", json={"conversations": [conv]})
    assert resp.status_code == 202 and "没有客服发言" in resp.get_json()["errors"][0]["reason"]
    resp = sup.post("/api/v1/audits", json={"conversations": [conv], "agents": "阿青"})
    assert resp.get_json()["errors"] == []
    body = wait_done(sup, resp.get_json()["run_id"])
    assert [i["agent"] for i in body["items"]] == ["阿青"]


# -- the team setting --------------------------------------------------------------------


def test_team_page_adds_and_removes_names_with_messages_next_to_the_field(app, users):
    sup = signed_in(app, users["supervisor"])
    html = sup.get("/settings/agents").get_data(as_text=True)
    assert "客服名单" in html and 'name="name"' in html and "novalidate" in html
    assert '<option value="agent1">' in html  # the agent accounts offered
    cases = [
        ({"name": "", "username": ""}, "name-error", "请填写客服在会话记录中的发送人名称"),
        ({"name": "阿青,小王", "username": ""}, "name-error", "不能含逗号"),
        ({"name": "x" * 65, "username": ""}, "name-error", "最多 64 个字符"),
        ({"name": "售后阿青", "username": "nobody"}, "username-error", "账号「nobody」不存在"),
    ]
    for form, id_, words in cases:
        resp = sup.post("/settings/agents", data=form)
        html = resp.get_data(as_text=True)
        assert resp.status_code == 400 and words in _field_error(html, id_), form
        assert f'value="{form["name"][:200]}"' in html  # what was typed is kept
    assert (
        sup.post("/settings/agents", data={"name": "售后阿青", "username": "agent1"}).status_code
        == 302
    )
    html = sup.get("/settings/agents").get_data(as_text=True)
    assert "已添加客服名称「售后阿青」（账号 agent1）" in html
    assert (
        '<tr data-name="售后阿青"><td class="name">售后阿青</td><td class="account">agent1</td>'
        in html
    )
    resp = sup.post("/settings/agents", data={"name": "售后阿青", "username": ""})
    assert "已在列表中" in _field_error(resp.get_data(as_text=True), "name-error")
    entry = TeamAgents(app.extensions["kb"].store).list()[0]
    assert sup.post("/settings/agents/remove", data={"id": str(entry["id"])}).status_code == 302
    assert TeamAgents(app.extensions["kb"].store).list() == []
    resp = sup.post("/settings/agents/remove", data={"id": str(entry["id"])})
    assert resp.status_code == 404 and "该客服名称不存在" in resp.get_data(as_text=True)
    log = Accounts(app.extensions["kb"].store).audit_entries(10)
    assert [e["action"] for e in log[:2]] == ["team_agent.remove", "team_agent.add"]
    # agents and trainers may not read or change the list
    agent = signed_in(app, users["agent"])
    assert agent.get("/settings/agents").status_code == 403
    assert agent.post("/settings/agents", data={"name": "x"}).status_code == 403


def test_team_alias_links_every_upload_to_the_account(app, users):
    sup = signed_in(app, users["supervisor"])
    # nobody named: the QQ chats cannot be checked
    body = wait_done(sup, _run_of(_upload(sup, [("qq.txt", QQ)])))
    assert body["run"]["total"] == 0
    sup.post("/settings/agents", data={"name": "售后阿青", "username": "agent1"})
    body = wait_done(sup, _run_of(_upload(sup, [("qq.txt", QQ)])))
    assert body["run"]["total"] == 2 and {i["agent"] for i in body["items"]} == {"agent1"}
    # the API's upload too, and the agent sees the conversations as their own
    resp = sup.post(
        "/api/v1/audits", json={"file": {"name": "qq.txt", "content": QQ.decode()}, "reaudit": True}
    )
    assert wait_done(sup, resp.get_json()["run_id"])["run"]["total"] == 2
    agent = signed_in(app, users["agent"])
    mine = agent.get("/api/v1/my/audits").get_json()
    assert mine["agent"] == "agent1" and mine["conversation_count"] == 2
    item_id = mine["conversations"][0]["id"]
    assert agent.get(f"/audits/items/{item_id}").status_code == 200


@BOTH
def test_team_agents_repository_on_both_backends(kb):
    acc = Accounts(kb.store)
    acc.add("aqing", PASSWORD, ["agent"])
    team = TeamAgents(kb.store, acc)
    team.add("售后阿青", "aqing", actor="lead")
    team.add("店员小骰", "", actor="lead")
    with pytest.raises(TeamAgentError) as exc:
        team.add(" 售后阿青 ", "", actor="lead")
    assert exc.value.field == "name"
    assert team.names_and_aliases() == (["店员小骰"], {"售后阿青": "aqing"})
    # another agent's login name cannot become an alias (their chats would count twice),
    # and an alias points at an agent account
    acc.add("xiaoli", PASSWORD, ["agent"])
    acc.add("liu", PASSWORD, ["trainer"])
    with pytest.raises(TeamAgentError) as exc:
        team.add("xiaoli", "aqing", actor="lead")
    assert exc.value.field == "name" and "是账号 xiaoli 的登录名" in str(exc.value)
    with pytest.raises(TeamAgentError) as exc:
        team.add("刘老师", "liu", actor="lead")
    assert exc.value.field == "username" and "没有客服角色" in str(exc.value)
    team.add("aqing", "aqing", actor="lead")  # an account's own login name: harmless
    team.remove(next(r["id"] for r in team.list() if r["name"] == "aqing"), actor="lead")
    options = team.apply(ImportOptions(("小王",)))
    assert options.agent_names == ("小王", "店员小骰")
    assert dict(options.aliases) == {"售后阿青": "aqing"}
    assert team.count() == 2


def test_cli_audit_run_uses_the_team_aliases(tmp_path):
    inst = tmp_path / "inst"
    run_cli("user", "add", "aqing", "--role", "agent", "--password", PASSWORD,
            instance=inst, check=True)  # fmt: skip
    from kb.store import Store
    from storage import Database
    from storage.database import close_all, sqlite_url

    store = Store(Database.open(sqlite_url(inst)))
    TeamAgents(store, Accounts(store)).add("售后阿青", "aqing", actor="lead")
    store.close()
    close_all(sqlite_url(inst))
    proc = run_cli("audit", "run", str(EXPORTS / "qq_zh.txt"), "--json", instance=inst)
    out = json.loads(proc.stdout)
    assert out["run"]["total"] == 2 and [a["agent"] for a in out["agents"]] == ["aqing"], (
        proc.stderr
    )


def test_cli_team_agents_list_add_remove(tmp_path):
    inst = tmp_path / "inst"
    run_cli("user", "add", "aqing", "--role", "agent", "--password", PASSWORD,
            instance=inst, check=True)  # fmt: skip
    proc = run_cli("team-agents", "add", "售后阿青", "--account", "aqing", instance=inst)
    assert proc.returncode == 0 and "已添加 售后阿青（账号 aqing）" in proc.stdout, proc.stderr
    proc = run_cli("team-agents", "add", "售后阿青", instance=inst)
    assert proc.returncode == 1 and "已在列表中" in proc.stderr
    proc = run_cli("team-agents", "add", "小王", "--account", "nobody", instance=inst)
    assert proc.returncode == 1 and "账号「nobody」不存在" in proc.stderr
    run_cli("team-agents", "add", "店员小骰", instance=inst, check=True)
    proc = run_cli("team-agents", "list", instance=inst, check=True)
    assert proc.stdout.splitlines() == ["售后阿青\taqing", "店员小骰\t-"]
    run_cli("team-agents", "remove", "店员小骰", instance=inst, check=True)
    proc = run_cli("team-agents", "remove", "店员小骰", instance=inst)
    assert proc.returncode == 1 and "客服名单中没有「店员小骰」" in proc.stderr
    assert run_cli("team-agents", "list", instance=inst).stdout.splitlines() == ["售后阿青\taqing"]
