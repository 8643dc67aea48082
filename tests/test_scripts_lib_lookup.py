"""Lookups of the standard scripts library: id, scenario, shortcut, search, replacing."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from scripts_lib import COACH_CATEGORIES, Library, ScriptNotFound, load_library


def write(dir_: Path, name: str, body: str) -> Path:
    """Write a data file with dedented YAML and return its path."""
    path = dir_ / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lib() -> Library:
    return load_library()


def test_get_and_not_found(lib):
    assert lib.get("hold-apology-1").scenario == "hold"
    with pytest.raises(ScriptNotFound) as info:
        lib.get("no-such-script")
    assert info.value.status == 404 and "no-such-script" in str(info.value)


@pytest.mark.parametrize("code", ["/dd", "dd", " /dd ", "/DD", "／ｄｄ"])
def test_by_shortcut_forms(lib, code):
    assert lib.by_shortcut(code).id == "hold-apology-1"


@pytest.mark.parametrize("code", ["/zzzzzz", "", "/"])
def test_by_shortcut_unknown(lib, code):
    assert lib.by_shortcut(code) is None


def test_search_shortcut_prefix_puts_exact_first(lib):
    hits = lib.search("/dd")
    assert hits[0].shortcut == "/dd"
    assert {s.shortcut for s in hits} >= {"/dd", "/ddcx", "/ddqr"}
    assert all(s.shortcut.startswith("/dd") for s in hits)


def test_search_chinese_substring_and_filters(lib):
    hits = lib.search("退款")
    assert hits and all("退款" in s.title + s.text + "".join(s.tags) for s in hits)
    assert hits[0].title.find("退款") >= 0, "title hits rank first"
    assert all(s.scenario == "notice_sms" for s in lib.search("退款", scenario="notice_sms"))
    assert all("phone" in s.channels for s in lib.search("", channel="phone"))
    assert lib.search("退款 短信")[0].id == "sms-refund-1", "every word must match"
    assert lib.search("不存在的词语") == []
    assert len(lib.search("")) == len(lib)


def test_scenarios_ordered_with_titles(lib):
    names = [s.name for s in lib.scenarios()]
    assert names[0] == "greeting" and names[-1] == "notice_qq"
    assert all(s.title for s in lib.scenarios())
    assert [sc.name for sc, _ in lib.grouped()] == names
    assert lib.by_scenario("no-such-scenario") == []


def test_replacing_ranks_exact_entry_then_position(tmp_path):
    write(
        tmp_path,
        "r.yaml",
        """\
        scenario: r
        title: 排序
        scripts:
          - id: later-entry
            title: 次选
            text: 您好。
            shortcut: /a
            channels: [online]
            replaces: [filler, vague]
          - id: first-entry
            title: 首选
            text: 预计今天发出。
            shortcut: /b
            channels: [online]
            replaces: [vague, 差不多, 不太清楚]
        """,
    )
    lib = load_library([tmp_path], builtin=False)
    assert lib.replacing("vague").id == "first-entry"
    assert [s.id for s in lib.replacing_all("vague")] == ["first-entry", "later-entry"]
    assert lib.replacing("filler").id == "later-entry"
    assert lib.replacing("差不多三天到").id == "first-entry", "phrase found among tokens"
    assert lib.replacing("我不太清楚呢").id == "first-entry"
    assert lib.replacing("improper") is None


@pytest.mark.parametrize("category", COACH_CATEGORIES)
def test_every_coach_category_has_a_standard_script(lib, category):
    script = lib.replacing(category)
    assert script is not None and category in script.replaces


def test_replacing_phrases_in_shipped_library(lib):
    assert "预计" in lib.replacing("差不多").text
    assert lib.replacing("wait_no_apology").id == "hold-apology-1"
    assert lib.replacing("好吧") == lib.replacing("filler")
    assert lib.replacing("大概三天左右吧") is not None
    assert lib.replacing("我尽可能帮您") is None, "尽可能 is not 可能: tokens, not substrings"
    assert lib.replacing("") is None
