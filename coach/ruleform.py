"""The team rule pack as a form: one row per rule (on/off, level, weight, cap, words
added or removed), read from an overlay and written back into one.

`rows` gives the values a form shows, `parse_form` checks what came back (Chinese
messages keyed by field, shown next to it) and `write_overlay` turns the values into
the overlay YAML that `RuleBook.save` stores like any hand-written version.  Only what
the form covers is rewritten: settings, new team rules' other fields, word entries
with options (`{word: …, next: […]}`), exceptions and examples are kept as they were.
A rule set back to its default value loses its key, so an untouched rule leaves no
trace in the overlay.  Comments of the YAML are not kept (the page says so).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import yaml

from kb import safeyaml
from kb.textproc import normalize

from .limits import MAX_ENTRIES, MAX_WORD_CHARS
from .rules import LEVELS, Rule, RulePack

LEVEL_NAMES = {"info": "提示", "warning": "警告", "error": "错误", "fatal": "严重"}
MAX_WEIGHT = 100
HEADER = "# 团队规则覆盖层（由规则表单生成；表单保存时不保留注释）\n"


def _overlay(text: str) -> dict:
    """The overlay's data, {} when it is empty or cannot be read (the page then shows
    the load problems; the form starts from the default values)."""
    try:
        data = safeyaml.load(text or "")
    except (yaml.YAMLError, safeyaml.YamlRefused):
        return {}
    return data if isinstance(data, dict) else {}


def _entries(data: dict) -> dict[str, dict]:
    """The overlay's rule entries by id (the first one of an id)."""
    found: dict[str, dict] = {}
    for entry in data.get("rules") or []:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            found.setdefault(entry["id"], entry)
    return found


def _plain(words) -> list[str]:
    return [w for w in words or [] if isinstance(w, str)]


def _advanced(words) -> list:
    return [w for w in words or [] if not isinstance(w, str)]


def _word_key(entry) -> str:
    if isinstance(entry, dict):
        return str(entry.get("word", entry.get("phrase", "")))
    return str(entry)


def rows(text: str, pack: RulePack, default: RulePack) -> list[dict]:
    """The form's values for every rule of `pack` (the pack of overlay `text` on the
    `default` pack), in pack order."""
    entries = _entries(_overlay(text))
    defaults = {r.id: r for r in default.rules}
    out = []
    for rule in pack.rules:
        entry = entries.get(rule.id, {})
        team = rule.id not in defaults
        words = entry.get("words") if team else entry.get("add_words")
        base = rule if team else defaults[rule.id]
        out.append(
            {
                "id": rule.id,
                "category": rule.category,
                "message": rule.message,
                "team": team,
                "has_words": bool(base.words) or rule.check == "token",
                "enabled": rule.enabled,
                "level": rule.level,
                "weight": rule.weight,
                "cap": rule.cap,
                "add": _plain(words),
                "remove": [] if team else _plain(entry.get("remove_words")),
                "advanced": len(_advanced(words)),
            }
        )
        out[-1]["was"] = signature(out[-1])
    return out


def signature(values: dict) -> str:
    """The form values of one rule as a string: a row posted with the signature it was
    shown with is untouched, and leaves the overlay as it is (so saving the form on a
    newer version after a conflict changes only the rows that were edited)."""
    keys = ("enabled", "level", "weight", "cap", "add", "remove")
    return json.dumps([values[k] for k in keys], ensure_ascii=False)


def _number(raw: str) -> float | int | None:
    raw = (raw or "").strip()
    try:
        value = float(raw)
    except ValueError:
        return None
    if value != value or not 0 <= value <= MAX_WEIGHT:  # NaN, or out of range
        return None
    return int(value) if value.is_integer() else value


def _lines(raw: str) -> list[str]:
    seen: list[str] = []
    for line in (raw or "").splitlines():
        word = line.strip()
        if word and word not in seen:
            seen.append(word)
    return seen


