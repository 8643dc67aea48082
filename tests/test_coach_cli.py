"""`kbcoach check` as a real subprocess: formats, stdin, exit codes."""

import json

from .conftest import run_cli

CLEAN = {
    "id": "ok",
    "turns": [
        {"role": "customer", "text": "在吗"},
        {"role": "agent", "text": "您好，很高兴为您服务，请问有什么可以帮您？"},
        {"role": "customer", "text": "没事了"},
        {"role": "agent", "text": "好的，感谢您的咨询，祝您生活愉快，再见！"},
    ],
}


def test_clean_conversation_exits_0():
    proc = run_cli("check", "-", input=json.dumps(CLEAN, ensure_ascii=False) + "\n")
    assert proc.returncode == 0, proc.stderr
    assert "平均分 100.0" in proc.stdout


def test_findings_exit_1_and_text_marks_the_match():
    conv = {
        "id": "bad",
        "turns": [{"role": "customer", "text": "多久到"}, {"role": "agent", "text": "差不多三天"}],
    }
    proc = run_cli("check", "-", input=json.dumps(conv, ensure_ascii=False))
    assert proc.returncode == 1
    assert "【差不多】三天" in proc.stdout and "建议话术" in proc.stdout


def test_usage_errors_exit_2(tmp_path):
    assert run_cli("check", str(tmp_path / "missing.jsonl")).returncode == 2
    assert run_cli("check", "-", "--format", "pdf", input="").returncode == 2
    assert run_cli("check", "-", "--format", "xlsx", input="").returncode == 2


def test_xlsx_report(tmp_path):
    out = tmp_path / "r.xlsx"
    proc = run_cli(
        "check",
        "-",
        "--format",
        "xlsx",
        "--output",
        str(out),
        input=json.dumps(CLEAN, ensure_ascii=False),
    )
    assert proc.returncode == 0 and out.read_bytes()[:2] == b"PK"


def test_whole_sample_as_json(chat_sample):
    proc = run_cli("check", str(chat_sample), "--format", "json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert len(report["conversations"]) == 500 and report["errors"] == []
    assert 0 < report["summary"]["findings"] < 3000
    for conv in report["conversations"]:
        for f in conv["findings"]:
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


def test_empty_input_is_not_reported_clean():
    proc = run_cli("check", "-", input="")
    assert proc.returncode == 1 and "没有找到可检查的会话" in proc.stderr
