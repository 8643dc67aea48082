"""Read and validate one scripts data file, keeping the line of every script and field."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kb import safeyaml
from scripts_lib.models import (
    CHANNELS,
    COACH_CATEGORIES,
    Scenario,
    Script,
    ScriptDataError,
)
from scripts_lib.template import placeholders, stray_braces

FILE_KEYS = ("scenario", "title", "description", "order", "scripts")
SCRIPT_KEYS = ("id", "title", "text", "prompts", "shortcut", "channels", "tags", "replaces")
REQUIRED_KEYS = ("id", "title", "text", "shortcut", "channels")

SCENARIO_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
SHORTCUT_RE = re.compile(r"^/[a-z0-9]{1,6}$")


@dataclass
class FileResult:
    """What one data file yielded: its scenario, its valid scripts and every problem found."""

    path: Path
    scenario: Scenario | None = None
    scripts: list[Script] = field(default_factory=list)
    errors: list[ScriptDataError] = field(default_factory=list)


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _key_lines(node: yaml.MappingNode) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """Line of each key of a mapping node, plus keys that appear more than once."""
    lines: dict[str, int] = {}
    dups: list[tuple[str, int]] = []
    for key_node, _ in node.value:
        key = str(key_node.value)
        if key in lines:
            dups.append((key, _line(key_node)))
        else:
            lines[key] = _line(key_node)
    return lines, dups


def _nested_key_lines(node: yaml.MappingNode, key: str) -> dict[str, int]:
    """Key lines of the mapping stored under `key` (empty when it is not a mapping)."""
    for key_node, value_node in node.value:
        if key_node.value == key and isinstance(value_node, yaml.MappingNode):
            return _key_lines(value_node)[0]
    return {}


def _compose(path: Path, result: FileResult) -> tuple[yaml.Node | None, object]:
    """Parse the file into (node tree, Python data); syntax errors go to result.errors."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        result.errors.append(ScriptDataError(f"无法读取文件（需为 UTF-8）：{exc}", path=str(path)))
        return None, None
    loader = safeyaml.LOADER(text)  # libyaml when present
    try:
        safeyaml.check(text)  # no anchors/aliases, bounded depth and size
        node = loader.get_single_node()
        data = safeyaml.construct(loader, node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "无法解析"
        result.errors.append(
            ScriptDataError(
                f"YAML 格式错误：{problem}",
                path=str(path),
                line=mark.line + 1 if mark else None,
            )
        )
        return None, None
    except yaml.YAMLError as exc:
        result.errors.append(ScriptDataError(f"YAML 格式错误：{exc}", path=str(path)))
        return None, None
    finally:
        loader.dispose()
    return node, data


def read_file(path: Path, origin: str = "builtin") -> FileResult:
    """Validate one `<scenario>.yaml`; a bad script is reported and skipped, not fatal."""
    result = FileResult(path)
    node, data = _compose(path, result)
    if node is None and not result.errors:
        result.errors.append(ScriptDataError("文件为空", path=str(path)))
    if node is None:
        return result

    def fail(message: str, line: int | None, script_id: str = "") -> None:
        result.errors.append(
            ScriptDataError(message, path=str(path), line=line, script_id=script_id)
        )

    if not isinstance(node, yaml.MappingNode) or not isinstance(data, dict):
        fail("文件顶层应为映射，包含 scenario、title、description、scripts", _line(node))
        return result
    lines, dups = _key_lines(node)
    for key, line in dups:
        fail(f"顶层字段 {key} 重复", line)
    for key in lines:
        if key not in FILE_KEYS:
            fail(f"未知的顶层字段 {key}（可用：{'、'.join(FILE_KEYS)}）", lines[key])

    name = data.get("scenario")
    if not isinstance(name, str) or not SCENARIO_RE.match(name):
        where = lines.get("scenario", _line(node))
        fail("缺少或无效的 scenario：应为小写英文名，如 greeting", where)
        return result
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        fail("缺少场景标题 title", lines.get("title", _line(node)))
        title = name
    description = data.get("description") or ""
    if not isinstance(description, str):
        fail("description 应为文本", lines.get("description"))
        description = ""
    order = data.get("order", 1000)
    if isinstance(order, bool) or not isinstance(order, int):
        fail("order 应为整数", lines.get("order"))
        order = 1000
    result.scenario = Scenario(name, title.strip(), description.strip(), order, str(path))

    scripts = data.get("scripts")
    scripts_node = next((v for k, v in node.value if k.value == "scripts"), None)
    if not isinstance(scripts, list) or not isinstance(scripts_node, yaml.SequenceNode):
        fail("缺少 scripts 列表", lines.get("scripts", _line(node)))
        return result
    for index, (item, item_node) in enumerate(zip(scripts, scripts_node.value, strict=True)):
        script = _build_script(item, item_node, index, name, path, origin, fail)
        if script is not None:
            result.scripts.append(script)
    return result


def _str_list(value: object) -> list[str] | None:
    """The value as a list of non-empty strings, or None when it is not one."""
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) and v.strip() for v in value):
        return None
    return [v.strip() for v in value]


