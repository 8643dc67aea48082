"""Rule pack: every rule's own examples (golden), validation, overlays."""

from __future__ import annotations

import pytest

from coach.checker import Checker, example_conversation, run_rule
from coach.rules import CATEGORIES, LEVELS, RuleError, default_pack_path, load_rules

PACK = load_rules()
EXAMPLES = [
    pytest.param(rule.id, kind, ex, id=f"{rule.id}-{kind}-{n}")
    for rule in PACK.rules
    for kind in ("must", "must_not")
    for n, ex in enumerate(rule.examples.get(kind) or [])
]


@pytest.mark.parametrize(("rule_id", "kind", "example"), EXAMPLES)
def test_rule_examples(rule_id, kind, example):
    rule = PACK.get(rule_id)
    conv = example_conversation(example)
    conv.channel = rule.channels[0] if rule.channels else ""  # a phone rule's examples are calls
    findings = Checker(PACK).check_conversation(conv).findings
    fired = [f for f in findings if f["rule"] == rule_id]
    if kind == "must":
        assert fired, f"{rule_id} should fire on {example!r}"
    else:
        assert not fired, f"{rule_id} should not fire on {example!r}: {fired}"
    hits, _ = run_rule(PACK, rule, conv)
    assert bool(hits) == (kind == "must")


def test_every_rule_has_both_kinds_of_example_and_chinese_text():
    for rule in PACK.rules:
        if rule.check == "manual":  # a norm text cannot show: listed as not checkable
            assert not rule.examples and rule.params["reason"], rule.id
        else:
            assert rule.examples["must"] and rule.examples["must_not"], rule.id
        assert rule.category in CATEGORIES and rule.level in LEVELS
        assert any("\u4e00" <= ch <= "\u9fff" for ch in rule.message), rule.id
        assert any("\u4e00" <= ch <= "\u9fff" for ch in rule.suggestion), rule.id


def test_pack_covers_every_labelled_category():
    cats = {r.category for r in PACK.rules}
    for cat in (
        "filler",
        "filler_opener",
        "vague",
        "improper",
        "wait_no_apology",
        "no_greeting",
        "no_closing",
        "slow_greeting",
        "slow_reply",
        "vulgar",
    ):
        assert cat in cats


def _pack(tmp_path, body: str):
    path = tmp_path / "pack.yaml"
    path.write_text(body, encoding="utf-8")
    return path


RULE = """
rules:
  - id: team-hedge
    category: vague
    level: warning
    weight: 2
    check: token
    words: [差不多]
    message: 模糊
    suggestion: 请明确
    examples:
      must: [差不多明天到]
      must_not: [{must_not}]
"""


def test_pack_with_failing_example_refuses_to_load(tmp_path):
    path = _pack(tmp_path, RULE.format(must_not="这个差不多"))
    with pytest.raises(RuleError) as err:
        load_rules(base=path)
    msg = str(err.value)
    assert "team-hedge" in msg and "这个差不多" in msg and "不应命中" in msg


def test_pack_with_passing_examples_loads(tmp_path):
    pack = load_rules(base=_pack(tmp_path, RULE.format(must_not="明天一定到")))
    assert [r.id for r in pack.rules] == ["team-hedge"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("rules:\n  - id: x\n    category: nope\n", ["规则 x", "category", "缺少字段 check"]),
        ("rules: [\n", ["YAML 语法错误"]),
        ("- just a list\n", ["顶层应为映射"]),
        (RULE.format(must_not="明天到").replace("weight: 2", "weight: -1"), ["weight", "非负数"]),
        (RULE.format(must_not="明天到").replace("check: token", "check: magic"), ["check"]),
        (RULE.format(must_not="明天到").replace("      must_not: [明天到]\n", ""), ["must_not"]),
        (
            RULE.format(must_not="明天到").replace(
                "words: [差不多]", "words: [{word: 差不多, nxt: [是]}]"
            ),
            ["words", "nxt"],
        ),
    ],
)
def test_invalid_packs_name_file_rule_and_field(tmp_path, body, expected):
    path = _pack(tmp_path, body)
    with pytest.raises(RuleError) as err:
        load_rules(base=path)
    msg = str(err.value)
    assert str(path) in msg
    for part in expected:
        assert part in msg


