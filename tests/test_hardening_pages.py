"""Issue 10, items 3 and 5: YAML people supply is refused when it uses anchors,
nests too deep or holds too much; every list a page shows is paged in SQL, so a
page stays small whatever was uploaded."""

from __future__ import annotations

import time

import pytest

from coach.rulebook import RuleBook
from coach.rules import RuleError
from kb import safeyaml
from kb.articles import parse_article
from kb.errors import ValidationError
from scripts_lib.loader import read_file

# billion laughs: 9 levels of 9 aliases each stand for 9**9 (387 million) strings
BOMB = "definitions:\n  a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"  {c}: &{c} [{','.join([f'*{p}'] * 9)}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)
SAFE_PACK = "disable: [filler-bare]\n"


# -- YAML ----------------------------------------------------------------------------


def test_the_anchor_bomb_is_refused_at_save_and_later_saves_stay_fast(kb, instance):
    assert len(BOMB) < 600
    book = RuleBook(kb.store, instance)
    with pytest.raises(RuleError) as bad:
        book.save(BOMB, by="lead")
    assert bad.value.problems == ["团队规则: 第 2 行：不支持 YAML 锚点/别名（&/*）"]
    assert book.version() == 0
    # a bomb saved before this fix (written straight to the table) is never expanded
    with kb.store.db.conn:
        kb.store.db["rule_packs"].insert({"yaml": BOMB, "by": "old", "at": "", "note": ""})
    start = time.monotonic()
    assert not book.unchanged(SAFE_PACK)
    assert book.save(SAFE_PACK, by="lead") == 2
    assert book.unchanged("# 注释不算改动\ndisable:   [filler-bare]\n")
    assert time.monotonic() - start < 2  # was 7–9 s per save, 9x more per level
    with pytest.raises(RuleError) as old:  # the old version names its problem, no hang
        book.pack(1)
    assert "不支持 YAML 锚点/别名" in str(old.value)


def test_team_pack_keys_are_all_validated(kb, instance):
    book = RuleBook(kb.store, instance)
    cases = {
        "definitions:\n  words: [a, b]\n": "未知的键 definitions",
        "colour: red\n": "未知的键 colour",
        "settings: {fatal_cap: 40, speed: 3}\n": "未知的键 settings.speed",
        "version: 2\n": "version 应为 1",
        "disable: [[filler-bare]]\n": "disable 中的规则",
        "x: &a 1\n": "第 1 行：不支持 YAML 锚点/别名（&/*）",
        "rules: " + "[" * 60 + "]" * 60 + "\n": "嵌套过深",
    }
    for text, expected in cases.items():
        with pytest.raises(RuleError) as bad:
            book.save(text, by="lead")
        assert any(expected in p for p in bad.value.problems), (text, bad.value.problems)
    assert book.version() == 0
    assert book.save("version: 1\nsettings: {fatal_cap: 30}\n", by="lead") == 1


def test_the_bundled_pack_may_use_aliases_but_their_expansion_is_counted():
    data = safeyaml.load("a: &a [x, y]\nb: [*a, *a]\n", aliases=True)
    assert data == {"a": ["x", "y"], "b": [["x", "y"], ["x", "y"]]}
    with pytest.raises(safeyaml.YamlRefused) as bad:
        safeyaml.load(BOMB, aliases=True, source="pack.yaml")
    assert str(bad.value).startswith("pack.yaml 第 7 行：内容过多")
    with pytest.raises(safeyaml.YamlRefused):
        safeyaml.load("n: " + "9" * 5000)  # an int too long to convert: no ValueError


def test_script_overlays_and_article_front_matter_refuse_anchors(tmp_path):
    overlay = tmp_path / "greeting.yaml"
    overlay.write_text(
        "scenario: greeting\ntitle: 问候\nscripts:\n  - &s {id: hi, title: 问候, text: 您好,"
        " shortcut: /hi, channels: [online]}\n  - *s\n",
        encoding="utf-8",
    )
    result = read_file(overlay, origin="team")
    assert not result.scripts
    assert [(e.line, e.message) for e in result.errors] == [
        (4, "YAML 格式错误：不支持 YAML 锚点/别名（&/*）")
    ]
    with pytest.raises(ValidationError) as bad:
        parse_article("---\nid: &x a1\ntitle: *x\ncategory: c\n---\n正文\n", path="a.md")
    assert bad.value.line == 2 and "不支持 YAML 锚点/别名" in str(bad.value)
    deep = "---\nid: a1\ntitle: t\ncategory: c\ntags: " + "[" * 100 + "]" * 100 + "\n---\nx\n"
    with pytest.raises(ValidationError) as bad:
        parse_article(deep, path="a.md")
    assert "嵌套过深" in str(bad.value)


def test_the_rules_page_shows_the_refusal(app, users):
    from .conftest import signed_in

    sup = signed_in(app, users["supervisor"])
    resp = sup.post("/rules", data={"yaml": BOMB})
    assert resp.status_code == 400
    assert "第 2 行：不支持 YAML 锚点/别名（&amp;/*）" in resp.get_data(as_text=True)
