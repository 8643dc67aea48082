"""Issue 15: real chat exports read into the right conversations, turns, roles and
times; agents named by the supervisor; a chat with no agent turn never called clean.

The files under tests/fixtures/exports are written here to the exporters' documented
layouts (MemoTrace, QQ 消息管理器, 企业微信 会话存档, 七鱼, Feishu im/v1, Chatwoot),
with invented names and texts."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest

from coach.agents import AgentOptionError, AgentTest, compile_pattern
from coach.audits import AuditStore
from coach.checker import Checker
from coach.mapping import MappingError, check_mapping, load_mapping
from coach.transcripts import load_bytes, load_path, load_text

from .conftest import FIXTURES, run_cli, signed_in
from .test_audits import wait_done

EXPORTS = FIXTURES / "exports"


def ts(text: str) -> float:
    """Epoch seconds of a naive time (the importers read naive times as UTC)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def shape(convs) -> list[tuple[str, list[tuple[str, str]]]]:
    return [(c.id, [(t.role, t.speaker) for t in c.turns]) for c in convs]


def load(name: str, **options):
    return load_path(EXPORTS / name, **options)


# -- who the agents are ------------------------------------------------------------


def test_memotrace_txt_without_agents_is_not_checkable_and_names_the_senders():
    convs, issues = load("memotrace.txt")
    assert convs == []
    (issue,) = issues
    assert issue.line == 1 and "没有客服发言" in issue.reason
    assert "林小满、阿青" in issue.reason and "--agent" in issue.reason


def test_memotrace_txt_with_agent_name():
    (conv,), issues = load("memotrace.txt", agent_names=["阿青"])
    assert issues == []
    assert [(t.role, t.speaker, t.ts) for t in conv.turns] == [
        ("customer", "林小满", ts("2024-03-01 10:00:20")),
        ("agent", "阿青", ts("2024-03-01 10:00:45")),
        ("customer", "林小满", ts("2024-03-01 10:01:30")),
    ]
    assert conv.turns[1].text == "亲，您好，可能明天到吧，您再等等。" and conv.agent == "阿青"


def test_agent_pattern_and_its_limits():
    test = AgentTest(pattern="^(售后|店员)")
    assert test.role("售后阿青") == "agent" and test.role("林小满") == "customer"
    assert test.role("系统消息") == "system" and test.role("客服小王") == "agent"
    assert AgentTest(["20005678"]).role("阿青", "20005678") == "agent"  # a QQ number
    for bad, words in [
        ("(a+)+$", "过于复杂"),
        ("(x|xy)*z", "过于复杂"),
        ("a*b*c*d*", "最多 3 处"),
        (r"(a)\1", "反向引用"),
        ("[售后", "不是有效的正则表达式：方括号 \\[ 没有闭合（第 1 个字符处）"),
        ("x" * 101, "过长"),
    ]:
        with pytest.raises(AgentOptionError, match=words):
            compile_pattern(bad)


# -- formats -----------------------------------------------------------------------


def test_memotrace_csv_new_header_uses_the_sender_column():
    (conv,), issues = load("memotrace_new.csv", agent_names=["阿青"])
    assert issues == []
    assert [(t.role, t.speaker) for t in conv.turns] == [
        ("customer", "林小满"),
        ("agent", "阿青"),
        ("customer", "林小满"),
    ]  # the 系统消息 row is left out
    assert conv.turns[2].text == "好吧\n那我再等等"
    assert conv.turns[1].ts == ts("2024-03-01 10:00:45")


def test_memotrace_csv_old_header_takes_is_sender_as_the_agent():
    (conv,), issues = load("memotrace_old.csv")  # rows of a private chat have 9 cells
    assert issues == []
    assert [t.role for t in conv.turns] == ["customer", "agent", "customer"]
    assert conv.turns[1].text.startswith("亲，您好") and conv.turns[0].ts == ts(
        "2024-03-01 10:00:20"
    )


def test_qq_export_header_12_hour_times_blank_lines_and_system_messages():
    convs, issues = load("qq_zh.txt", agent_pattern="^售后")
    assert issues == []
    assert shape(convs) == [
        ("林小满", [("customer", "林小满"), ("agent", "售后阿青"), ("customer", "林小满")]),
        ("周一鸣", [("customer", "周一鸣"), ("agent", "售后阿青")]),
    ]
    first = convs[0].turns
    assert first[0].ts == ts("2019-09-23 20:43:38")  # 下午 8:43:38
    assert first[2].ts == ts("2019-09-24 00:05:09")  # 上午 12:05:09
    # a blank and a space-only line inside the message: kept, and the chat not split
    assert first[1].text == "您好，在的。\n\n\n退货请先在订单页申请，再把单号发我。"
    assert all("已成功接收" not in t.text for c in convs for t in c.turns)


