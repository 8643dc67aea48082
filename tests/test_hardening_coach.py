"""Issue 10 (items 1, 2, 4): matching cannot blow up, long conversations, limits.

Each hostile input below used to take from seconds to many minutes; the bounds are
generous (a hang, not a benchmark). The matcher must still find exactly what the
regex matcher found on ordinary text (fixtures/hardening/findings_before_linear.jsonl).
"""

from __future__ import annotations

import json
import re
import time

import pytest

from coach.checker import Checker
from coach.limits import MAX_REPLY_CHARS, MAX_TURNS
from coach.rules import RuleError, load_rules
from coach.transcripts import Conversation, Turn, load_path, load_text

from .conftest import FIXTURES, signed_in

HANG = 5.0  # seconds: what used to take minutes must finish well inside this


@pytest.fixture(scope="module")
def checker():
    return Checker()


@pytest.fixture
def agent(app, users):
    return signed_in(app, users["agent"])


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - started


# -- the linear matcher finds what the regex matcher found ---------------------------


def _golden():
    path = FIXTURES / "hardening" / "findings_before_linear.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_same_findings_as_the_regex_matcher_on_ordinary_text(checker):
    golden = _golden()
    texts = [g for g in golden if "text" in g]
    assert len(texts) > 1000
    wrong = []
    for g in texts:
        got = [[f["rule"], *f["span"]] for f in checker.check_reply(g["text"], position="opening")]
        if got != g["findings"]:
            wrong.append((g["text"], g["findings"], got))
    assert not wrong, wrong[:5]
    for g in (g for g in golden if "file" in g):
        convs, _ = load_path(FIXTURES / "coach" / g["file"])
        # ids of chat logs hold the file's path: compare the part after it
        conv = next(c for c in convs if c.id.rsplit("/", 1)[-1] == g["id"].rsplit("/", 1)[-1])
        found = checker.check_conversation(conv).findings
        assert [[f["turn"], f["rule"], *f["span"]] for f in found] == g["findings"], g["id"]


# -- item 1: a hostile draft reply -------------------------------------------------------


