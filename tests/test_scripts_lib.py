"""Loading the standard scripts library: validation errors with file and line, overlays."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from scripts_lib import (
    Library,
    ScriptDataError,
    load_library,
)

GOOD = """\
  - id: good-1
    title: 正常话术
    text: "您好，{客户称呼}，很高兴为您服务。"
    prompts:
      客户称呼: 请输入客户称呼
    shortcut: /good
    channels: [online]
"""


def write(dir_: Path, name: str, body: str) -> Path:
    """Write a data file with dedented YAML and return its path."""
    path = dir_ / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def scenario_file(dir_: Path, scripts: str, name: str = "test.yaml") -> Path:
    """A scenario file `test` holding the good script plus `scripts`."""
    head = "scenario: test\ntitle: 测试场景\ndescription: 测试用\nscripts:\n"
    body = head + GOOD + textwrap.indent(textwrap.dedent(scripts), "  ")
    path = dir_ / name
    path.write_text(body, encoding="utf-8")
    return path


def line_of(path: Path, needle: str, nth: int = 1) -> int:
    """1-based line number of the nth line of `path` containing `needle`."""
    seen = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            seen += 1
            if seen == nth:
                return number
    raise AssertionError(f"{needle!r} not in {path}")


def only_error(lib: Library) -> ScriptDataError:
    assert len(lib.errors) == 1, [str(e) for e in lib.errors]
    return lib.errors[0]


def assert_located(err: ScriptDataError, path: Path, line: int) -> None:
    """The message names the file and the line, and the fields agree."""
    assert err.path == str(path)
    assert err.line == line
    assert f"{path}:{line}:" in str(err)
    assert path.name in str(err)


# -- loading errors -----------------------------------------------------------

BAD_SCRIPTS = [
    pytest.param(
        """\
        - id: no-shortcut-1
          title: 缺少快捷码
          text: 您好。
          channels: [online]
        """,
        "- id: no-shortcut-1",
        "缺少字段 shortcut",
        id="missing-field",
    ),
    pytest.param(
        """\
        - id: bad-channel-1
          title: 渠道错误
          text: 您好。
          shortcut: /bc
          channels: [online, fax]
        """,
        "channels: [online, fax]",
        "未知渠道 fax",
        id="bad-channel",
    ),
    pytest.param(
        """\
        - id: no-prompt-1
          title: 占位符缺提示
          text: "您的订单{订单号}已发货。"
          shortcut: /np
          channels: [online]
        """,
        'text: "您的订单',
        "占位符 {订单号} 缺少填写提示",
        id="placeholder-without-prompt",
    ),
    pytest.param(
        """\
        - id: extra-prompt-1
          title: 多余的提示
          text: "您的订单{订单号}已发货。"
          prompts:
            订单号: 请输入订单号
            快递单号: 请输入快递单号
          shortcut: /ep
          channels: [online]
        """,
        "快递单号: 请输入快递单号",
        "prompts 中的占位符 {快递单号} 未在文本中出现",
        id="unknown-placeholder-in-prompts",
    ),
    pytest.param(
        """\
        - id: bad-shortcut-1
          title: 快捷码格式错误
          text: 您好。
          shortcut: dd
          channels: [online]
        """,
        "shortcut: dd",
        "快捷码 'dd' 无效",
        id="bad-shortcut",
    ),
    pytest.param(
        """\
        - id: Bad Id
          title: id 格式错误
          text: 您好。
          shortcut: /bi
          channels: [online]
        """,
        "- id: Bad Id",
        "id 只能用小写英文字母",
        id="bad-id",
    ),
    pytest.param(
        """\
        - id: typo-1
          title: 字段拼写错误
          text: 您好。
          promts: {}
          shortcut: /ty
          channels: [online]
        """,
        "promts:",
        "未知字段 promts",
        id="unknown-field",
    ),
    pytest.param(
        """\
        - id: flow-text-1
          title: 未加引号的占位符
          text: {客户称呼}
          shortcut: /ft
          channels: [online]
        """,
        "text: {客户称呼}",
        "text 应为文本",
        id="unquoted-brace-text",
    ),
    pytest.param(
        """\
        - id: stray-1
          title: 多余的花括号
          text: "您的订单{订单号已发货。"
          shortcut: /st
          channels: [online]
        """,
        'text: "您的订单{订单号已',
        "无效的花括号",
        id="stray-brace",
    ),
    pytest.param(
        """\
        - id: bad-category-1
          title: 质检类别拼写错误
          text: 您好。
          shortcut: /bk
          channels: [online]
          replaces: [vauge]
        """,
        "replaces: [vauge]",
        "未知的质检类别 vauge",
        id="unknown-category",
    ),
]


@pytest.mark.parametrize(("scripts", "needle", "message"), BAD_SCRIPTS)
def test_bad_script_is_reported_with_file_and_line(tmp_path, scripts, needle, message):
    path = scenario_file(tmp_path, scripts)
    lib = load_library([tmp_path], builtin=False)
    err = only_error(lib)
    assert message in str(err)
    assert_located(err, path, line_of(path, needle))
    assert [s.id for s in lib] == ["good-1"], "one bad script must not block the others"


def test_duplicate_id_names_both_places(tmp_path):
    path = scenario_file(tmp_path, GOOD.replace("/good", "/good2"))
    lib = load_library([tmp_path], builtin=False)
    err = only_error(lib)
    assert "id 重复" in err.message and err.script_id == "good-1"
    assert_located(err, path, line_of(path, "- id: good-1", nth=2))
    assert f"{path}:{line_of(path, '- id: good-1')}" in err.message


def test_duplicate_shortcut_across_files(tmp_path):
    scenario_file(tmp_path, "", name="a.yaml")
    other = write(
        tmp_path,
        "b.yaml",
        """\
        scenario: other
        title: 其他
        scripts:
          - id: other-1
            title: 同一快捷码
            text: 您好。
            shortcut: /good
            channels: [phone]
        """,
    )
    lib = load_library([tmp_path], builtin=False)
    err = only_error(lib)
    assert "快捷码 /good 重复" in err.message and "good-1" in err.message
    assert_located(err, other, line_of(other, "- id: other-1"))
    assert lib.by_shortcut("/good").id == "good-1"
    assert "other-1" not in lib


def test_yaml_syntax_error_has_line(tmp_path):
    path = write(
        tmp_path,
        "broken.yaml",
        """\
        scenario: broken
        title: 语法错误
        scripts:
          - id: x
            text: "未闭合的引号
            shortcut: /x
          - [
        """,
    )
    scenario_file(tmp_path, "")
    lib = load_library([tmp_path], builtin=False)
    err = only_error(lib)
    assert "YAML 格式错误" in err.message
    assert err.path == str(path) and err.line is not None
    assert f"{path}:{err.line}:" in str(err)
    assert "good-1" in lib, "a broken file does not block other files"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("title: 无场景名\nscripts: []\n", "缺少或无效的 scenario"),
        ("scenario: x\ntitle: 无话术\n", "缺少 scripts 列表"),
        ("- just\n- a list\n", "文件顶层应为映射"),
        ("", "文件为空"),
    ],
)
def test_bad_file_shape(tmp_path, body, message):
    path = write(tmp_path, "bad.yaml", body)
    err = only_error(load_library([tmp_path], builtin=False))
    assert message in err.message and path.name in str(err)


def test_strict_raises_first_error(tmp_path):
    scenario_file(tmp_path, GOOD)
    with pytest.raises(ScriptDataError, match="id 重复"):
        load_library([tmp_path], builtin=False, strict=True)


def test_missing_overlay_dir_is_an_error(tmp_path):
    lib = load_library([tmp_path / "nope"])
    assert "话术目录不存在" in only_error(lib).message
    assert len(lib) >= 60, "the shared scripts still load"


# -- overlays -----------------------------------------------------------------


def test_personal_scripts_sit_beside_shared_ones(tmp_path):
    shared = load_library()
    path = write(
        tmp_path,
        "greeting.yaml",
        """\
        scenario: greeting
        title: 我的问候
        scripts:
          - id: my-greeting-1
            title: 我的开场白
            text: "您好，我是小王，很高兴为您服务，请问有什么可以帮您？"
            shortcut: /wohi
            channels: [online]
        """,
    )
    lib = load_library([tmp_path])
    assert lib.ok, [str(e) for e in lib.errors]
    assert len(lib) == len(shared) + 1
    mine = lib.by_shortcut("/wohi")
    assert mine.origin == str(tmp_path) and not mine.is_builtin and mine.source == str(path)
    greeting = [s.id for s in lib.by_scenario("greeting")]
    assert greeting[-1] == "my-greeting-1" and greeting[:-1] == [
        s.id for s in shared.by_scenario("greeting")
    ]
    assert lib.scenario("greeting").title == "开场问候", "the shared title stays"


def test_overlay_overrides_same_id_in_place(tmp_path):
    shared = load_library()
    write(
        tmp_path,
        "team.yaml",
        """\
        scenario: greeting
        title: 团队问候
        scripts:
          - id: greeting-standard-1
            title: 团队标准问候
            text: "您好，欢迎光临星辰家居，我是客服{客服工号}号，请问有什么可以帮您？"
            prompts:
              客服工号: 请输入您的客服工号
            shortcut: /xc
            channels: [online]
        """,
    )
    lib = load_library([tmp_path])
    assert lib.ok and len(lib) == len(shared)
    assert lib.get("greeting-standard-1").text.startswith("您好，欢迎光临星辰家居")
    assert lib.by_shortcut("/xc").id == "greeting-standard-1"
    assert lib.by_shortcut("/hi") is None, "the old shortcut is freed"
    assert [s.id for s in lib] == [s.id for s in shared]


def test_overlay_cannot_steal_a_shared_shortcut(tmp_path):
    path = write(
        tmp_path,
        "mine.yaml",
        """\
        scenario: mine
        title: 我的话术
        scripts:
          - id: my-wait-1
            title: 我的稍等
            text: "抱歉，请您稍等。"
            shortcut: /dd
            channels: [online]
        """,
    )
    lib = load_library([tmp_path])
    err = only_error(lib)
    assert "快捷码 /dd 重复" in err.message and "hold-apology-1" in err.message
    assert_located(err, path, line_of(path, "- id: my-wait-1"))
    assert lib.by_shortcut("/dd").id == "hold-apology-1"
    assert lib.scenarios()[-1].name == "mine", "new scenarios come after the shared ones"