def test_qq_header_words_inside_a_message_stay_message_text():
    text = (EXPORTS / "qq_zh.txt").read_text(encoding="utf-8")
    text = text.replace("您好，在的。", "您好，在的。\n消息对象:不是新会话\n消息记录在这里\n====")
    convs, issues = load_text(text, "qq.txt", agent_pattern="^售后")
    assert issues == [] and [c.id for c in convs] == ["林小满", "周一鸣"]
    assert (
        convs[0].turns[1].text.startswith("您好，在的。\n消息对象:不是新会话\n消息记录在这里\n====")
    )


def test_qq_export_english_times_pm_is_afternoon():
    (conv,), issues = load("qq_en.txt", agent_names=["87200001"])
    assert issues == []
    assert conv.id == "骰子小店"
    assert [(t.role, t.speaker, t.ts) for t in conv.turns] == [
        ("customer", "小店顾客-Roll100", ts("2019-09-23 20:43:38")),
        ("agent", "店员小骰", ts("2019-09-23 20:44:10")),
        ("customer", "小店顾客-Roll100", ts("2019-09-24 00:01:00")),
    ]
    assert conv.turns[1].text == "Yes, it ships tomorrow.\nAnything else?"


def test_chat_window_copy_puts_the_name_first():
    (conv,), issues = load("chat_window.txt", agent_pattern="^售后")
    assert issues == []
    assert [(t.role, t.speaker, t.ts) for t in conv.turns] == [
        ("customer", "林小满", ts("2019-09-23 20:43:38")),
        ("agent", "售后阿青", ts("2019-09-23 20:44:02")),
    ]


def test_wecom_archive_one_conversation_per_pair_or_room():
    convs, issues = load("wecom_archive.json")
    assert issues == []
    external = "wmZq2x7KdFvQ9rT3sLpA8cYbN4hE1uWj"
    assert shape(convs) == [
        (
            f"linqing↔{external}",
            [("customer", external), ("agent", "linqing"), ("customer", external)],
        ),
        (
            "wrAbCdEfGh123456",
            [("customer", "wo8Hh2Kk3Mm4Nn5Pp6Qq7Rr8Ss9Tt0Uu"), ("agent", "zhoujie")],
        ),
    ]  # the recall is left out; the image (sent last, listed last) sorted by time
    pair = convs[0]
    assert [t.text for t in pair.turns][2] == "[图片]" and pair.agent == "linqing"
    assert pair.turns[0].ts == 1709287220.0 and pair.channel == "企业微信"


def test_qiyu_message_list():
    convs, issues = load("qiyu_messages.json")
    assert issues == []
    assert shape(convs) == [
        ("50001", [("customer", "访客"), ("agent", "阿青"), ("customer", "访客")]),
        ("50002", [("customer", "访客"), ("agent", "一鸣")]),
    ]
    assert convs[0].turns[1].ts == 1709287245.0 and convs[1].agent == "一鸣"


def test_feishu_messages_need_the_agents_open_id():
    convs, issues = load("feishu_messages.json")
    assert convs == [] and "ou_customer1、ou_agent1" in issues[0].reason
    (conv,), issues = load("feishu_messages.json", agent_names=["ou_agent1"])
    assert issues == []
    assert [(t.role, t.text) for t in conv.turns] == [
        ("customer", "你好，报销单提交不了"),
        ("agent", "您好，请截图发我看看。"),
        ("customer", "截图说明\n点提交后没有反应"),
    ]  # the system message is left out; the post's text is read
    assert conv.id == "oc_chat1" and conv.turns[0].ts == 1709287220.0


def test_chatwoot_messages_leave_out_activity_and_private_notes():
    (conv,), issues = load("chatwoot_messages.json")
    assert issues == []
    assert [(t.role, t.speaker, t.ts) for t in conv.turns] == [
        ("customer", "林小满", 1709287220.0),
        ("agent", "阿青", 1709287245.0),
    ]
    assert conv.id == "42" and conv.agent == "阿青"


def test_wecom_archive_as_json_lines():
    lines = "\n".join(
        json.dumps(r, ensure_ascii=False)
        for r in json.loads((EXPORTS / "wecom_archive.json").read_text(encoding="utf-8"))
    )
    convs, issues = load_text(lines + "\n{broken", "archive.jsonl")
    assert len(convs) == 2 and [i.line for i in issues] == [7]