def test_check_reply_of_a_repeated_phrase_start_is_fast(agent):
    # 你 找 售后 … 去 with no 去 anywhere: the regex backtracked through every way to
    # place the gaps (1,000 chars took 16 s, 5,000 never ended)
    text = "你找售后" * (MAX_REPLY_CHARS // 4)
    resp, took = timed(agent.post, "/api/v1/coach/check-reply", json={"text": text})
    data = resp.get_json()
    assert resp.status_code == 200 and took < HANG
    assert data["findings"] == [] and data["unfinished"] == []  # a mid-chat draft
    data = agent.post(
        "/api/v1/coach/check-reply", json={"text": text[:-8] + "你找售后去吧"}
    ).get_json()
    assert "improper-attitude" in [f["rule"] for f in data["findings"]]


@pytest.mark.parametrize(
    "text",
    [
        "我" * 5000,
        "差不多" * 1666,
        "可能" * 2500,
        "稍等" * 2500,
        "帮您查一下" * 1000,
        "还有其他问题" * 833,
        "你自己去查" * 1000,
        "“你找售后去”" * 700,
        "有需要联系" * 1000 + "？",
    ],
)
def test_hostile_drafts_of_the_maximum_size_finish_in_seconds(checker, text):
    text = text[:MAX_REPLY_CHARS]
    findings, took = timed(checker.check_reply, text)
    assert took < HANG, took
    assert len({(f["rule"], f["span"][0]) for f in findings}) == len(findings)


def test_one_huge_agent_turn_in_a_file_is_checked_in_seconds(tmp_path, checker):
    path = tmp_path / "one.jsonl"
    rec = {"id": "t", "turns": [{"role": "agent", "text": "你找售后" * 1250}]}
    path.write_text(json.dumps(rec, ensure_ascii=False) + "\n", encoding="utf-8")
    (conv,), errors = load_path(path)
    report, took = timed(checker.check_conversation, conv)
    assert errors == [] and took < HANG
    assert report.not_checkable == [
        n for n in report.not_checkable if n["rule"] in ("slow-greeting", "slow-reply")
    ]


# -- item 2: a costly team overlay is refused ----------------------------------------------

COSTLY = """\
rules:
  - id: team-thanks
    category: improper
    level: warning
    weight: 1
    check: token
    message: 测试
    suggestion: 测试
    words: ["{words}"]
    examples: {{must: ["{must}"], must_not: ["您好"]}}
"""


def test_costly_overlay_phrase_is_refused_naming_rule_and_entry(tmp_path):
    words = "我 … 我 … 我 … 我 … 我 … 我 … 谢谢"
    path = tmp_path / "team.yaml"
    path.write_text(COSTLY.format(words=words, must="我我我我我我谢谢"), encoding="utf-8")
    with pytest.raises(RuleError) as err:
        load_rules([path])
    (problem,) = err.value.problems
    assert f"规则 team-thanks 的词条「{words}」过于复杂" in problem
    assert "最多 5 个位置" in problem


@pytest.mark.parametrize(
    ("words", "needle"),
    [
        ("{phrase: '我 … 谢谢', max_gap: 50}", "max_gap 最大为 10"),
        ("'我 " + "/".join(f"词{i}" for i in range(41)) + "'", "41 个备选词"),
        ("'" + "长" * 31 + "'", "31 个字"),
    ],
)
def test_other_cost_limits_of_entries(tmp_path, words, needle):
    text = COSTLY.replace('["{words}"]', "[{words}]").format(words=words, must="我谢谢")
    path = tmp_path / "team.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleError) as err:
        load_rules([path])
    assert "规则 team-thanks 的词条" in str(err.value) and needle in str(err.value)


def test_supervisor_save_of_a_costly_overlay_shows_the_message(app, users):
    sup = signed_in(app, users["supervisor"])
    tok = sup.environ_base["HTTP_X_CSRFTOKEN"]
    words = "我 … 我 … 我 … 我 … 我 … 我 … 谢谢"
    yaml_text = COSTLY.format(words=words, must="我我我我我我谢谢")
    resp = sup.post("/rules", data={"csrf_token": tok, "yaml": yaml_text})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "规则 team-thanks 的词条「" in page and "过于复杂" in page


def test_allowed_overlay_phrase_stays_fast_on_its_worst_input(tmp_path):
    words = "我 … 我 … 我 … 我 … 谢谢"  # 5 slots: the limit
    path = tmp_path / "team.yaml"
    path.write_text(COSTLY.format(words=words, must="我我我我谢谢"), encoding="utf-8")
    chk = Checker(load_rules([path]))
    for text in ("我" * 5000, "我" * 4998 + "谢谢", "我，" * 2500):
        findings, took = timed(chk.check_reply, text)
        assert took < HANG, (text[-4:], took)
    assert "team-thanks" in {f["rule"] for f in chk.check_reply("我" * 4998 + "谢谢")}


# -- item 4: long conversations ------------------------------------------------------------


def _agent_only(n: int) -> Conversation:
    turns = [Turn("customer", "在吗")]
    turns += [Turn("agent", f"亲，这个可能明天到哦（{i}）") for i in range(n)]
    return Conversation("long", turns)


def test_a_long_agent_only_conversation_is_linear():
    # customer_echo looked back over every earlier turn per match: quadratic. The
    # per-conversation time limit is lifted here (a busy CI machine can need more than
    # its 2 s for the largest conversation allowed, and the cut-off is tested apart):
    # what this guards is that the whole conversation is checked and nothing hangs.
    report, took = timed(Checker(seconds=None).check_conversation, _agent_only(MAX_TURNS - 1))
    assert took < HANG * 4 and report.not_checkable == [
        n for n in report.not_checkable if n["rule"] in ("slow-greeting", "slow-reply")
    ]
    assert sum(f["rule"] == "vague-hedge" for f in report.findings) == MAX_TURNS - 1


def test_over_limit_conversation_is_an_unreadable_record_with_its_line(tmp_path):
    lines = ["===== 会话 ok =====", "2016-02-02 10:00:01 客服小王: 您好"]
    lines.append("===== 会话 huge =====")
    lines += [f"2016-02-02 10:00:01 客服小王: 第{i}句" for i in range(MAX_TURNS + 1)]
    path = tmp_path / "chat.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    convs, errors = load_path(path)
    assert [c.id for c in convs] == ["ok"]
    (err,) = errors
    assert err.path == str(path) and err.line == 4
    assert f"会话共 {MAX_TURNS + 1} 句" in err.reason and f"最多 {MAX_TURNS} 句" in err.reason


def test_over_limit_jsonl_record_and_api_batch(tmp_path, app, users):
    big = {"id": "big", "turns": [{"role": "agent", "text": "好"}] * (MAX_TURNS + 1)}
    ok = {"id": "ok", "turns": [{"role": "agent", "text": "您好"}]}
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in (ok, big)) + "\n"
    convs, errors = load_text(text, "chats.jsonl")
    assert [c.id for c in convs] == ["ok"] and errors[0].line == 2
    assert f"最多 {MAX_TURNS} 句" in errors[0].reason
    sup = signed_in(app, users["supervisor"])
    data = sup.post("/api/v1/coach/check", json=[ok, big]).get_json()
    assert [c["id"] for c in data["conversations"]] == ["ok"]
    assert data["errors"][0]["line"] == 2 and "最多" in data["errors"][0]["reason"]


