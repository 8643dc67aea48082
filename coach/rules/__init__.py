"""Rule packs as data: load the default YAML pack, apply team overlays, verify examples.

A rule is a record (see `Rule`); `default.yaml` in this folder is the default
pack. An overlay file may hold:

    settings: {fatal_cap: 40}          # pack settings to change
    # official_contacts: [4001234567, service@example.com, "@example.com"]
    #                                  # numbers / e-mails / domains agents may give out
    disable: [rule-id, ...]            # switch rules off by id
    enable: [rule-id, ...]
    rules:
      - id: vague-hedge                # an existing id: patch it
        weight: 2
        level: info
        add_words: [大致]
        remove_words: [估计]           # must examples using a removed word are dropped
        add_exceptions: [...]
        remove_exceptions: [...]
        add_examples: {must: [...], must_not: [...]}
      - id: team-new-rule              # a new id: a complete rule
        ...

Every rule carries examples that must and must not fire; a pack (after overlays)
whose examples fail refuses to load with a `RuleError` listing each failure. A rule
of check type `manual` (a norm text cannot show: ring count, tone) has no examples:
it only lists the norm under not_checkable.

`channels` (chat / phone / message; empty: all) says which conversations a rule
applies to (coach/calls.py tells a conversation's channel); `norm` names the
norm article (articles/norm/<slug>.md, its id) the rule enforces.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from kb import safeyaml
from kb.errors import KbError
from kb.textproc import get_tokenizer, normalize
from scripts_lib.models import COACH_CATEGORIES

from .. import textview
from ..patterns import PatternError, PatternTooComplex

if TYPE_CHECKING:
    from ..checks import Check

LEVELS = ("info", "warning", "error", "fatal")
CATEGORIES = COACH_CATEGORIES  # the one list, with its Chinese names, in scripts_lib
SCOPES = ("agent", "customer", "all")
CHANNELS = ("chat", "phone", "message")
REQUIRED = ("id", "category", "level", "weight", "check", "message", "suggestion", "examples")
PATCH_EXTRA = (
    "add_words",
    "remove_words",
    "add_exceptions",
    "remove_exceptions",
    "add_examples",
)
DEFAULT_SETTINGS = {"fatal_cap": 40, "official_contacts": []}
MANUAL = "manual"  # the check type of norms text cannot show: no examples


class RuleError(KbError, ValueError):
    """A rule pack that cannot be loaded; `problems` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("规则包无法加载:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass
class Rule:
    """One coaching rule: what to match, how bad it is, and how to say it better."""

    id: str
    category: str
    level: str
    weight: float
    check: str
    message: str
    suggestion: str
    examples: dict
    cap: float | None = None
    scope: str = "agent"
    words: list = field(default_factory=list)
    exceptions: list = field(default_factory=list)
    params: dict = field(default_factory=dict)
    script: str | None = None
    channels: list = field(default_factory=list)
    norm: str | None = None
    enabled: bool = True
    source: str = ""

    def applies_to(self, channel: str) -> bool:
        """Does the rule apply to conversations of this channel kind?"""
        return not self.channels or channel in self.channels

    @property
    def max_deduction(self) -> float:
        """Cap on this rule's total deduction per conversation."""
        return self.cap if self.cap is not None else self.weight * 3


RULE_FIELDS = tuple(f.name for f in fields(Rule) if f.name != "source")


@dataclass
class RulePack:
    """An ordered set of rules plus pack settings."""

    rules: list[Rule]
    settings: dict = field(default_factory=lambda: dict(DEFAULT_SETTINGS))
    sources: list[str] = field(default_factory=list)
    _checks: dict = field(default_factory=dict, repr=False)
    segmenter: textview.Segmenter | None = field(default=None, repr=False)

    def enabled(self) -> list[Rule]:
        """Rules switched on, in pack order."""
        return [r for r in self.rules if r.enabled]

    def get(self, rule_id: str) -> Rule | None:
        """The rule with this id, or None."""
        return next((r for r in self.rules if r.id == rule_id), None)

    def check_for(self, rule: Rule) -> Check:
        """The compiled check object of a rule (compiled once)."""
        chk = self._checks.get(rule.id)
        if chk is None:
            from ..checks import CHECK_TYPES

            chk = self._checks[rule.id] = CHECK_TYPES[rule.check](rule)
            chk.configure(self.settings)
        return chk


def default_pack_path() -> Path:
    """Location of the bundled default pack."""
    return Path(str(resources.files("coach") / "rules" / "default.yaml"))


# PyYAML's most frequent complaints, in the words of the people who edit rule files.
_YAML_PROBLEMS = {
    "did not find expected node content": "缺少内容（列表或映射没有写完，或括号未闭合）",
    "mapping values are not allowed here": "这里不能出现“键: 值”（检查缩进，或给含冒号的文字加引号）",
    "could not find expected ':'": "缺少冒号",
    "did not find expected key": "缩进不一致，或缺少键",
    "did not find expected ',' or ']'": "列表缺少逗号或右方括号 ]",
    "did not find expected ',' or '}'": "映射缺少逗号或右花括号 }",
    "found character '\\t' that cannot start any token": "不能用制表符（Tab）缩进，请用空格",
    "found unexpected end of stream": "文件意外结束（引号或括号未闭合）",
    "found undefined alias": "引用了未定义的锚点（*别名）",
    "did not find expected '-' indicator": "缩进不一致（列表项应以“- ”开头并对齐）",
    "found a tab character": "不能用制表符（Tab）缩进，请用空格",
}


def _yaml_problem(exc) -> str:
    problem = str(getattr(exc, "problem", "") or exc)
    for key, text in _YAML_PROBLEMS.items():
        if problem.startswith(key):
            return f"{text}（{problem}）"
    return problem


def _read_yaml(path: Path) -> dict:
    """Aliases are counted as expanded, nesting and size bounded (kb.safeyaml); the
    team pack editor refuses anchors outright before it gets here (coach.rulebook)."""
    try:
        data = safeyaml.load(path.read_text(encoding="utf-8-sig"), aliases=True)
    except OSError as exc:
        raise RuleError([f"{path}: 无法读取: {exc.strerror or exc}"]) from None
    except safeyaml.YamlRefused as exc:
        raise RuleError([f"{path}: {exc}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise RuleError([f"{where}: YAML 语法错误: {_yaml_problem(exc)}"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RuleError([f"{path}: 顶层应为映射（settings / rules / disable）"])
    return data


def _validate(rule: dict, where: str, problems: list[str], partial: bool = False) -> None:
    rid = rule.get("id", "?")
    at = f"{where}: 规则 {rid}"
    allowed = set(RULE_FIELDS) | (set(PATCH_EXTRA) if partial else set())
    for key in rule:
        if key not in allowed:
            problems.append(f"{at}: 未知字段 {key}")
    if not partial:
        manual = rule.get("check") == MANUAL
        for key in REQUIRED:
            if key not in rule and not (manual and key == "examples"):
                problems.append(f"{at}: 缺少字段 {key}")

    def check(key, ok, msg):
        if key in rule and not ok(rule[key]):
            problems.append(f"{at}: 字段 {key} {msg}")

    def is_num(v):
        return isinstance(v, int | float) and not isinstance(v, bool) and v >= 0

    check("id", lambda v: isinstance(v, str) and v.strip(), "应为非空字符串")
    check("category", lambda v: v in CATEGORIES, f"应为 {' / '.join(CATEGORIES)} 之一")
    check("level", lambda v: v in LEVELS, f"应为 {' / '.join(LEVELS)} 之一")
    check("weight", is_num, "应为非负数")
    check("cap", lambda v: v is None or is_num(v), "应为非负数")
    check("scope", lambda v: v in SCOPES, f"应为 {' / '.join(SCOPES)} 之一")
    for key in ("message", "suggestion"):
        check(key, lambda v: isinstance(v, str) and v.strip(), "应为非空字符串")
    check("script", lambda v: v is None or isinstance(v, str), "应为字符串")
    check("norm", lambda v: v is None or (isinstance(v, str) and v.strip()), "应为规范文章的 id")
    check(
        "channels",
        lambda v: isinstance(v, list) and all(c in CHANNELS for c in v),
        f"应为 {' / '.join(CHANNELS)} 的列表",
    )
    check("enabled", lambda v: isinstance(v, bool), "应为 true/false")
    check("params", lambda v: isinstance(v, dict), "应为映射")
    for key in ("words", "exceptions", "add_words", "remove_words"):
        check(key, lambda v: isinstance(v, list), "应为列表")
    for key in ("exceptions", "add_exceptions", "remove_exceptions"):
        check(
            key,
            lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
            "应为字符串列表",
        )
    for key in ("examples", "add_examples"):
        if key in rule:
            ex = rule[key]
            if not isinstance(ex, dict) or set(ex) - {"must", "must_not"}:
                problems.append(f"{at}: 字段 {key} 应为含 must / must_not 的映射")
                continue
            for kind in ("must", "must_not"):
                items = ex.get(kind)
                if rule.get("check") == MANUAL and not items:
                    continue  # a norm text cannot show has nothing to fire on
                if key == "examples" and (not isinstance(items, list) or not items):
                    problems.append(
                        f"{at}: 字段 {key}.{kind} 应为非空列表（每条规则都要有正反示例）"
                    )
                elif items is not None and not all(
                    isinstance(x, str)
                    or (isinstance(x, list) and x and all(isinstance(y, str) for y in x))
                    for x in items
                ):
                    problems.append(f"{at}: 字段 {key}.{kind} 的每项应为字符串或字符串列表")


def _entry_key(entry) -> str:
    return entry.get("word", entry.get("phrase", "")) if isinstance(entry, dict) else str(entry)


def _patch(rule: Rule, patch: dict) -> Rule:
    changes = {k: v for k, v in patch.items() if k in RULE_FIELDS and k != "id"}
    if isinstance(changes.get("params"), dict):  # a team sets one param, keeps the others
        changes["params"] = {**rule.params, **changes["params"]}
    new = replace(rule, **changes)
    new.words = list(changes.get("words", rule.words))
    removed = {normalize(w) for w in patch.get("remove_words", []) if isinstance(w, str)}
    if removed:
        new.words = [w for w in new.words if normalize(_entry_key(w)) not in removed]
    new.words += patch.get("add_words", [])
    new.exceptions = [e for e in new.exceptions if e not in patch.get("remove_exceptions", [])]
    new.exceptions += patch.get("add_exceptions", [])
    must = list(new.examples.get("must", []))
    if removed:  # an example that exists to show a removed word goes with it
        must = [m for m in must if not any(w in normalize(_example_text(m)) for w in removed)]
    must_not = list(new.examples.get("must_not", []))
    extra = patch.get("add_examples") or {}
    new.examples = {
        "must": must + extra.get("must", []),
        "must_not": must_not + extra.get("must_not", []),
    }
    return new


def _example_text(example) -> str:
    return example if isinstance(example, str) else " ".join(example)


TOP_LEVEL = ("version", "settings", "definitions", "rules", "disable", "enable")


def _top_level(data: dict, path: Path, problems: list[str], allowed: frozenset[str]) -> None:
    unknown = set(data) - allowed
    if unknown:
        names = ", ".join(sorted(map(str, unknown)))
        usable = " / ".join(k for k in TOP_LEVEL if k in allowed)
        problems.append(f"{path}: 未知的键 {names}（可用：{usable}）")
    if data.get("version", 1) != 1:
        problems.append(f"{path}: version 应为 1")
    if not isinstance(data.get("definitions") or {}, dict):  # anchored word lists
        problems.append(f"{path}: definitions 应为映射")
    if not isinstance(data.get("rules") or [], list):
        problems.append(f"{path}: rules 应为列表")


def _settings(data: dict, path: Path, problems: list[str]) -> dict:
    settings = data.get("settings") or {}
    if not isinstance(settings, dict):
        problems.append(f"{path}: settings 应为映射")
        return {}
    for key in settings:
        if key not in DEFAULT_SETTINGS:
            problems.append(
                f"{path}: 未知的键 settings.{key}（可用：{' / '.join(DEFAULT_SETTINGS)}）"
            )
            return {}
    cap = settings.get("fatal_cap", 0)
    if not isinstance(cap, int | float) or isinstance(cap, bool) or not 0 <= cap <= 100:
        problems.append(f"{path}: settings.fatal_cap 应为 0–100 的数")
        return {}
    contacts = settings.get("official_contacts", [])
    if not isinstance(contacts, list) or not all(
        isinstance(c, str | int) and not isinstance(c, bool) and str(c).strip() for c in contacts
    ):
        problems.append(f"{path}: settings.official_contacts 应为号码、邮箱或 @域名 的列表")
        return {}
    return settings


def _build(pack: dict, where: str, problems: list[str]) -> list[Rule]:
    rules = []
    seen = set()
    raws = pack.get("rules") or []
    for n, raw in enumerate(raws if isinstance(raws, list) else []):
        if not isinstance(raw, dict):
            problems.append(f"{where}: 第{n + 1}条规则应为映射")
            continue
        before = len(problems)
        _validate(raw, where, problems)
        if len(problems) > before:
            continue
        if raw["id"] in seen:
            problems.append(f"{where}: 规则 {raw['id']}: id 重复")
            continue
        seen.add(raw["id"])
        rules.append(Rule(**{"examples": {}, **raw}, source=where))
    return rules


def load_rules(
    overlay_paths: list[str | Path] | tuple = (),
    *,
    base: str | Path | None = None,
    verify: bool = True,
) -> RulePack:
    """Load the default (or `base`) pack, apply overlays in order, verify examples."""
    base_path = Path(base) if base else default_pack_path()
    problems: list[str] = []
    data = _read_yaml(base_path)
    settings = dict(DEFAULT_SETTINGS)
    _top_level(data, base_path, problems, frozenset(TOP_LEVEL) - {"disable", "enable"})
    settings.update(_settings(data, base_path, problems))
    rules = _build(data, str(base_path), problems)
    for path in overlay_paths:
        path = Path(path)
        over = _read_yaml(path)
        _top_level(over, path, problems, frozenset(TOP_LEVEL))
        settings.update(_settings(over, path, problems))
        by_id = {r.id: n for n, r in enumerate(rules)}
        raws = over.get("rules") or []
        for n, raw in enumerate(raws if isinstance(raws, list) else []):
            if not isinstance(raw, dict) or "id" not in raw:
                problems.append(f"{path}: 第{n + 1}条规则应为含 id 的映射")
                continue
            if raw["id"] in by_id:
                before = len(problems)
                _validate(raw, str(path), problems, partial=True)
                if len(problems) == before:
                    idx = by_id[raw["id"]]
                    rules[idx] = _patch(rules[idx], raw)
                    rules[idx].source = f"{rules[idx].source} + {path}"
            elif _looks_like_patch(raw):
                problems.append(_unknown_rule(path, raw["id"], by_id))
            else:
                rules.extend(_build({"rules": [raw]}, str(path), problems))
                by_id = {r.id: k for k, r in enumerate(rules)}
        for key, flag in (("disable", False), ("enable", True)):
            ids = over.get(key) or []
            if not isinstance(ids, list):
                problems.append(f"{path}: {key} 应为规则 id 的列表")
                continue
            for rid in ids:
                if not isinstance(rid, str) or rid not in by_id:
                    hint = _did_you_mean(rid, by_id) if isinstance(rid, str) else ""
                    problems.append(f"{path}: {key} 中的规则 {rid} 不存在{hint}")
                else:
                    rules[by_id[rid]].enabled = flag
    if problems:
        raise RuleError(problems)
    pack = RulePack(rules, settings, [str(base_path), *map(str, overlay_paths)])
    _compile(pack, problems)
    if problems:
        raise RuleError(problems)
    if verify:
        verify_examples(pack)
    return pack


def _looks_like_patch(raw: dict) -> bool:
    """An overlay entry meant to change an existing rule, not to define a new one: it
    has no check type, or it uses a patch-only key (add_words …)."""
    return "check" not in raw or any(key in raw for key in PATCH_EXTRA)


def _did_you_mean(rid: str, known) -> str:
    """A hint naming the closest known rule id (（是否想用 x？）), or ""."""
    close = difflib.get_close_matches(str(rid), [str(k) for k in known], n=1, cutoff=0.6)
    return f"（是否想用 {close[0]}？）" if close else ""


def _id_line(path: Path, rid: str) -> int | None:
    """The 1-based line of `id: <rid>` in an overlay file, or None (no regex over the
    file: each line is split once)."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for n, line in enumerate(lines, 1):
        item = line.strip().removeprefix("-").strip()
        key, sep, value = item.partition(":")
        if sep and key.strip() == "id" and value.strip().strip("\"'") == rid:
            return n
    return None


def _unknown_rule(path: Path, rid, known) -> str:
    """One problem for an overlay entry whose id is no rule of the pack (a misspelt id
    would otherwise read as a new rule missing six fields)."""
    line = _id_line(path, str(rid))
    where = f"{path}:{line}" if line else str(path)
    hint = _did_you_mean(rid, known) or (
        "：默认规则包中没有这个 id（新增团队规则须写全 category、level、weight、check、"
        "message、suggestion、examples 字段）"
    )
    return f"{where}: 未知规则「{rid}」{hint}"


def _compile(pack: RulePack, problems: list[str]) -> None:
    from ..checks import CHECK_TYPES

    words: set[str] = set()
    for rule in pack.rules:
        if rule.check not in CHECK_TYPES:
            problems.append(
                f"{rule.source}: 规则 {rule.id}: 字段 check 应为 {' / '.join(CHECK_TYPES)} 之一"
            )
            continue
        try:
            words |= pack.check_for(rule).vocabulary()
        except PatternTooComplex as exc:
            entry = exc.entry
            if isinstance(entry, dict):
                entry = entry.get("word", entry.get("phrase", entry))
            what = f"词条「{entry}」" if entry is not None else "词条列表"
            problems.append(f"{rule.source}: 规则 {rule.id} 的{what}{exc}")
        except PatternError as exc:
            problems.append(f"{rule.source}: 规则 {rule.id}: 字段 words/params 词条错误: {exc}")
        except (ValueError, TypeError) as exc:
            problems.append(f"{rule.source}: 规则 {rule.id}: 字段 params 错误: {exc}")
    freq = get_tokenizer().FREQ
    # ASCII words are left out: jieba keeps letter runs whole unless taught a shorter
    # word, and teaching it "sb" would split "usb" into "u" + "sb".
    new = frozenset(
        w for w in words if len(w) > 1 and not w.isascii() and " " not in w and not freq.get(w)
    )
    # the coach's own segmenter: search's tokenizer is never taught these words
    pack.segmenter = textview.segmenter_for(new)


def verify_examples(pack: RulePack) -> None:
    """Run every enabled rule on its own examples; raise RuleError on any failure."""
    from ..checker import example_conversation, run_rule

    problems = []
    for rule in pack.enabled():
        for kind in ("must", "must_not"):
            for example in (rule.examples or {}).get(kind) or []:
                try:
                    conv = example_conversation(example)
                    if rule.channels:  # a phone rule's examples are phone calls
                        conv.channel = rule.channels[0]
                except ValueError as exc:
                    problems.append(
                        f"{rule.source}: 规则 {rule.id}: 示例 {example!r} 无法解析: {exc}"
                    )
                    continue
                hits, _ = run_rule(pack, rule, conv)
                if kind == "must" and not hits:
                    problems.append(
                        f"{rule.source}: 规则 {rule.id}: 示例应命中但未命中: {example!r}"
                    )
                elif kind == "must_not" and hits:
                    h = hits[0]
                    got = conv.turns[h.turn].text[h.start : h.end]
                    problems.append(
                        f"{rule.source}: 规则 {rule.id}: 示例不应命中却命中了「{got}」: {example!r}"
                    )
    if problems:
        raise RuleError(problems)