def _overlay(tmp_path, body: str):
    path = tmp_path / "team.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def test_overlay_disables_reweights_and_adds_words(tmp_path):
    over = _overlay(
        tmp_path,
        """
disable: [filler-opener]
rules:
  - id: vague-hedge
    weight: 1
    level: info
    add_words: [大致上, 八九不离十]
    add_examples: {must: [八九不离十明天到]}
""",
    )
    pack = load_rules([over])
    assert not pack.get("filler-opener").enabled
    rule = pack.get("vague-hedge")
    assert (rule.weight, rule.level) == (1, "info")
    checker = Checker(pack)
    found = checker.check_reply("八九不离十明天到")
    assert [(f["rule"], f["match"], f["level"]) for f in found if f["category"] == "vague"] == [
        ("vague-hedge", "八九不离十", "info")
    ]
    assert not [f for f in checker.check_reply("嗯嗯，好的呢") if f["rule"] == "filler-opener"]
    # the default pack is untouched
    assert load_rules().get("vague-hedge").weight != 1


def test_overlay_removes_words_and_their_examples(tmp_path):
    over = _overlay(tmp_path, "rules:\n  - id: vague-hedge\n    remove_words: [估计, 大概]\n")
    checker = Checker(load_rules([over]))
    assert not [f for f in checker.check_reply("估计明天能到") if f["category"] == "vague"]
    assert [
        f["match"] for f in checker.check_reply("好像明天能到") if f["category"] == "vague"
    ] == ["好像"]


def test_overlay_adds_a_new_rule(tmp_path):
    over = _overlay(
        tmp_path,
        """
rules:
  - id: team-no-jargon
    category: improper
    level: error
    weight: 5
    check: token
    words: [亲们]
    message: 团队规范不允许称呼“亲们”
    suggestion: 称呼“您”
    examples: {must: [亲们好], must_not: [您好]}
""",
    )
    found = Checker(load_rules([over])).check_reply("亲们，这个有货")
    assert [f["rule"] for f in found if f["rule"] == "team-no-jargon"] == ["team-no-jargon"]


def test_overlay_errors_are_clear(tmp_path):
    over = _overlay(
        tmp_path, "disable: [no-such-rule]\nrules:\n  - id: vague-hedge\n    colour: red\n"
    )
    with pytest.raises(RuleError) as err:
        load_rules([over])
    msg = str(err.value)
    assert "no-such-rule" in msg and "colour" in msg and str(over) in msg


def test_overlay_that_breaks_an_example_refuses_to_load(tmp_path):
    over = _overlay(
        tmp_path, "rules:\n  - id: vague-hedge\n    add_examples: {must_not: [差不多就是这个价]}\n"
    )
    with pytest.raises(RuleError, match="vague-hedge"):
        load_rules([over])


def test_default_pack_file_is_packaged():
    assert default_pack_path().name == "default.yaml"
    assert default_pack_path().exists()


def test_overlay_settings_and_list_types_are_validated(tmp_path):
    over = _overlay(tmp_path, "settings: {fatal_cap: lots}\ndisable: vague-hedge\n")
    with pytest.raises(RuleError) as err:
        load_rules([over])
    assert "fatal_cap" in str(err.value) and "disable" in str(err.value)


def test_rule_script_names_the_standard_script_in_findings(tmp_path):
    from scripts_lib.usage import default_library

    chosen = default_library().by_scenario("hold")[-1]
    over = _overlay(tmp_path, f"rules:\n  - id: wait-no-apology\n    script: {chosen.id}\n")
    found = Checker(load_rules([over])).check_reply("请稍等")
    hold = next(f for f in found if f["rule"] == "wait-no-apology")
    assert hold["script"]["script_id"] == chosen.id and hold["script"]["text"]


def test_fatal_cap_setting(tmp_path):
    over = _overlay(tmp_path, "settings: {fatal_cap: 20}\n")
    pack = load_rules([over])
    conv = example_conversation(["客户: 在吗", "客服: 您好 滚", "客户: ?", "客服: 再见"])
    assert Checker(pack).check_conversation(conv).score == 20


