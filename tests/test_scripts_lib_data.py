"""The shipped scripts: coverage of the handbook's situations and the wording standard."""

from __future__ import annotations

import re
from collections import Counter

import pytest
import yaml

from kb.textproc import tokenize
from scripts_lib import CHANNELS, DATA_DIR, Library, load_library

SCENARIOS = (
    "greeting",
    "hold",
    "apology",
    "referral",
    "decline",
    "queue",
    "reconnect",
    "phone",
    "closing",
    "aftersales",
    "appointment",
    "followup",
    "notice_sms",
    "notice_wechat",
    "notice_qq",
)
# Hedges and absolute promises the handbook forbids in an answer (LABELING.md: vague,
# improper); 应该, 左右, 保证 and 肯定 are never needed in a standard script either.
FORBIDDEN = {
    "差不多", "大概", "大约", "可能", "好像", "估计", "也许", "或许", "不清楚", "不知道",
    "看情况", "绝对", "百分百", "应该", "左右", "保证", "肯定", "说不准", "不一定",
}  # fmt: skip
FILLERS = {"哦", "哦哦", "噢", "嗯", "嗯嗯", "恩", "额", "呃", "好吧", "行吧", "哈哈", "亲"}
HOLD_WORDS = re.compile(r"稍等|稍候|等一下|不要挂机|请您等待")
APOLOGY_OR_THANKS = re.compile(r"抱歉|不好意思|对不起|感谢|谢谢|辛苦|久等")
GREETING_WORDS = re.compile(r"您好|欢迎|很高兴为您服务|有什么可以帮您")
CLOSING_WORDS = re.compile(r"再见|感谢|祝您|欢迎再次|还有其他")


@pytest.fixture(scope="module")
def lib() -> Library:
    return load_library()


def script_ids(lib: Library) -> list[str]:
    return [s.id for s in lib]


def test_loads_clean_with_enough_scripts(lib):
    assert lib.ok, [str(e) for e in lib.errors]
    assert len(lib) >= 60


def test_every_handbook_scenario_is_there(lib):
    names = {s.name for s in lib.scenarios()}
    assert set(SCENARIOS) <= names
    for name in SCENARIOS:
        assert len(lib.by_scenario(name)) >= 3, name
        sc = lib.scenario(name)
        assert re.search(r"[\u4e00-\u9fff]", sc.title) and sc.description


def test_one_file_per_scenario_named_after_it():
    for path in sorted(DATA_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert data["scenario"] == path.stem
        assert set(data) <= {"scenario", "title", "description", "order", "scripts"}


def test_ids_and_shortcuts_unique_in_the_raw_files():
    ids: Counter[str] = Counter()
    shortcuts: Counter[str] = Counter()
    for path in DATA_DIR.glob("*.yaml"):
        for item in yaml.safe_load(path.read_text(encoding="utf-8"))["scripts"]:
            ids[item["id"]] += 1
            shortcuts[item["shortcut"]] += 1
    assert [k for k, n in ids.items() if n > 1] == []
    assert [k for k, n in shortcuts.items() if n > 1] == []
    assert sum(ids.values()) >= 60


def test_script_fields(lib):
    for s in lib:
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*-\d+", s.id), s.id
        assert re.fullmatch(r"/[a-z0-9]{1,6}", s.shortcut), s.id
        assert s.channels and set(s.channels) <= set(CHANNELS), s.id
        assert re.search(r"[\u4e00-\u9fff]", s.title) and s.tags, s.id
        for name in s.placeholders:
            assert re.search(r"[\u4e00-\u9fff]", name), (s.id, name)
            assert s.prompts[name].startswith("请输入"), (s.id, name)


@pytest.mark.parametrize("script_id", script_ids(load_library()))
def test_wording_standard(lib, script_id):
    script = lib.get(script_id)
    for line in script.text.splitlines():
        tokens = [t.text for t in tokenize(line) if any(ch.isalnum() for ch in t.text)]
        assert not set(tokens) & FORBIDDEN, (script_id, line, set(tokens) & FORBIDDEN)
        assert tokens and not set(tokens) <= FILLERS, f"{script_id}: bare filler turn"
        assert tokens[0] not in FILLERS, f"{script_id}: opens with a filler"
    if HOLD_WORDS.search(script.text):
        assert APOLOGY_OR_THANKS.search(script.text), f"{script_id}: hold without apology"
    for m in re.finditer(r"\{预计时间\}", script.text):
        assert "预计" in script.text[max(0, m.start() - 6) : m.start()], script_id
    assert "您" in script.text or script.scenario.startswith("notice_"), script_id


def test_scripts_meet_the_category_they_replace(lib):
    for s in lib:
        if "no_greeting" in s.replaces or s.scenario == "greeting":
            assert GREETING_WORDS.search(s.text), s.id
        if "no_closing" in s.replaces or s.scenario == "closing":
            assert CLOSING_WORDS.search(s.text), s.id
        if "wait_no_apology" in s.replaces:
            assert APOLOGY_OR_THANKS.search(s.text), s.id


def test_notice_scenarios_use_their_channel(lib):
    for name, channel in [("notice_sms", "sms"), ("notice_wechat", "wechat"), ("notice_qq", "qq")]:
        assert all(s.channels == (channel,) for s in lib.by_scenario(name)), name
    for s in lib.by_scenario("notice_sms"):
        assert s.text.startswith("【{店铺名称}】"), s.id
