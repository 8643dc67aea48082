"""Calls as a channel (coach/calls.py), the phone rules, and the guards of issue 16."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coach.callchecks import contacts_in
from coach.calls import channel_kind, looks_like_call
from coach.checker import Checker, example_conversation
from coach.importers import conversation_from_dict
from coach.rules import RuleError, load_rules
from coach.transcripts import Conversation, Turn, load_bytes, load_path

from .conftest import run_cli

CALLS = Path(__file__).parent / "fixtures" / "calls"
ARTICLES = Path(__file__).resolve().parents[1] / "articles" / "norm"
PACK = load_rules()
CHECKER = Checker(PACK)


def rules_of(report) -> list[str]:
    return [f["rule"] for f in report.findings]


def check(lines: list[str], channel: str = "", checker: Checker = CHECKER):
    conv = example_conversation(lines)
    conv.channel = channel
    return checker.check_conversation(conv)


# -- import ---------------------------------------------------------------------------
def test_segment_list_json_is_one_phone_call_with_times_and_roles():
    convs, issues = load_path(CALLS / "inbound.json")
    assert issues == [] and len(convs) == 1
    call = convs[0]
    assert call.id == "inbound" and call.channel == "phone"
    assert [t.role for t in call.turns[:4]] == ["agent", "customer", "agent", "customer"]
    assert (call.turns[0].ts, call.turns[0].end, call.turns[0].speaker) == (0.0, 4.2, "坐席")
    # two segments of one speaker 0.4 s apart are one turn; a 67 s silence is not
    merged = [t for t in call.turns if t.text.startswith("如果说")]
    assert merged[0].text == "如果说您还是不了解的话， 可以再打过来问我们"
    assert merged[0].end == 109.0
    assert len(call.turns) == 12


def test_segments_with_metadata_in_milliseconds_outbound_call():
    convs, issues = load_path(CALLS / "outbound_meta.json")
    assert issues == []
    call = convs[0]
    assert call.id == "C20260105-0002" and call.agent == "1024" and call.channel == "phone"
    # the customer only said 喂; the speaker who greets is the agent
    assert [t.role for t in call.turns[:2]] == ["customer", "agent"]
    start = 1767578400.0  # 2026-01-05T10:00:00+08:00
    assert call.started_at == start
    assert call.turns[1].ts == pytest.approx(start + 1.2)
    assert call.turns[1].end == pytest.approx(start + 6.0)
    report = CHECKER.check_conversation(call)
    assert report.findings == [] and report.score == 100


def test_csv_calls_are_split_by_call_id_and_the_agent_found_by_its_opening():
    convs, issues = load_path(CALLS / "calls.csv")
    assert issues == [] and [c.id for c in convs] == ["T-001", "T-002"]
    for call in convs:
        assert call.channel == "phone" and call.agent == ""  # 说话人2 is no agent id
        assert [t.role for t in call.turns[:2]] == ["customer", "agent"]
        assert call.turns[1].ts == (3.5 if call.id == "T-001" else 2.5)


def test_speaker_agent_option_names_the_agent(tmp_path):
    path = tmp_path / "call.csv"
    path.write_text(
        "speaker,start,end,text\n"
        "李雷,0,2,你好，我问一下宽带的事\n"
        "王芳,2.5,3,嗯，你说\n"
        "李雷,3.5,5,宽带断了\n"
        "王芳,5.5,8,好的，帮您报修，感谢您的来电\n",
        encoding="utf-8",
    )
    guessed, _ = load_path(path)
    assert guessed[0].turns[0].role == "agent"  # no clue: the first speaker
    named, _ = load_path(path, speaker_agent=["王芳"])
    assert [t.role for t in named[0].turns] == ["customer", "agent"] * 2
    assert named[0].agent == "王芳"
    # the agent names of the loader options (kbcoach check --agent) name the speaker too
    by_name, _ = load_path(path, agent_names=["王芳"])
    assert [t.role for t in by_name[0].turns] == ["customer", "agent"] * 2


def test_role_words_and_a_speaker_map_in_metadata():
    data = {
        "speakers": {"spk_1": "客服"},
        "segments": [
            {"spk": "spk_0", "bg": 0, "ed": 900, "onebest": "你好"},
            {"spk": "spk_1", "bg": 1000, "ed": 4000, "onebest": "您好，请讲"},
        ],
    }
    convs, issues = load_bytes(json.dumps(data, ensure_ascii=False).encode(), "x.json")
    assert issues == []
    assert [t.role for t in convs[0].turns] == ["customer", "agent"]
    assert convs[0].turns[1].ts == 1.0 and convs[0].turns[1].end == 4.0
    rows = "角色,开始时间,结束时间,内容\n客户,00:00:01,00:00:02,喂\n坐席,00:00:03,00:01:05.5,您好\n"
    convs, _ = load_bytes(rows.encode("gb18030"), "y.csv")
    assert [t.role for t in convs[0].turns] == ["customer", "agent"]
    assert convs[0].turns[1].end == 65.5


def test_detection_leaves_chat_files_alone():
    chat = json.dumps({"id": "c", "turns": [{"role": "agent", "text": "您好"}]})
    assert not looks_like_call(chat)
    assert not looks_like_call("会话id,时间,发送方,内容\n1,2016-01-01 10:00:00,客服,您好\n")
    assert looks_like_call('[{"speaker": "A", "start": 0, "end": 1, "text": "您好"}]')
    assert looks_like_call("speaker,start,end,text\nA,0,1,您好\n")


def test_broken_call_records_are_issues_not_crashes():
    bad = json.dumps([{"speaker": "", "start": 0, "text": "您好"}])
    convs, issues = load_bytes(bad.encode(), "bad.json")
    assert convs == [] and "说话人" in issues[0].reason
    bad = json.dumps([{"speaker": "A", "start": "soon", "text": "您好"}])
    convs, issues = load_bytes(bad.encode(), "bad.json")
    assert convs == [] and "时间" in issues[0].reason
    lines = "\n".join(
        [json.dumps({"segments": [{"speaker": "A", "start": 0, "text": "您好"}]}), "{oops"]
    )
    convs, issues = load_bytes(lines.encode(), "calls.jsonl")
    assert len(convs) == 1 and issues[0].line == 2


def test_call_end_times_survive_the_stored_form():
    call = load_path(CALLS / "inbound.json")[0][0]
    again = conversation_from_dict(json.loads(json.dumps(call.to_dict())))
    assert [t.end for t in again.turns] == [t.end for t in call.turns]


@pytest.mark.parametrize(
    ("channel", "kind"),
    [("phone", "phone"), ("电话", "phone"), ("weibo", "message"), ("留言", "message"),
     ("京东", "chat"), ("", "chat")],
)  # fmt: skip
def test_channel_kinds(channel, kind):
    assert channel_kind(channel) == kind


# -- the phone rules on the fixtures ----------------------------------------------------
def test_inbound_call_report():
    call = load_path(CALLS / "inbound.json")[0][0]
    report = CHECKER.check_conversation(call)
    found = {(f["rule"], f["turn"]) for f in report.findings}
    assert found == {
        ("filler-opener", 4),  # 嗯帮您看一下 …
        ("phone-hold-return", 7),  # back after the hold without 感谢您的耐心等待
        ("phone-hold-silence", 7),
        ("no-closing", 11),  # …再联系您了好吧 is no closing
        ("phone-closing", 11),
    }
    by_rule = {f["rule"]: f for f in report.findings}
    assert "实际用时67秒" in by_rule["phone-hold-silence"]["message"]
    assert "静音约67秒" in by_rule["phone-hold-return"]["message"]
    assert "未询问是否还有其他需要、未致谢" in by_rule["phone-closing"]["message"]
    assert by_rule["phone-hold-silence"]["norm"] == "norm-phone-hold-apology"
    # not the chat timing rules: a call's answer time is its ring count
    unchecked = {n["rule"]: n["reason"] for n in report.not_checkable}
    assert set(unchecked) == {"phone-answer-rings", "phone-tone", "phone-callback-dropped"}
    assert "响铃" in unchecked["phone-answer-rings"]


def test_csv_call_reports_personal_number_and_the_shiju_hedge():
    first, second = load_path(CALLS / "calls.csv")[0]
    report = CHECKER.check_conversation(first)
    assert {(f["rule"], f["match"]) for f in report.findings} == {
        ("vague-hedge", "视乎"),
        ("improper-private-contact", "13912345678"),
    }
    assert CHECKER.check_conversation(second).findings == []


def test_cli_checks_call_json_and_csv_with_speaker_agent(tmp_path):
    out = tmp_path / "r.json"
    proc = run_cli(
        "check",
        str(CALLS / "inbound.json"),
        str(CALLS / "calls.csv"),
        "--speaker-agent",
        "说话人2",
        "--format",
        "json",
        "-o",
        str(out),
    )
    assert proc.returncode == 1, proc.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    assert [c["channel"] for c in report["conversations"]] == ["phone"] * 3
    assert report["summary"]["not_checkable"]["phone-answer-rings"] == 3
    rules = {f["rule"] for c in report["conversations"] for f in c["findings"]}
    assert {"phone-hold-silence", "improper-private-contact"} <= rules


def test_phone_rules_stay_out_of_chats_and_chat_timing_out_of_calls():
    chat = ["@0 客户: 在吗", "@9 客服: 嗯在的", "@10 客户: 好", "@12 客服: 好的"]
    chat_rules = rules_of(check(chat))
    assert "slow-greeting" in chat_rules
    assert not [r for r in chat_rules if r.startswith("phone-")]
    call_rules = rules_of(check(chat, "phone"))
    assert "slow-greeting" not in call_rules and "phone-closing" in call_rules


def test_every_rule_links_an_existing_norm_article():
    ids = {
        line.split(":", 1)[1].strip()
        for path in ARTICLES.glob("*.md")
        for line in path.read_text(encoding="utf-8").splitlines()[:3]
        if line.startswith("id:")
    }
    for rule in PACK.rules:
        assert rule.norm in ids, rule.id


# -- the guards ------------------------------------------------------------------------
def test_a_greeting_before_the_customers_first_message_counts():
    call = ["@0 客服: 您好，很高兴为您服务", "@2 客户: 我想查话费", "@8 客服: 好的，请问您的号码"]
    assert "slow-greeting" not in rules_of(check(call))
    welcome = ["@0 系统: 您好，欢迎光临", "@1 客户: 在吗", "@9 客服: 在的"]
    assert not {"slow-greeting", "no-greeting"} & set(rules_of(check(welcome)))
    late = ["@0 客户: 在吗", "@8 客服: 您好"]
    assert "slow-greeting" in rules_of(check(late))


@pytest.mark.parametrize(
    ("lines", "fires"),
    [
        (["客服: 嗯帮您看一下 目前这边显示您话费余额是三十块钱"], False),
        (["客服: 我帮您查一下，查到您的套餐是每月58元"], False),
        (["客服: 帮您查一下"], True),
        (["客服: 请稍等 显示已经签收了"], True),  # asked to wait: a hold, answered or not
        (["客服: 我这边正在帮您查询  您是想换绑手机号码?"], True),
    ],
)
def test_a_look_up_answered_in_the_same_turn_is_no_hold(lines, fires):
    assert ("wait-no-apology" in rules_of(check(lines))) == fires


@pytest.mark.parametrize(
    ("text", "fires"),
    [
        ("如果说您还是不了解的话，可以再打过来问我们", False),
        ("您要是不清楚套餐名称，我帮您查", False),
        ("如果您不知道密码，可以先重置", False),
        ("您的问题这边也不清楚", True),
        ("这个我也不知道", True),
        ("这个需要视乎手机厂家的设定哦", True),
        ("能不能退要视情况而定", True),
        ("到账时间因人而异", True),
    ],
)
def test_customer_subject_and_kan_qingkuang_variants(text, fires):
    assert ("vague-hedge" in rules_of(check([f"客服: {text}"]))) == fires


@pytest.mark.parametrize(
    ("text", "fires"),
    [
        ("有问题直接打我手机13812345678", True),
        ("我的邮箱是xiaowang123@qq.com，您发给我", True),
        ("您可以打幺三八一二三四五六七八找我", True),
        ("您的手机号是13812345678对吗", False),
        ("配送员的电话是13812345678", False),
        ("请拨打官方热线4008123123", False),
        ("138****5678", False),
    ],
)
def test_personal_numbers_and_mail_addresses(text, fires):
    assert ("improper-private-contact" in rules_of(check([f"客服: {text}"]))) == fires


def test_official_contacts_setting_allows_the_teams_numbers(tmp_path):
    over = tmp_path / "team.yaml"
    over.write_text(
        'settings: {official_contacts: ["137-0000-1111", "@yunshan.example"]}\n', encoding="utf-8"
    )
    team = Checker(load_rules([over]))
    for text in ("有问题打我们的专线137 0000 1111", "我的邮箱是kf@yunshan.example"):
        assert "improper-private-contact" not in rules_of(check([f"客服: {text}"], checker=team))
    assert "improper-private-contact" in rules_of(
        check(["客服: 打我手机13912345678"], checker=team)
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("settings: {official_contacts: 4008123123}\n", encoding="utf-8")
    with pytest.raises(RuleError, match="official_contacts"):
        load_rules([bad])


def test_contact_scan_is_bounded_on_hostile_text():
    text = ("a" * 70 + "@") * 500 + "b@c" * 2000 + "1" * 5000
    assert contacts_in(text) == []
    assert contacts_in("x" * 100 + "@mail.example.com") == [(36, 117)]


@pytest.mark.parametrize(
    ("last", "closes"),
    [
        ("那我明天再联系您了好吧", False),
        ("我们核实后再联系您", False),
        ("有需要再联系我们", True),
        ("欢迎您再次来电", True),
    ],
)
def test_zai_lianxi_alone_is_no_closing(last, closes):
    report = check(["客户: 好的", f"客服: {last}"])
    assert ("no-closing" not in rules_of(report)) == closes


@pytest.mark.parametrize(
    ("text", "opener"),
    [
        ("啊您现在是直连到电脑上的是吧", True),
        ("诶对发送幺零幺到这个号码", True),
        ("诶是的", True),
        ("哎您好请问有什么可以帮您", True),
        ("喂，嗯，您说的是哪个号码", True),
        ("喂您好", False),
        ("喂，您好，请问是王先生吗?", False),
        ("好的啊", False),
        ("啊?", False),
    ],
)
def test_spoken_openers_and_wei_as_a_hello(text, opener):
    assert ("filler-opener" in rules_of(check([f"客服: {text}"], "phone"))) == opener
    assert "filler-bare" not in rules_of(check(["客服: 喂？"], "phone"))


def test_manual_rules_need_a_reason_and_no_examples(tmp_path):
    over = tmp_path / "m.yaml"
    over.write_text(
        "rules:\n  - id: team-manual\n    category: improper\n    level: info\n    weight: 0\n"
        "    check: manual\n    channels: [phone]\n    message: 语气\n    suggestion: 抽听\n"
        "    params: {reason: 听录音}\n",
        encoding="utf-8",
    )
    pack = load_rules([over])
    conv = Conversation("x", [Turn("agent", "您好")], channel="phone")
    report = Checker(pack).check_conversation(conv)
    assert {"rule": "team-manual", "category": "improper", "reason": "听录音"} in (
        report.not_checkable
    )
    bad = tmp_path / "b.yaml"
    bad.write_text(over.read_text(encoding="utf-8").replace("[phone]", "[fax]"), "utf-8")
    with pytest.raises(RuleError, match="channels"):
        load_rules([bad])


# -- the audit pages ---------------------------------------------------------------------
def test_audit_page_upload_reads_calls_in_both_forms(app, users):
    from .test_audits import logged_in, upload, wait_done

    sup, token = logged_in(app, users["supervisor"])
    files = [(p.name, p.read_bytes()) for p in (CALLS / "inbound.json", CALLS / "calls.csv")]
    resp = upload(sup, token, files)
    assert resp.status_code == 302
    run_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    body = wait_done(sup, run_id)
    assert body["run"]["status"] == "done" and body["errors"] == []
    assert sorted(i["conv_id"] for i in body["items"]) == ["T-001", "T-002", "inbound"]
    inbound = next(i for i in body["items"] if i["conv_id"] == "inbound")
    page = sup.get(f"/audits/items/{inbound['id']}").get_data(as_text=True)
    assert "实际用时67秒" in page and "静音约67秒" in page
    assert "未能检查的规则" in page and "响铃" in page
