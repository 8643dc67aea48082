"""Transcript import: formats, encodings, broken records, hostile input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coach.checker import Checker
from coach.importers import parse_ts
from coach.transcripts import decode_bytes, load_bytes, load_path, load_text, sniff_format

FIXTURES = Path(__file__).parent / "fixtures" / "coach"

CSV_TEXT = (
    "会话ID,时间,发送方,内容,客服\n"
    "C1,2024-03-01 10:00:00,客户,你好,小赵\n"
    "C1,2024-03-01 10:00:02,客服,您好，请问有什么可以帮您？,小赵\n"
    "C1,2024-03-01 10:00:20,客户,这个能退吗,小赵\n"
    "C1,2024-03-01 10:00:30,客服,这个差不多能退吧,小赵\n"
)
CHATLOG_TEXT = (
    "2016-02-02 10:00:01 顾客张三: 你好\n"
    "2016-02-02 10:00:09 客服小王: 亲，这个大概明天能发货哦\n"
    "2016-02-02 10:00:30 顾客张三: 好的\n"
)


def test_jsonl_fixture_with_timestamps():
    convs, errors = load_path(FIXTURES / "timing.jsonl")
    assert errors == []
    assert [c.id for c in convs] == ["fast", "slow-greeting", "slow-reply", "partial-ts"]
    fast = convs[0]
    assert (fast.agent, fast.channel) == ("小王", "web")
    assert fast.turns[1].ts - fast.turns[0].ts == 3
    assert convs[3].turns[1].ts is None


def test_sample_jsonl_with_extra_fields_loads():
    convs, errors = load_path(FIXTURES / "extra_fields.jsonl")
    assert errors == [] and [c.id for c in convs] == ["x-1", "x-2"]
    assert convs[1].turns[0].text == "[订单x]还请您稍等，正在为您查询~"
    assert {t.role for c in convs for t in c.turns} == {"agent", "customer"}


def test_csv_fixture_with_chinese_headers():
    convs, errors = load_path(FIXTURES / "messages.csv")
    assert errors == []
    assert [(c.id, c.agent, len(c.turns)) for c in convs] == [("C1", "小赵", 4), ("C2", "小钱", 2)]
    assert convs[0].turns[1].role == "agent" and convs[0].turns[1].ts is not None


def test_csv_in_gbk_is_detected(tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes(CSV_TEXT.encode("gbk"))
    assert decode_bytes(path.read_bytes())[1] == "gb18030"
    convs, errors = load_path(path)
    assert errors == []
    assert convs[0].turns[3].text == "这个差不多能退吧"
    found = Checker().check_conversation(convs[0]).findings
    assert [f["match"] for f in found if f["category"] == "vague"] == ["差不多"]


def test_csv_with_english_headers_and_sender_names(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(
        "conversation_id,ts,sender,content\nx,1709258400,王女士,在吗\nx,1709258409,客服阿珍,您好\n",
        encoding="utf-8",
    )
    convs, errors = load_path(path)
    assert errors == []
    assert [(t.role, t.speaker) for t in convs[0].turns] == [
        ("customer", "王女士"),
        ("agent", "客服阿珍"),
    ]
    assert convs[0].agent == "阿珍"


def test_csv_extra_column_names_from_config(tmp_path):
    from coach.importers import parse_csv

    text = "单号,角色,正文\nA,客服,您好\n"
    convs, errors = parse_csv(text, "x.csv", columns={"conversation": ["单号"], "text": ["正文"]})
    assert errors == [] and convs[0].id == "A" and convs[0].turns[0].text == "您好"


def test_csv_bad_rows_are_reported_and_skipped(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        CSV_TEXT + "C1,2024-03-01 10:01:00,客服\nC1,昨天下午,客服,好的,小赵\n", encoding="utf-8"
    )
    convs, errors = load_path(path)
    assert len(convs[0].turns) == 4
    assert [(e.line, e.path) for e in errors] == [(6, str(path)), (7, str(path))]
    assert "列数" in errors[0].reason and "时间" in errors[1].reason


def test_csv_without_text_column_is_one_error(tmp_path):
    path = tmp_path / "nope.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    assert sniff_format("a,b\n1,2\n", "x.csv") == "csv"
    convs, errors = load_path(path)
    assert convs == [] and errors[0].line == 1 and "内容" in errors[0].reason


def test_chatlog_one_line_form_with_separators():
    convs, errors = load_path(FIXTURES / "chatlog_oneline.txt")
    assert errors == []
    assert [c.id for c in convs] == ["A1", "A2"]
    a1 = convs[0]
    assert [(t.role, t.speaker) for t in a1.turns][:2] == [
        ("customer", "顾客张三"),
        ("agent", "客服小王"),
    ]
    assert a1.agent == "小王"  # the agent id: the speaker name without 客服
    assert (
        convs[1].turns[-1].text
        == "好的，已为您修改，\n改好后短信通知您。请问还有其他可以帮您的吗？"
    )


def test_chatlog_two_line_form_split_by_blank_lines():
    convs, errors = load_path(FIXTURES / "chatlog_twoline.txt")
    assert errors == []
    assert len(convs) == 2
    first = convs[0]
    assert [t.role for t in first.turns] == ["customer", "agent", "customer", "agent"]
    assert first.turns[1].speaker == "客服小美" and first.turns[1].text == "您好，请稍等"
    assert first.turns[3].text == "已经为您换开电子发票了\n感谢您的耐心等待，再见"


def test_chatlog_agent_names_list(tmp_path):
    path = tmp_path / "log.txt"
    path.write_text(
        "2016-02-02 10:00:01 阿珍: 您好\n2016-02-02 10:00:05 王女士: 在吗\n", encoding="utf-8"
    )
    convs, _ = load_path(path, agent_names=["阿珍"])
    assert [t.role for t in convs[0].turns] == ["agent", "customer"]
    convs, _ = load_path(path, agent_prefixes=["王"])
    assert [t.role for t in convs[0].turns] == ["customer", "agent"]


def test_chatlog_in_utf16_with_bom(tmp_path):
    path = tmp_path / "log.txt"
    path.write_bytes(CHATLOG_TEXT.encode("utf-16"))
    convs, errors = load_path(path)
    assert errors == [] and convs[0].turns[1].text == "亲，这个大概明天能发货哦"


def test_chatlog_in_utf16_without_bom(tmp_path):
    path = tmp_path / "log.txt"
    path.write_bytes(CHATLOG_TEXT.encode("utf-16-le"))
    convs, errors = load_path(path)
    assert errors == [] and len(convs[0].turns) == 3


def test_jsonl_with_utf8_bom(tmp_path):
    path = tmp_path / "bom.jsonl"
    record = {"id": "b1", "turns": [{"role": "agent", "text": "您好"}]}
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(record, ensure_ascii=False).encode("utf-8"))
    convs, errors = load_path(path)
    assert errors == [] and convs[0].id == "b1"


def test_chatlog_unrecognised_line_is_an_error(tmp_path):
    path = tmp_path / "log.txt"
    path.write_text("这一行没有时间\n" + CHATLOG_TEXT, encoding="utf-8")
    convs, errors = load_path(path)
    assert len(convs[0].turns) == 3
    assert (errors[0].path, errors[0].line) == (str(path), 1)


def test_broken_jsonl_record_names_file_and_line_and_the_rest_is_checked(tmp_path):
    good = {"id": "ok", "turns": [{"role": "agent", "text": "这个大概明天到"}]}
    lines = [
        json.dumps(good, ensure_ascii=False),
        '{"id": "broken", "turns": [',
        json.dumps({"id": "role", "turns": [{"role": "robot", "text": "x"}]}),
        json.dumps({"id": "ts", "turns": [{"role": "agent", "text": "x", "ts": "下午三点"}]}),
        json.dumps({"id": "noturns"}),
        "[1, 2]",
        json.dumps({**good, "id": "ok2"}, ensure_ascii=False),
    ]
    path = tmp_path / "batch.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    convs, errors = load_path(path)
    assert [c.id for c in convs] == ["ok", "ok2"]
    assert [(e.path, e.line) for e in errors] == [(str(path), n) for n in (2, 3, 4, 5, 6)]
    assert "JSON" in errors[0].reason and "角色" in errors[1].reason and "时间" in errors[2].reason
    reports = [Checker().check_conversation(c) for c in convs]
    assert all(any(f["category"] == "vague" for f in r.findings) for r in reports)


def test_huge_line_and_nul_bytes_do_not_crash(tmp_path):
    from coach.limits import MAX_TURN_CHARS

    long = "差不多" + "好" * (MAX_TURN_CHARS - 3)
    huge = "差不多" + "好" * 1_000_000
    path = tmp_path / "huge.jsonl"
    lines = [{"id": "long", "turns": [{"role": "agent", "text": long}]}]
    lines.append({"id": "huge", "turns": [{"role": "agent", "text": huge}]})
    text = "\n".join(json.dumps(rec, ensure_ascii=False) for rec in lines)
    path.write_text(text + "\n\x00\x00{bad\n", encoding="utf-8")
    convs, errors = load_path(path)
    assert [c.id for c in convs] == ["long"] and [e.line for e in errors] == [2, 3]
    assert f"每句最多 {MAX_TURN_CHARS} 个字符" in errors[0].reason  # named, not cut short
    report = Checker().check_conversation(convs[0])
    assert any(f["match"] == "差不多" for f in report.findings)
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"2016-02-02 10:00:01 \xe5\xae\xa2\xe6\x9c\x8d\x00A: hi\x00\n\x00\x00\x00\n")
    load_path(nul)  # no exception is the assertion


def test_directory_and_stdin(tmp_path):
    (tmp_path / "a.jsonl").write_text(
        json.dumps({"id": "a", "turns": [{"role": "agent", "text": "您好"}]}) + "\n",
        encoding="utf-8",
    )
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.csv").write_text(CSV_TEXT, encoding="utf-8")
    (tmp_path / "ignored.bin").write_bytes(b"\x00\x01")
    convs, errors = load_path(tmp_path)
    assert sorted(c.id for c in convs) == ["C1", "a"] and errors == []
    convs, errors = load_path("-", stdin=io.BytesIO(CHATLOG_TEXT.encode("gb18030")))
    assert errors == [] and convs[0].turns[0].speaker == "顾客张三"


def test_missing_file_is_an_error_not_an_exception(tmp_path):
    convs, errors = load_path(tmp_path / "nope.jsonl")
    assert convs == [] and errors[0].line == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2016-02-02 10:00:01", 1454407201.0),
        ("2016/2/2 10:00", 1454407200.0),
        ("2016-02-02T10:00:01Z", 1454407201.0),
        ("2016-02-02T18:00:01+08:00", 1454407201.0),
        (1454407201, 1454407201.0),
        ("1454407201000", 1454407201.0),
        (None, None),
    ],
)
def test_timestamps(value, expected):
    assert parse_ts(value) == expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=3000), fmt=st.sampled_from([None, "jsonl", "csv", "chatlog"]))
def test_random_bytes_never_crash(data, fmt):
    convs, errors = load_bytes(data, "random.bin", fmt)
    for e in errors:
        assert e.path == "random.bin" and e.line >= 0 and e.reason


LINE = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda d, name, msg: f"2016-02-0{d} 10:00:0{d} {name}: {msg}",
        st.integers(1, 9),
        st.text(max_size=10),
        st.text(max_size=30),
    ),
    st.builds(
        json.dumps,
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(
                    st.sampled_from(["id", "turns", "role", "text", "ts", "agent"]),
                    inner,
                    max_size=4,
                )
            ),
            max_leaves=12,
        ),
    ),
)


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(LINE, max_size=12), fmt=st.sampled_from(["jsonl", "csv", "chatlog"]))
def test_hostile_text_yields_errors_not_exceptions(lines, fmt):
    text = "\n".join(lines)
    convs, errors = load_bytes(text.encode("utf-8", "surrogatepass"), "hostile.txt", fmt)
    checker = _checker()
    for conv in convs:
        report = checker.check_conversation(conv)
        for f in report.findings:
            s, e = f["span"]
            assert conv.turns[f["turn"]].text[s:e] == f["match"]


_CHECKER: list = []


def _checker() -> Checker:
    if not _CHECKER:
        _CHECKER.append(Checker())
    return _CHECKER[0]


def test_agent_ids_and_records_that_say_nothing():
    from coach.importers import agent_id

    assert [agent_id(s) for s in ("客服wang", "客服-小王", "客服", "小李")] == [
        "wang",
        "小王",
        "客服",
        "小李",
    ]
    text = "\n".join(
        json.dumps(r, ensure_ascii=False)
        for r in (
            {"id": "empty", "turns": []},
            {"id": "obj", "agent": {"a": 1}, "turns": [{"role": "agent", "text": "您好"}]},
            {"id": "x" * 500, "turns": [{"role": "agent", "text": "您好"}]},
            {"id": "ok", "turns": [{"role": "agent", "text": "您好", "speaker": "客服wang"}]},
        )
    )
    convs, errors = load_text(text, "odd.jsonl")
    assert [c.id for c in convs] == ["ok"] and convs[0].agent == "wang"
    reasons = [e.reason for e in errors]
    assert [e.line for e in errors] == [1, 2, 3]
    assert "turns 为空" in reasons[0] and "agent" in reasons[1] and "过长" in reasons[2]