# -- the team rule book (versions kept in the database) ---------------------------------

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

# a fresh process: open the database, then save a version or report the current one
BOOK_PROCESS = """
import json, sys
from coach.rulebook import RuleBook
from kb.store import Store
from storage import Database
url, folder, action = sys.argv[1:4]
book = RuleBook(Store(Database.open(url)), folder)
if action == "save":
    print(book.save(sys.argv[4], by="lead", note="from another process"))
else:
    version = book.version()
    pack = book.pack()
    print(json.dumps({"version": version, "by": book.current()["by"],
                      "filler": pack.get("filler-bare").enabled,
                      "hedge": pack.get("vague-hedge").enabled}))
"""


def book_process(url: str, folder, *args: str) -> str:
    import subprocess
    import sys

    from .conftest import REPO

    cmd = [sys.executable, "-c", BOOK_PROCESS, url, str(folder), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def book_db(tmp_path, database_url):
    from storage import Database
    from storage.database import sqlite_url

    db = Database(database_url or sqlite_url(tmp_path / "node-a"))
    yield db
    db.dispose()


def book(db, folder):
    from coach.rulebook import RuleBook
    from kb.store import Store

    return RuleBook(Store(db), folder)


@BOTH
def test_rule_book_versions_history_and_current(book_db, tmp_path):
    rules = book(book_db, tmp_path / "node-a")
    assert rules.version() == 0 and rules.current() is None and rules.history() == []
    assert rules.unchanged("# 只有注释\n")  # no version: an empty overlay
    with pytest.raises(RuleError):
        rules.save("disable: [no-such-rule]\n", by="lead")
    assert rules.version_count() == 0
    v1 = rules.save("disable: [filler-bare]\n", by="lead", note="第一版" + "长" * 300)
    v2 = rules.save("disable: [vague-hedge]\n", by="boss")
    assert (v1, v2) == (1, 2) and rules.version() == 2 and rules.version_count() == 2
    assert rules.current()["by"] == "boss" and rules.get(1)["yaml"] == "disable: [filler-bare]\n"
    assert rules.get(3) is None and rules.path_for(3) is None
    history = rules.history()
    assert [(h["id"], h["by"], h["size"]) for h in history] == [(2, "boss", 23), (1, "lead", 23)]
    assert history[1]["note"] == ("第一版" + "长" * 300)[:200]
    assert [h["id"] for h in rules.history(1, 1)] == [1]
    assert rules.unchanged("disable:   [vague-hedge]  # 同一版\n")
    assert not rules.pack().get("vague-hedge").enabled and rules.pack().get("filler-bare").enabled


@BOTH
def test_a_version_saved_by_one_process_is_what_a_fresh_process_loads(
    book_db, tmp_path, database_url
):
    """Versions live in the database, never in one process's memory or folder: a save
    by one process (node A) is what another, freshly started process loads (node B; on
    PostgreSQL a node with its own instance folder)."""
    url = book_db.url
    node_a = tmp_path / "node-a"
    node_b = node_a if database_url is None else tmp_path / "node-b"
    here = book(book_db, node_a)
    assert here.version() == 0
    assert book_process(url, node_a, "save", "disable: [filler-bare]\n").strip() == "1"
    # this process, which was open all along, sees the new version at once
    assert here.version() == 1 and not here.pack().get("filler-bare").enabled
    # a stale file under the same number (another database's v2, say) loses to the row
    here.folder.mkdir(parents=True, exist_ok=True)
    (node_b / "rules").mkdir(parents=True, exist_ok=True)
    (node_b / "rules" / "team-v2.yaml").write_text("disable: [filler-bare]\n", "utf-8")
    assert here.save("disable: [vague-hedge]\n", by="boss") == 2
    seen = book_process(url, node_b, "load")
    import json

    assert json.loads(seen) == {"version": 2, "by": "boss", "filler": True, "hedge": False}
    assert (node_b / "rules" / "team-v2.yaml").read_text("utf-8") == "disable: [vague-hedge]\n"