def test_xlsx_is_read_like_csv(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["会话ID", "发送人", "时间", "内容"])
    sheet.append(["x1", "林小满", datetime(2024, 3, 1, 22, 0, 20), "在吗"])
    sheet.append(["x1", "阿青", "2024-03-01 22:00:45", "您好，在的。\n\n请讲。"])
    path = tmp_path / "export.xlsx"
    book.save(path)
    (conv,), issues = load_path(path, agent_names=["阿青"])
    assert issues == []
    assert [(t.role, t.speaker, t.ts, t.text) for t in conv.turns] == [
        ("customer", "林小满", ts("2024-03-01 22:00:20"), "在吗"),
        ("agent", "阿青", ts("2024-03-01 22:00:45"), "您好，在的。\n\n请讲。"),
    ]


def test_unsupported_files_say_so_once():
    convs, issues = load("export.html")
    assert convs == []
    assert [i.reason for i in issues] == ["不支持的格式：HTML 导出，请导出为 TXT/CSV/JSON"]
    for data, kind in [(b"%PDF-1.7\n...", "PDF"), (b"\x89PNG\r\n\x1a\n....", "图片")]:
        convs, issues = load_bytes(data, "chat.txt")
        assert convs == [] and len(issues) == 1 and kind in issues[0].reason


def test_unknown_json_points_to_the_mapping_file():
    convs, issues = load("helpdesk.json")
    assert convs == [] and len(issues) == 1 and "--mapping" in issues[0].reason


def test_format_in_forces_a_reader():
    convs, issues = load_path(EXPORTS / "qiyu_messages.json", fmt="wecom")
    assert convs == [] and "不是企业微信消息列表" in issues[0].reason
    (conv,), _ = load_path(EXPORTS / "memotrace.txt", fmt="memotrace-txt", agent_names=["阿青"])
    assert len(conv.turns) == 3


# -- mapping files -----------------------------------------------------------------


def test_mapping_json_example():
    mapping = load_mapping(EXPORTS / "helpdesk.yaml")
    (conv,), issues = load("helpdesk.json", mapping=mapping)
    assert issues == []
    assert conv.id == "T-9" and conv.agent == "阿青"
    assert [(t.role, t.speaker, t.ts) for t in conv.turns] == [
        ("customer", "林小满", ts("2024-03-01 02:00:20")),
        ("agent", "阿青", ts("2024-03-01 02:00:45")),
    ]  # the bot's line is skipped (skip_values)


def test_mapping_csv_example():
    mapping = load_mapping(EXPORTS / "callcenter.yaml")
    (conv,), issues = load("callcenter.csv", mapping=mapping)
    assert issues == []
    assert [(t.role, t.speaker) for t in conv.turns] == [("customer", "林小满"), ("agent", "阿青")]


def test_mapping_mistakes_name_the_file_and_key(tmp_path):
    cases = [
        ("text: [a, b]\nsender: x\n", "键 text"),
        ("sender: x\n", "键 text（内容字段）是必填的"),
        ("text: body\n", "键 sender"),
        ("text: body\nrole: kind\n", "键 agent_values"),
        ("text: body\nsender: x\nspeaker: y\n", "未知的键 speaker"),
        ("text: body\nsender: x\nagent_values: staff\n", "键 agent_values（客服取值）应为列表"),
        ("text: [\n", "YAML 格式错误"),
    ]
    for n, (text, words) in enumerate(cases):
        path = tmp_path / f"m{n}.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(MappingError) as exc:
            load_mapping(path)
        assert f"映射文件 m{n}.yaml" in str(exc.value) and words in str(exc.value), str(exc.value)
    mapping = check_mapping({"text": "正文", "sender": "发送人"}, "m.yaml")
    convs, issues = load("callcenter.csv", mapping=mapping)
    assert (
        convs == []
        and "映射文件 m.yaml：键 text" in issues[0].reason
        and "「正文」" in issues[0].reason
    )


# -- limits apply to every format --------------------------------------------------


def test_limits_apply_to_message_lists():
    from coach.limits import MAX_TURN_CHARS

    big = {
        "sessionId": 1,
        "fromUser": 0,
        "staffName": "阿青",
        "content": "啊" * (MAX_TURN_CHARS + 1),
        "time": 1,
    }
    convs, issues = load_text(json.dumps([big]), "qiyu.json")
    assert convs == [] and "超过上限" in issues[0].reason


def test_long_lines_are_read_in_linear_time():
    line = "2024-03-01 10:00:20 " + "啊" * 200_000 + "\n"
    convs, issues = load_text(line * 20 + "林小满 9/23/2019 8:43:38 PM" * 2000, "big.txt")
    assert len(issues) >= 1  # unreadable, and it came back at all