def test_check_reply_limits_are_json_errors(agent):
    resp = agent.post("/api/v1/coach/check-reply", json={"text": "好" * (MAX_REPLY_CHARS + 1)})
    assert resp.status_code == 413
    body = resp.get_json()
    assert body["ok"] is False and body["status"] == 413 and str(MAX_REPLY_CHARS) in body["error"]
    context = [{"role": "customer", "text": "在" * (MAX_REPLY_CHARS + 1)}]
    resp = agent.post("/api/v1/coach/check-reply", json={"text": "您好", "context": context})
    assert resp.status_code == 413 and "context 第1句过长" in resp.get_json()["error"]


# -- the time limit --------------------------------------------------------------------------


def test_time_limit_reports_every_rule_not_checked():
    chk = Checker(seconds=0)
    report = chk.check_conversation(_agent_only(10))
    assert report.findings == []
    # every rule of the chat channel (phone rules do not apply to a chat)
    chat = {r.id for r in chk.rules if r.applies_to("chat")}
    assert {n["rule"] for n in report.not_checkable} == chat
    assert all("时限" in n["reason"] for n in report.not_checkable)
    unfinished = []
    assert chk.check_reply("可能吧", unfinished=unfinished) == []
    assert unfinished and all("时限" in n["reason"] for n in unfinished)
    # a draft without times has nothing for the timing rules: they are never unfinished
    assert not {"slow-greeting", "slow-reply"} & {n["rule"] for n in unfinished}


def test_time_limit_mid_conversation_names_the_turn_and_keeps_earlier_findings():
    chk = Checker(seconds=0.02)
    turns = [Turn("agent", "您好")]
    turns += [Turn("agent", f"可能明天到，差不多后天吧（{i}）") for i in range(MAX_TURNS - 1)]
    report, took = timed(chk.check_conversation, Conversation("c", turns))
    assert took < HANG
    late = [n for n in report.not_checkable if "时限" in n["reason"]]
    assert late, report.not_checkable
    for n in late:  # the rule running at the deadline names the first turn it left
        m = re.search(r"第(\d+)句及之后未检查", n["reason"])
        if m:
            kept = [f["turn"] for f in report.findings if f["rule"] == n["rule"]]
            assert all(t < int(m.group(1)) - 1 for t in kept)


def test_audit_page_shows_rules_cut_by_the_time_limit(kb, users):
    from web import create_app

    from .test_audits import jsonl, upload, wait_done

    app = create_app({"INSTANCE": str(kb.root), "TESTING": True, "COACH_CHECK_SECONDS": 0})
    sup = signed_in(app, users["supervisor"])
    tok = sup.environ_base["HTTP_X_CSRFTOKEN"]
    conv = {"id": "c1", "agent": "agent1", "turns": [{"role": "agent", "text": "可能吧"}]}
    resp = upload(sup, tok, [("c.jsonl", jsonl([conv]).encode())])
    body = wait_done(sup, int(resp.headers["Location"].rsplit("/", 1)[1]))
    item = body["items"][0]
    page = sup.get(f"/audits/items/{item['id']}").get_data(as_text=True)
    assert "未能检查的规则" in page and "超过时限" in page


def test_a_message_of_many_lines_loads_in_seconds(tmp_path):
    # the two-line chat form appended each message line to the turn's text: quadratic
    lines = [f"第{i}行：这是一条很长的消息里的一行文字" for i in range(40_000)]
    path = tmp_path / "long.txt"
    path.write_text("2016-02-02 10:00:01 客服小王(1)\n" + "\n".join(lines) + "\n", encoding="utf-8")
    (convs, errors), took = timed(load_path, path)
    assert took < HANG
    # 900,000 characters in one message: refused with the limit named, not cut short
    assert convs == [] and "每句最多" in errors[0].reason
    (convs, errors), _ = timed(load_path, _two_line_log(tmp_path, lines[:2000]))
    assert errors == [] and convs[0].turns[0].text == "\n".join(lines[:2000])


def _two_line_log(tmp_path, lines: list[str]):
    path = tmp_path / "shorter.txt"
    path.write_text("2016-02-02 10:00:01 客服小王(1)\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_time_limit_stops_inside_one_huge_turn():
    # every match is quoted (guarded): the rule would visit all of them
    chk = Checker(seconds=0.05)
    turns = [Turn("agent", "您好"), Turn("agent", "“可能”" * 400_000)]
    report, took = timed(chk.check_conversation, Conversation("q", turns))
    assert took < 30
    late = {n["rule"]: n["reason"] for n in report.not_checkable if "时限" in n["reason"]}
    assert late and any("第2句及之后未检查" in r or r.startswith("未检查：") for r in late.values())
