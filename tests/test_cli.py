"""The kbcoach command line, run as a real subprocess."""

import json

import click
import pytest
from click.testing import CliRunner

import cli

from .conftest import FIXTURES, run_cli


def _command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and subcommand of the click group, walked (none listed by hand)."""
    out = []
    for name, cmd in sorted(group.commands.items()):
        out.append((*prefix, name))
        if isinstance(cmd, click.Group):
            out += _command_paths(cmd, (*prefix, name))
    return out


COMMANDS = _command_paths(cli.cli)


def test_the_walk_finds_nested_commands():
    assert {("search",), ("user", "add"), ("audit", "run"), ("rules", "save")} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command):
    result = CliRunner().invoke(cli.cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    out = result.output
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) >= 3 and any("\u4e00" <= ch <= "\u9fff" for ch in out), out


def test_import_is_idempotent_and_reports_counts(instance):
    first = run_cli("import", str(FIXTURES / "articles"), "--json", instance=instance)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["added"], report["changed"], report["failed"]) == (4, 0, 0)
    again = json.loads(
        run_cli("import", str(FIXTURES / "articles"), "--json", instance=instance).stdout
    )
    assert (again["added"], again["unchanged"], again["index"]["mode"]) == (0, 4, "none")


def test_import_reports_broken_file_and_keeps_the_rest(instance, tmp_path):
    src = tmp_path / "src" / "product"
    src.mkdir(parents=True)
    (src / "ok.md").write_text("---\nid: product-ok\ntitle: 好的文章\n---\n正文", encoding="utf-8")
    (src / "bad.md").write_text(
        "---\nid: product-bad\ntitle: 坏\nstatus: gone\n---\n", encoding="utf-8"
    )
    proc = run_cli("import", str(tmp_path / "src"), instance=instance)
    assert proc.returncode == 1
    assert "product/bad.md:4:" in proc.stderr and "状态" in proc.stderr
    assert "新增 1" in proc.stdout and "失败 1" in proc.stdout
    assert run_cli("search", "好的文章", instance=instance).returncode == 0


def test_import_jsonl_with_broken_lines(instance, tmp_path):
    path = tmp_path / "a.jsonl"
    lines = [
        json.dumps(
            {"id": "j1", "title": "会员积分规则", "body": "积分一年有效"}, ensure_ascii=False
        ),
        "{not json",
        json.dumps(
            {"id": "j2", "title": "发票抬头", "tags": "发票", "similar": ["抬头写错了"]},
            ensure_ascii=False,
        ),
        json.dumps({"title": "没有 id"}, ensure_ascii=False),
        json.dumps({"id": "j3", "title": "x", "similar": [1, 2]}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = run_cli("import-jsonl", str(path), "--json", instance=instance)
    report = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert (report["added"], report["failed"]) == (2, 3)
    assert [e.split(": ")[0] for e in report["errors"]] == [f"{path}:2", f"{path}:4", f"{path}:5"]
    out = json.loads(run_cli("search", "抬头写错了", "--json", instance=instance).stdout)
    assert out["hits"][0]["id"] == "j2"


def test_export_writes_markdown_back(instance, tmp_path):
    run_cli("import", str(FIXTURES / "articles"), instance=instance, check=True)
    out = tmp_path / "out"
    proc = run_cli("export", str(out), instance=instance)
    assert proc.returncode == 0
    assert (
        (out / "product" / "invoice.md")
        .read_text(encoding="utf-8")
        .startswith("---\nid: product-invoice\n")
    )
    assert not (out / "phrasing" / "draft-only.md").exists()  # published ones only
    again = run_cli("import", str(out), "--json", instance=instance)
    assert json.loads(again.stdout)["unchanged"] == 3


def test_search_text_json_and_batch(instance, tmp_path):
    run_cli("import", str(FIXTURES / "articles"), instance=instance, check=True)
    text = run_cli("search", "发票怎么开", instance=instance)
    assert text.returncode == 0 and "【发票】" in text.stdout and "product-invoice" in text.stdout
    data = json.loads(run_cli("search", "发票怎么开", "--json", instance=instance).stdout)
    assert data["hits"][0]["id"] == "product-invoice" and "<mark>" in data["hits"][0]["snippet"]
    assert run_cli("search", "发票", "--category", "norm", instance=instance).returncode == 1
    assert run_cli("search", "发票", "--category", "shoes", instance=instance).returncode == 2
    batch = tmp_path / "q.jsonl"
    batch.write_text(
        '{"qid": "1", "q": "退钱要多久"}\nnot json\n{"qid": 2, "q": "5秒问候"}\n', encoding="utf-8"
    )
    proc = run_cli("search", "--batch", str(batch), "--top", "3", "--json", instance=instance)
    rows = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [r["qid"] for r in rows] == ["1", "2"]
    assert rows[0]["hits"][0] == "product-refund" and rows[1]["hits"][0] == "norm-greeting"
    assert all(isinstance(r["took_ms"], float) for r in rows)
    assert ":2:" in proc.stderr and proc.returncode == 1  # the bad line is not silent


def test_usage_errors_exit_2(instance):
    assert run_cli("search", instance=instance).returncode == 2
    assert run_cli("no-such-command").returncode == 2
    assert run_cli("import", "/does/not/exist").returncode == 2


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["no-such-command"], "错误：没有命令「no-such-command」"),
        (["import", "/does/not/exist"], "错误：参数 PATH 的值无效：路径「/does/not/exist」不存在"),
        (
            ["search", "发票", "--limit", "abc"],
            "错误：参数 --limit / --top 的值无效：「abc」不是整数",
        ),
        (["search", "发票", "--limit", "0"], "错误：参数 --limit / --top 的值无效：0 超出范围"),
        (["search", "发票", "--limi", "3"], "错误：没有选项 --limi（是否想用 --limit）"),
        (["search", "发票", "--limit"], "错误：选项 --limit 需要一个值"),
        (["check", "-", "--format", "pdf"], "错误：参数 --format 的值无效：「pdf」不是可选值"),
        (["user", "add"], "错误：缺少参数 USERNAME"),
        (["search", "a", "b", "c"], "错误：多余的参数：b c"),
    ],
)
def test_usage_errors_are_said_in_chinese(instance, args, said):
    proc = run_cli(*args, instance=instance, input="")
    assert proc.returncode == 2
    assert said in proc.stderr, proc.stderr
    assert "Error:" not in proc.stderr and "Usage:" not in proc.stderr


def test_backup_and_restore(instance, tmp_path):
    run_cli("import", str(FIXTURES / "articles"), instance=instance, check=True)
    dest = tmp_path / "backups"
    dest.mkdir()
    proc = run_cli("backup", str(dest), instance=instance)
    assert proc.returncode == 0, proc.stderr
    (copy,) = dest.glob("kbcoach-*.db")
    other = tmp_path / "other"
    assert run_cli("restore", str(copy), instance=other).returncode == 2  # needs --yes
    assert run_cli("restore", str(copy), "--yes", instance=other).returncode == 0
    out = json.loads(run_cli("search", "发票怎么开", "--json", instance=other).stdout)
    assert out["hits"][0]["id"] == "product-invoice"
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database")
    proc = run_cli("restore", str(bad), "--yes", instance=other)
    assert proc.returncode == 1 and "不是有效的" in proc.stderr


def test_every_help_option_is_chinese():
    from click.testing import CliRunner

    from cli import cli as root

    runner = CliRunner()
    for args in (["--help"], ["audit", "list", "--help"], ["team-agents", "add", "-h"]):
        out = runner.invoke(root, args).output
        assert "显示本帮助并退出。" in out and "Show this message" not in out, args
    assert "显示版本并退出。" in runner.invoke(root, ["--help"]).output