# -- the surfaces --------------------------------------------------------------------


def test_check_cli_no_agent_exits_1_listing_senders_then_agent_option_finds_the_fault():
    proc = run_cli("check", str(EXPORTS / "memotrace.txt"), "--format", "json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["conversations"] == [] and report["summary"]["mean_score"] is None
    assert "林小满、阿青" in report["errors"][0]["reason"]

    proc = run_cli("check", str(EXPORTS / "memotrace.txt"), "--agent", "阿青", "--format", "json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    (conv,) = report["conversations"]
    assert conv["agent"] == "阿青" and conv["score"] < 100 and report["errors"] == []
    assert any(f["match"] in ("可能", "吧", "您再等等") for f in conv["findings"])


def test_check_cli_usage_errors_are_chinese_and_exit_2(tmp_path):
    proc = run_cli("check", str(EXPORTS / "memotrace.txt"), "--agent-pattern", "(a+)+$")
    assert proc.returncode == 2 and "客服名称规则过于复杂" in proc.stderr
    bad = tmp_path / "m.yaml"
    bad.write_text("text: body\n", encoding="utf-8")
    proc = run_cli("check", str(EXPORTS / "helpdesk.json"), "--mapping", str(bad))
    assert proc.returncode == 2 and "映射文件 m.yaml" in proc.stderr
    proc = run_cli("check", str(EXPORTS / "qq_en.txt"), "--format-in", "pdf")
    assert proc.returncode == 2 and "未知的输入格式" in proc.stderr
    proc = run_cli(
        "check", str(EXPORTS / "helpdesk.json"), "--mapping", str(EXPORTS / "helpdesk.yaml")
    )
    assert proc.returncode in (0, 1) and "T-9" in proc.stdout, proc.stderr


def test_audit_run_stores_a_chat_without_agent_as_unreadable(tmp_path):
    inst = tmp_path / "inst"
    run_cli("init", instance=inst, check=True)
    proc = run_cli("audit", "run", str(EXPORTS / "qq_zh.txt"), "--json", instance=inst)
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    assert out["run"]["total"] == 0 and out["run"]["errors"] == 2 and out["agents"] == []
    proc = run_cli(
        "audit",
        "run",
        str(EXPORTS / "qq_zh.txt"),
        "--agent-pattern",
        "^售后",
        "--json",
        instance=inst,
    )
    out = json.loads(proc.stdout)
    assert out["run"]["total"] == 2 and out["run"]["errors"] == 0, proc.stderr
    assert [a["agent"] for a in out["agents"]] == ["售后阿青"]


def test_audit_store_never_scores_a_conversation_without_agent(kb):
    store = AuditStore(kb.store)
    convs, errors = load("memotrace.txt")
    run_id = store.create_run("无客服", convs, errors, by="super1")
    store.claim(run_id)
    run = store.check(run_id, Checker())
    assert run["total"] == 0 and run["errors"] == 1
    assert "林小满、阿青" in store.errors(run_id)[0]["reason"]
    assert store.agents(run_id) == []


def _upload(client, token, files, **fields):
    data = {"csrf_token": token, **fields}
    data["files"] = [(io.BytesIO(content), name) for name, content in files]
    return client.post("/audits", data=data, content_type="multipart/form-data")


def test_upload_page_takes_agents_and_refuses_a_bad_pattern_next_to_the_field(app, users):
    sup = signed_in(app, users["supervisor"])
    token = sup.environ_base["HTTP_X_CSRFTOKEN"]
    page = sup.get("/audits").get_data(as_text=True)
    assert 'name="agents"' in page and 'name="agent_pattern"' in page and "novalidate" in page
    data = (EXPORTS / "qq_zh.txt").read_bytes()
    resp = _upload(sup, token, [("qq.txt", data)], agent_pattern="(a|ab)*c", name="批次")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'id="agent-pattern-error"' in html
    assert "客服名称规则过于复杂" in html and 'value="批次"' in html
    resp = _upload(sup, token, [("qq.txt", data)], agents="售后阿青")
    assert resp.status_code == 302, resp.get_data(as_text=True)
    run_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    body = wait_done(sup, run_id)
    assert body["run"]["total"] == 2 and body["errors"] == [], body
    assert {i["agent"] for i in body["items"]} == {"售后阿青"}
    resp = _upload(sup, token, [("qq.txt", data)])  # no agent named: nothing scored
    body = wait_done(sup, int(resp.headers["Location"].rsplit("/", 1)[1]))
    assert body["run"]["total"] == 0 and len(body["errors"]) == 2
    assert "售后阿青" in body["errors"][0]["reason"]
