"""run_check (the function behind `kbcoach check`): exit codes and every output format."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from openpyxl import load_workbook

from coach.report import EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE, run_check

FIXTURES = Path(__file__).parent / "fixtures" / "coach"
CLEAN = {
    "id": "clean",
    "agent": "小王",
    "turns": [
        {"role": "customer", "text": "在吗"},
        {"role": "agent", "text": "您好，很高兴为您服务，请问有什么可以帮您？"},
        {"role": "customer", "text": "没事了"},
        {"role": "agent", "text": "好的，感谢您的支持，再见！"},
    ],
}


def _jsonl(tmp_path, *records, name="in.jsonl") -> str:
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", "utf-8")
    return str(path)


def test_clean_batch_exits_0(tmp_path, capsys):
    code = run_check([_jsonl(tmp_path, CLEAN)], "json", [], "info", None)
    out = json.loads(capsys.readouterr().out)
    assert code == EXIT_CLEAN
    assert out["conversations"][0]["findings"] == [] and out["conversations"][0]["score"] == 100
    assert {"conversations", "agents", "errors", "summary"} <= set(out)


def test_json_report_shape_and_broken_record(tmp_path):
    bad = dict(CLEAN, id="bad")
    bad["turns"] = CLEAN["turns"][:1] + [{"role": "agent", "text": "嗯嗯"}]
    path = _jsonl(tmp_path, CLEAN, bad)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"id": "oops", "turns": [}\n')
    out_path = tmp_path / "report.json"
    assert run_check([path], "json", [], "info", str(out_path)) == EXIT_FINDINGS
    report = json.loads(out_path.read_text("utf-8"))
    conv = report["conversations"][1]
    assert conv["id"] == "bad" and conv["agent"] == "小王"
    f = next(f for f in conv["findings"] if f["category"] == "filler")
    assert set(f) >= {
        "turn",
        "category",
        "rule",
        "level",
        "span",
        "match",
        "message",
        "suggestion",
        "deduction",
    }
    assert (f["turn"], f["span"], f["match"]) == (1, [0, 2], "嗯嗯")
    assert conv["breakdown"]["filler-bare"]["deduction"] == f["deduction"]
    assert report["errors"] == [{"path": path, "line": 3, "reason": report["errors"][0]["reason"]}]
    assert report["summary"]["conversations"] == 2 and report["summary"]["errors"] == 1
    assert report["agents"][0]["agent"] == "小王"


def test_min_level_filters_output_and_exit_code(tmp_path, capsys):
    opener = dict(CLEAN, id="opener")
    opener["turns"] = CLEAN["turns"][:3] + [{"role": "agent", "text": "嗯嗯，感谢您的支持，再见"}]
    path = _jsonl(tmp_path, opener)
    assert run_check([path], "json", [], "info", None) == EXIT_FINDINGS
    assert json.loads(capsys.readouterr().out)["summary"]["findings"] == 1
    assert run_check([path], "json", [], "warning", None) == EXIT_CLEAN
    report = json.loads(capsys.readouterr().out)
    assert report["conversations"][0]["findings"] == []
    assert report["conversations"][0]["score"] < 100  # the score still counts it


def test_text_format_marks_the_match_and_suggests_wording(tmp_path, capsys):
    assert run_check([str(FIXTURES / "chatlog_oneline.txt")], "text", [], "info", None) == 1
    out = capsys.readouterr().out
    assert "亲，这个【大概】明天能发货哦" in out
    assert "建议话术" in out and "模糊用语" in out and "客服汇总" in out


def test_csv_format(tmp_path):
    out = tmp_path / "r.csv"
    assert run_check([str(FIXTURES / "messages.csv")], "csv", [], "info", str(out)) == 1
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel opens UTF-8 CSV with a BOM correctly
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    promise = next(r for r in rows if r["类别"] == "improper")
    assert (promise["会话ID"], promise["命中"], promise["原文"]) == (
        "C1",
        "保证",
        "可以的，我们保证能退",
    )


def test_xlsx_format(tmp_path):
    out = tmp_path / "r.xlsx"
    assert run_check([str(FIXTURES / "timing.jsonl")], "xlsx", [], "info", str(out)) == 1
    wb = load_workbook(out)
    assert wb.sheetnames == ["问题明细", "会话", "客服", "导入错误"]
    rows = list(wb["问题明细"].iter_rows(values_only=True))
    assert rows[0][0] == "会话ID"
    assert {r[4] for r in rows[1:]} == {"slow_greeting", "slow_reply"}


def test_stdin_and_folder(tmp_path, capsys):
    data = json.dumps(CLEAN, ensure_ascii=False).encode("gb18030")
    assert run_check(["-"], "json", [], "info", None, stdin=io.BytesIO(data)) == EXIT_CLEAN
    capsys.readouterr()
    _jsonl(tmp_path, CLEAN, name="a.jsonl")
    (tmp_path / "b.txt").write_text((FIXTURES / "chatlog_oneline.txt").read_text("utf-8"), "utf-8")
    seen = []
    code = run_check(
        [str(tmp_path)], "json", [], "info", None, progress=lambda d, t: seen.append((d, t))
    )
    assert code == EXIT_FINDINGS and seen[-1] == (3, 3)
    assert json.loads(capsys.readouterr().out)["summary"]["conversations"] == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"fmt": "pdf"}, "输出格式"),
        ({"min_level": "loud"}, "级别"),
        ({"paths": []}, "至少"),
        ({"paths": ["/no/such/file.jsonl"]}, "路径不存在"),
        ({"fmt": "xlsx"}, "--output"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, capsys, args, message):
    kwargs = {
        "paths": [str(FIXTURES / "timing.jsonl")],
        "fmt": "json",
        "rules_paths": [],
        "min_level": "info",
        "output": None,
        **args,
    }
    assert run_check(**kwargs) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_rules_file_is_a_usage_error(tmp_path, capsys):
    rules = tmp_path / "team.yaml"
    rules.write_text("rules:\n  - id: vague-hedge\n    weight: lots\n", encoding="utf-8")
    assert run_check([str(FIXTURES / "timing.jsonl")], "json", [str(rules)], "info", None) == 2
    err = capsys.readouterr().err
    assert "vague-hedge" in err and "weight" in err


def test_team_rules_apply(tmp_path, capsys):
    rules = tmp_path / "team.yaml"
    rules.write_text("disable: [filler-bare, filler-opener]\n", encoding="utf-8")
    path = str(FIXTURES / "chatlog_oneline.txt")
    run_check([path], "json", [str(rules)], "info", None)
    report = json.loads(capsys.readouterr().out)
    cats = {f["category"] for c in report["conversations"] for f in c["findings"]}
    assert "filler" not in cats and "vague" in cats
    assert report["summary"]["rules"][-1] == str(rules)


def test_sample_runs_without_errors(capsys, chat_sample):
    code = run_check([str(chat_sample)], "json", [], "info", None)
    report = json.loads(capsys.readouterr().out)
    assert code == EXIT_FINDINGS
    assert report["errors"] == [] and report["summary"]["conversations"] == 500
    assert report["summary"]["findings"] > 500
    untimed = sum(1 for line in chat_sample.open() if '"ts"' not in line)
    assert 0 < untimed < 500
    assert report["summary"]["not_checkable"] == {"slow-greeting": untimed, "slow-reply": untimed}


def test_check_records_for_the_web_api():
    from coach.report import check_records

    report = check_records([CLEAN, {"id": "x"}, {"turns": [{"role": "agent", "text": "嗯嗯"}]}])
    assert [c["id"] for c in report["conversations"]] == ["clean", "line-3"]
    assert report["errors"][0]["line"] == 2 and "turns" in report["errors"][0]["reason"]
    single = check_records(CLEAN)
    assert single["summary"]["conversations"] == 1


def test_json_array_file(tmp_path):
    from coach.transcripts import load_path

    path = tmp_path / "batch.json"
    path.write_text(json.dumps([CLEAN, {"id": 3}], ensure_ascii=False, indent=2), "utf-8")
    convs, errors = load_path(path)
    assert [c.id for c in convs] == ["clean"] and errors[0].line == 2


def test_text_format_says_why_a_finding_past_the_cap_costs_nothing(tmp_path, capsys):
    turns = [{"role": "customer", "text": "东西什么时候到"}]
    for n in range(4):
        turns += [
            {"role": "agent", "text": f"您好，大概第{n}天吧"},
            {"role": "customer", "text": "到底哪天"},
        ]
    chat = {"id": "cap", "agent": "a", "turns": turns}
    assert run_check([_jsonl(tmp_path, chat)], "text", [], "info", None) == EXIT_FINDINGS
    out = capsys.readouterr().out
    assert out.count("vague-hedge，扣4分") == 2
    assert out.count("vague-hedge，不扣分：本规则每会话最多扣8分，已扣满") == 2
    assert "扣0分" not in out