def _build_script(
    item: object,
    item_node: yaml.Node,
    index: int,
    scenario: str,
    path: Path,
    origin: str,
    fail: Callable[[str, int | None, str], None],
) -> Script | None:
    """Validate one script mapping; report every problem and return None if any."""
    start = _line(item_node)
    if not isinstance(item, dict) or not isinstance(item_node, yaml.MappingNode):
        fail(f"第 {index + 1} 条话术应为映射（id、title、text…）", start)
        return None
    raw_id = item.get("id")
    sid = raw_id if isinstance(raw_id, str) else ""
    label = f"话术 {sid}" if sid else f"第 {index + 1} 条话术"
    lines, dups = _key_lines(item_node)
    problems: list[tuple[str, int]] = []

    def bad(message: str, key: str | None = None) -> None:
        problems.append((f"{label}：{message}", lines.get(key, start) if key else start))

    for key, line in dups:
        problems.append((f"{label}：字段 {key} 重复", line))
    for key in lines:
        if key not in SCRIPT_KEYS:
            bad(f"未知字段 {key}（可用：{'、'.join(SCRIPT_KEYS)}）", key)
    for key in REQUIRED_KEYS:
        value = item.get(key)
        if value is None or value == [] or (isinstance(value, str) and not value.strip()):
            bad(f"缺少字段 {key}")

    if "id" in item and raw_id is not None and not (sid and ID_RE.match(sid)):
        bad("id 只能用小写英文字母、数字和连字符，如 hold-apology-1", "id")
    title = item.get("title")
    if title is not None and not isinstance(title, str):
        bad("title 应为文本", "title")
    text = item.get("text")
    if text is not None and not isinstance(text, str):
        bad("text 应为文本（以 { 开头的文本请加引号）", "text")
        text = None
    names = placeholders(text) if text else []
    if text:
        for frag in stray_braces(text):
            bad(f"文本中有无效的花括号 {frag!r}，占位符写法为 {{订单号}}", "text")

    prompts = item.get("prompts") or {}
    if not isinstance(prompts, dict):
        bad("prompts 应为映射：占位符名 → 填写提示", "prompts")
        prompts = {}
    for name in names:
        prompt = prompts.get(name)
        if not isinstance(prompt, str) or not prompt.strip():
            bad(f"占位符 {{{name}}} 缺少填写提示（prompts）", "prompts" if prompts else "text")
    prompt_lines = _nested_key_lines(item_node, "prompts")
    for name in prompts:
        if text and str(name) not in names:
            problems.append(
                (
                    f"{label}：prompts 中的占位符 {{{name}}} 未在文本中出现",
                    prompt_lines.get(str(name), lines.get("prompts", start)),
                )
            )

    shortcut = item.get("shortcut")
    if shortcut is not None and not (isinstance(shortcut, str) and SHORTCUT_RE.match(shortcut)):
        bad(f"快捷码 {shortcut!r} 无效：应为 / 加 1–6 个小写字母或数字，如 /dd", "shortcut")

    channels = _str_list(item.get("channels", []))
    if channels is None:
        bad("channels 应为列表，如 [online, phone]", "channels")
        channels = []
    for ch in channels:
        if ch not in CHANNELS:
            bad(f"未知渠道 {ch}（可用：{', '.join(CHANNELS)}）", "channels")

    tags = _str_list(item.get("tags") or [])
    if tags is None:
        bad("tags 应为文本列表", "tags")
    replaces = _str_list(item.get("replaces") or [])
    if replaces is None:
        bad("replaces 应为文本列表", "replaces")
    for entry in replaces or []:
        if entry.isascii() and entry not in COACH_CATEGORIES:
            bad(
                f"replaces 中未知的质检类别 {entry}（可用：{', '.join(COACH_CATEGORIES)}）",
                "replaces",
            )

    if problems:
        for message, line in problems:
            fail(message, line, sid)
        return None
    return Script(
        id=sid,
        scenario=scenario,
        title=title.strip(),
        text=text.strip(),
        shortcut=shortcut,
        channels=tuple(dict.fromkeys(channels)),
        prompts={n: prompts[n].strip() for n in names},
        tags=tuple(tags or ()),
        replaces=tuple(replaces or ()),
        source=str(path),
        line=start,
        origin=origin,
    )