def parse_form(
    form: Mapping[str, str], pack: RulePack, default: RulePack
) -> tuple[dict[str, dict], dict[str, str]]:
    """The values of the rules the form sent and changed (`rule` fields name them, a
    `<id>.was` field the values they were shown with; an id the pack does not have
    is ignored) and the problems, keyed `<id>.<field>`."""
    getlist = getattr(form, "getlist", None)
    ids = getlist("rule") if getlist else list(form.get("rule") or [])
    known = {r.id: r for r in pack.rules}
    defaults = {r.id: r for r in default.rules}
    values: dict[str, dict] = {}
    errors: dict[str, str] = {}
    for rid in ids:
        rule = known.get(rid)
        if rule is None or rid in values:
            continue
        v = {"enabled": form.get(f"{rid}.on") == "1"}
        level = form.get(f"{rid}.level", rule.level)
        if level not in LEVELS:
            errors[f"{rid}.level"] = f"级别应为 {' / '.join(LEVEL_NAMES.values())} 之一"
        v["level"] = level
        weight = _number(form.get(f"{rid}.weight", str(rule.weight)))
        if weight is None:
            errors[f"{rid}.weight"] = f"每次扣分应为 0–{MAX_WEIGHT} 的数"
        v["weight"] = weight
        raw_cap = (form.get(f"{rid}.cap") or "").strip()
        cap = _number(raw_cap) if raw_cap else None
        if raw_cap and cap is None:
            errors[f"{rid}.cap"] = f"每会话上限应为 0–{MAX_WEIGHT} 的数（留空：每次扣分×3）"
        v["cap"] = cap
        v["add"] = _lines(form.get(f"{rid}.add", ""))
        v["remove"] = _lines(form.get(f"{rid}.remove", ""))
        for key in ("add", "remove"):
            long = [w for w in v[key] if len(w) > MAX_WORD_CHARS]
            if long:
                errors[f"{rid}.{key}"] = (
                    f"词语「{long[0][:40]}」过长（每个最多 {MAX_WORD_CHARS} 个字）"
                )
            elif len(v[key]) > MAX_ENTRIES:
                errors[f"{rid}.{key}"] = f"词语过多（最多 {MAX_ENTRIES} 个，每行一个）"
        base = defaults.get(rid)
        if base is not None and v["remove"] and f"{rid}.remove" not in errors:
            have = {normalize(_word_key(w)) for w in base.words}
            missing = [w for w in v["remove"] if normalize(w) not in have]
            if missing:
                errors[f"{rid}.remove"] = f"「{missing[0]}」不在本规则的默认词表中，无法去掉"
        elif base is None and v["remove"]:
            errors[f"{rid}.remove"] = "团队新增的规则请直接在“增加的词语”中删改"
        if form.get(f"{rid}.was") != signature(v):
            values[rid] = v
    return values, errors


def _set(entry: dict, key: str, value, default) -> None:
    if value == default:
        entry.pop(key, None)
    else:
        entry[key] = value


def _toggle(data: dict, rid: str, enabled: bool, default: bool) -> None:
    """Switch a default rule on or off through the overlay's disable / enable lists."""
    for key in ("disable", "enable"):
        ids = data.get(key)
        if isinstance(ids, list) and rid in ids:
            data[key] = [x for x in ids if x != rid]
    if enabled != default:
        key = "enable" if enabled else "disable"
        ids = data.get(key)
        data[key] = [*(ids if isinstance(ids, list) else []), rid]


def _patch(entry: dict, v: dict, base: Rule) -> None:
    entry.pop("enabled", None)  # switched through disable / enable
    for key in ("level", "weight", "cap"):
        _set(entry, key, v[key], getattr(base, key))
    add = _advanced(entry.get("add_words")) + v["add"]
    _set(entry, "add_words", add, [])
    _set(entry, "remove_words", v["remove"], [])


def _team(entry: dict, v: dict) -> None:
    entry["level"] = v["level"]
    entry["weight"] = v["weight"]
    _set(entry, "cap", v["cap"], None)
    _set(entry, "enabled", v["enabled"], True)
    if "words" in entry or v["add"]:
        entry["words"] = _advanced(entry.get("words")) + v["add"]


def write_overlay(text: str, values: dict[str, dict], default: RulePack) -> str:
    """The overlay `text` with the form's `values` applied (see `parse_form`), as YAML."""
    data = dict(_overlay(text))
    defaults = {r.id: r for r in default.rules}
    entries = [dict(e) if isinstance(e, dict) else e for e in data.get("rules") or []]
    by_id = {}
    for n, entry in enumerate(entries):
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            by_id.setdefault(entry["id"], n)
    for rid, v in values.items():
        base = defaults.get(rid)
        n = by_id.get(rid)
        if base is None:
            if n is None:
                continue  # a team rule is defined in the YAML first
            _team(entries[n], v)
            _toggle(data, rid, True, True)  # its switch is its own enabled field
            continue
        entry = entries[n] if n is not None else {"id": rid}
        _patch(entry, v, base)
        _toggle(data, rid, v["enabled"], base.enabled)
        if n is None:
            entries.append(entry)
            by_id[rid] = len(entries) - 1
    entries = [e for e in entries if not (isinstance(e, dict) and set(e) == {"id"})]
    data["rules"] = entries
    for key in ("rules", "disable", "enable"):
        if not data.get(key):
            data.pop(key, None)
    if not data:
        return HEADER
    return HEADER + yaml.safe_dump(
        data, allow_unicode=True, sort_keys=False, default_flow_style=None, width=100
    )
