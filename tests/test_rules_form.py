"""Rules by form (issue 13, item 6): the overlay writer behind the per-rule form, the
"unknown rule" message, and the /rules page's form save, stale-version refusal and
playground (a draft pack run beside the saved one on a pasted conversation)."""

from __future__ import annotations

import re
from html import unescape

import pytest
from werkzeug.datastructures import MultiDict

from coach.checker import Checker
from coach.playground import PlaygroundError, compare, parse_pasted
from coach.rulebook import RuleBook
from coach.ruleform import parse_form, rows, write_overlay
from coach.rules import RuleError, load_rules
from kb import safeyaml
from kb.accounts import Accounts

from .conftest import signed_in

CHAT = "客服: 您好，请问有什么可以帮您？\n顾客: 快递什么时候到\n客服: 估计明天到\n"


@pytest.fixture(scope="module")
def default():
    return load_rules()


def _load(tmp_path, text: str):
    path = tmp_path / "team.yaml"
    path.write_text(text, encoding="utf-8")
    return load_rules([path])


def _fields(rule_rows: list[dict], was: bool = False, **changes) -> MultiDict:
    """The form as the page sends it: every row's values (`was`: with the signature
    each row was shown with), then `changes` ({"<id>.<field>": value}, None to leave
    a checkbox unticked)."""
    data = []
    for r in rule_rows:
        p = r["id"] + "."
        row = {
            p + "was": r["was"] if was else None,
            p + "on": "1" if r["enabled"] else None,
            p + "level": r["level"],
            p + "weight": str(r["weight"]),
            p + "cap": "" if r["cap"] is None else str(r["cap"]),
            p + "add": "\n".join(r["add"]),
            p + "remove": "\n".join(r["remove"]),
        }
        row.update({k: v for k, v in changes.items() if k.startswith(p)})
        data.append(("rule", r["id"]))
        data += [(k, v) for k, v in row.items() if v is not None]
    return MultiDict(data)


# -- the overlay writer ----------------------------------------------------------------


def test_form_rows_show_the_effective_values_and_the_overlay_words(tmp_path, default):
    text = "disable: [slow-greeting]\nrules:\n  - id: vague-hedge\n    weight: 3\n    add_words: [八成, {word: 大致上}]\n"
    by_id = {r["id"]: r for r in rows(text, _load(tmp_path, text), default)}
    assert by_id["slow-greeting"]["enabled"] is False
    hedge = by_id["vague-hedge"]
    assert (hedge["weight"], hedge["add"], hedge["advanced"]) == (3, ["八成"], 1)
    assert by_id["filler-bare"]["enabled"] and not by_id["filler-bare"]["team"]


def test_untouched_form_writes_an_empty_overlay(default):
    values, errors = parse_form(_fields(rows("", default, default)), default, default)
    assert errors == {}
    assert safeyaml.load(write_overlay("", values, default)) is None


def test_form_changes_become_the_overlay_keys_and_keep_the_rest(tmp_path, default):
    text = (
        "# a comment\nsettings: {fatal_cap: 30}\ndisable: [slow-greeting]\n"
        "rules:\n  - id: vague-hedge\n    weight: 3\n    add_words: [{word: 大致上}]\n"
        "    add_exceptions: [大约莫]\n"
    )
    pack = _load(tmp_path, text)
    form = _fields(
        rows(text, pack, default),
        **{
            "vague-hedge.weight": "4",  # back to the default: the key goes
            "vague-hedge.add": "八成\n八成\n",
            "vague-hedge.remove": "估计",
            "filler-bare.on": None,
            "slow-greeting.on": "1",
            "no-closing.level": "info",
            "no-closing.cap": "2.5",
        },
    )
    values, errors = parse_form(form, pack, default)
    assert errors == {}
    out = write_overlay(text, values, default)
    data = safeyaml.load(out)
    assert data["settings"] == {"fatal_cap": 30}
    assert data["disable"] == ["filler-bare"]
    entries = {e["id"]: e for e in data["rules"]}
    assert entries["vague-hedge"] == {
        "id": "vague-hedge",
        "add_words": [{"word": "大致上"}, "八成"],
        "add_exceptions": ["大约莫"],
        "remove_words": ["估计"],
    }
    assert entries["no-closing"] == {"id": "no-closing", "level": "info", "cap": 2.5}
    assert set(entries) == {"vague-hedge", "no-closing"}
    new = _load(tmp_path, out)  # the written overlay loads, examples and all
    assert not new.get("filler-bare").enabled and new.get("slow-greeting").enabled
    hedge = new.get("vague-hedge")
    assert "八成" in hedge.words and "估计" not in hedge.words and hedge.weight == 4


def test_only_the_rows_changed_since_shown_are_written(tmp_path, default):
    text = "rules:\n  - id: no-closing\n    enabled: false\n    weight: 4\n"
    pack = _load(tmp_path, text)
    shown = rows(text, pack, default)
    values, errors = parse_form(_fields(shown, was=True), pack, default)
    assert (values, errors) == ({}, {})  # nothing edited: the overlay stays as it is
    assert safeyaml.load(write_overlay(text, values, default)) == safeyaml.load(text)
    # an edit shown on v1, applied on a newer overlay: the other rows keep the newer text
    newer = text + "disable: [slow-reply]\n"
    form = _fields(shown, was=True, **{"filler-bare.on": None})
    values, errors = parse_form(form, pack, default)
    assert list(values) == ["filler-bare"] and errors == {}
    data = safeyaml.load(write_overlay(newer, values, default))
    assert data["disable"] == ["slow-reply", "filler-bare"]
    assert data["rules"] == [{"id": "no-closing", "enabled": False, "weight": 4}]


def test_a_team_rule_is_changed_in_its_own_definition(tmp_path, default):
    text = (
        "rules:\n  - id: team-hurry\n    category: vague\n    level: warning\n    weight: 2\n"
        "    check: token\n    words: [赶紧]\n    message: 催促\n    suggestion: 耐心说明\n"
        "    examples: {must: [您赶紧付款], must_not: [您慢慢看]}\n"
    )
    pack = _load(tmp_path, text)
    form = _fields(
        rows(text, pack, default),
        **{"team-hurry.on": None, "team-hurry.weight": "5", "team-hurry.add": "赶紧\n快点"},
    )
    values, errors = parse_form(form, pack, default)
    assert errors == {}
    entry = safeyaml.load(write_overlay(text, values, default))["rules"][0]
    assert (entry["enabled"], entry["weight"], entry["words"]) == (False, 5, ["赶紧", "快点"])


def test_form_values_are_checked_with_chinese_messages(default):
    form = _fields(
        rows("", default, default),
        **{
            "vague-hedge.weight": "很多",
            "vague-hedge.cap": "-1",
            "vague-hedge.level": "critical",
            "vague-hedge.remove": "不存在的词",
            "filler-bare.add": "长" * 31,
        },
    )
    _, errors = parse_form(form, default, default)
    assert errors == {
        "vague-hedge.weight": "每次扣分应为 0–100 的数",
        "vague-hedge.cap": "每会话上限应为 0–100 的数（留空：每次扣分×3）",
        "vague-hedge.level": "级别应为 提示 / 警告 / 错误 / 严重 之一",
        "vague-hedge.remove": "「不存在的词」不在本规则的默认词表中，无法去掉",
        "filler-bare.add": f"词语「{'长' * 31}」过长（每个最多 30 个字）",
    }


# -- unknown rule ----------------------------------------------------------------------


def test_a_misspelt_rule_id_is_one_unknown_rule_problem_with_its_line(tmp_path):
    with pytest.raises(RuleError) as bad:
        _load(tmp_path, "# team\nrules:\n  - id: vague-hedg\n    weight: 3\n")
    path = tmp_path / "team.yaml"
    assert bad.value.problems == [f"{path}:3: 未知规则「vague-hedg」（是否想用 vague-hedge？）"]
    with pytest.raises(RuleError) as bad:
        _load(tmp_path, "disable: [filer-bare]\n")
    assert bad.value.problems == [
        f"{path}: disable 中的规则 filer-bare 不存在（是否想用 filler-bare？）"
    ]
    with pytest.raises(RuleError) as bad:
        _load(tmp_path, "rules:\n  - id: zzzz\n    add_words: [哈]\n")
    assert (
        len(bad.value.problems) == 1
        and "未知规则「zzzz」：默认规则包中没有这个 id" in bad.value.problems[0]
    )


def test_the_team_pack_editor_names_the_unknown_rule_without_server_paths(kb, instance):
    book = RuleBook(kb.store, instance)
    with pytest.raises(RuleError) as bad:
        book.save("rules:\n  - id: vague-hedg\n    weight: 3\n", by="lead", base_version=0)
    assert bad.value.problems == ["团队规则:2: 未知规则「vague-hedg」（是否想用 vague-hedge？）"]


# -- the playground --------------------------------------------------------------------


def test_playground_compares_a_draft_with_the_saved_pack(tmp_path, default):
    convs, notes = parse_pasted(CHAT)
    assert notes == [] and [t.role for t in convs[0].turns] == ["agent", "customer", "agent"]
    draft = _load(tmp_path, "disable: [vague-hedge]\n")
    [result], left = compare(Checker(default), Checker(draft), convs)
    assert left == 0
    gone = [f for f in result["saved"]["findings"] if f["rule"] == "vague-hedge"]
    assert gone and gone[0]["match"] == "估计" and gone[0]["change"] == "removed"
    assert all(f["rule"] != "vague-hedge" for f in result["draft"]["findings"])
    assert result["draft"]["score"] > result["saved"]["score"]
    assert result["removed"] == 1 and result["added"] == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "请粘贴要试运行的会话"),
        ("随便写点什么\n", "无法读取粘贴的会话：第1行"),
        ("顾客: 在吗\n顾客: 有人吗\n", "没有客服发言"),
        ("客服: 好" * 30_000, "粘贴的会话过长（最多 100,000 个字）"),
    ],
)
def test_playground_refuses_bad_input_in_chinese(text, message):
    with pytest.raises(PlaygroundError) as bad:
        parse_pasted(text)
    assert message in str(bad.value)


def test_playground_stops_trying_conversations_past_its_budget(default):
    jsonl = "".join(
        f'{{"id": "c{n}", "turns": [{{"role": "agent", "text": "估计明天到"}}]}}\n'
        for n in range(3)
    )
    convs, _ = parse_pasted(jsonl)
    results, left = compare(Checker(default), Checker(default), convs, budget=0)
    assert [r["id"] for r in results] == ["c0"] and left == 2


def test_playground_reads_the_upload_formats():
    jsonl = '{"id": "c1", "turns": [{"role": "agent", "text": "您好"}, {"role": "customer", "text": "在吗"}]}\n'
    assert [c.id for c in parse_pasted(jsonl)[0]] == ["c1"]
    log = "2016-02-02 10:00:01 客服小王: 您好\n2016-02-02 10:00:09 顾客: 在吗\n"
    [conv], _ = parse_pasted(log)
    assert [t.role for t in conv.turns] == ["agent", "customer"]
    many = "".join(jsonl.replace("c1", f"c{n}") for n in range(12))
    convs, notes = parse_pasted(many)
    assert len(convs) == 10 and notes == ["只试运行前 10 个会话（共 12 个）"]


# -- the page --------------------------------------------------------------------------


def _page_fields(html: str) -> MultiDict:
    """The rules page form's fields as a browser would send them (checked boxes only,
    no button)."""
    data = [("rule", rid) for rid in re.findall(r'name="rule" value="([^"]+)"', html)]
    for name, value in re.findall(
        r'<input type="text"[^>]*name="([^"]+\.(?:weight|cap))" value="([^"]*)"', html
    ):
        data.append((name, value))
    for name in re.findall(
        r'<input type="checkbox" name="([^"]+\.on)" value="1"[^>]* checked', html
    ):
        data.append((name, "1"))
    for name, body in re.findall(r'<select name="([^"]+\.level)"[^>]*>(.*?)</select>', html):
        data.append((name, re.search(r'<option value="(\w+)" selected', body).group(1)))
    for name, value in re.findall(r'name="([^"]+\.was)" value="([^"]*)"', html):
        data.append((name, unescape(value)))
    data.append(("version", re.search(r'name="version" value="(\d+)"', html).group(1)))
    data.append(("yaml", ""))
    return MultiDict(data)


def _rules_log(kb) -> list[tuple[str, str, str]]:
    return [
        (r["actor"], r["action"], r["target"])
        for r in Accounts(kb.store).audit_entries(50)
        if r["action"].startswith("rules.")
    ]


def test_save_by_form_writes_a_new_version_and_logs_it(app, kb, instance):
    sup = signed_in(app, "super1")
    html = sup.get("/rules").get_data(as_text=True)
    assert 'name="vague-hedge.weight" value="4"' in html
    form = _page_fields(html)
    form.pop("filler-bare.on")
    form["vague-hedge.weight"] = "3"
    form["vague-hedge.add"] = "八成"
    form["note"] = "表单修改"
    form["action"] = "form"
    resp = sup.post("/rules", data=form)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    book = RuleBook(kb.store, instance)
    assert book.version() == 1
    saved = safeyaml.load(book.text_of(1))
    assert saved["disable"] == ["filler-bare"]
    assert saved["rules"] == [{"id": "vague-hedge", "weight": 3, "add_words": ["八成"]}]
    assert book.current()["note"] == "表单修改"
    assert _rules_log(kb) == [("super1", "rules.update", "v1")]
    html = sup.get("/rules").get_data(as_text=True)
    assert "已保存团队规则 v1" in html
    assert 'name="vague-hedge.weight" value="3"' in html and "八成</textarea>" in html
    assert not re.search(r'name="filler-bare\.on" value="1"[^>]* checked', html)
    # the same form again: nothing to save
    form = _page_fields(html)
    form["vague-hedge.add"] = "八成"
    form["action"] = "form"
    resp = sup.post("/rules", data=form, follow_redirects=True)
    assert "规则没有改动，未保存新版本" in resp.get_data(as_text=True) and book.version() == 1


def test_form_errors_show_next_to_their_field_and_nothing_is_saved(app, kb, instance):
    sup = signed_in(app, "super1")
    form = _page_fields(sup.get("/rules").get_data(as_text=True))
    form["vague-hedge.weight"] = "很多"
    form["vague-hedge.remove"] = "不存在的词"
    form["action"] = "form"
    resp = sup.post("/rules", data=form)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert re.search(
        r'name="vague-hedge.weight" value="很多"[^>]*aria-invalid="true"[^>]*>'
        r'<p class="field-error" role="alert" data-field="vague-hedge.weight">每次扣分应为 0–100 的数</p>',
        html,
    )
    assert "「不存在的词」不在本规则的默认词表中，无法去掉" in html
    # a problem of the whole pack that names a rule is shown on its row too
    form["vague-hedge.weight"] = "4"
    form["vague-hedge.remove"] = ""
    form["vague-hedge.add"] = "申请"  # fires on the must_not example 您应该先申请退货
    resp = sup.post("/rules", data=form)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "规则无法保存" in html
    row = re.search(r'data-field="vague-hedge.rule">([^<]*)<', html).group(1)
    assert "示例不应命中却命中了「申请」" in row
    assert RuleBook(kb.store, instance).version() == 0
    assert _rules_log(kb) == []


def test_a_stale_form_save_is_refused_with_the_diff(app, kb, instance):
    sup = signed_in(app, "super1")
    form = _page_fields(sup.get("/rules").get_data(as_text=True))  # based on v0
    RuleBook(kb.store, instance).save("disable: [no-closing]\n", by="lead", base_version=0)
    form.pop("filler-bare.on")
    form["action"] = "form"
    resp = sup.post("/rules", data=form)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409
    assert "未保存：团队规则已被他人修改" in html and "你的修改基于 v0" in html
    assert "filler-bare" in re.search(
        r'<textarea name="yaml"[^>]*>(.*?)</textarea>', html, re.S
    ).group(1)
    assert RuleBook(kb.store, instance).version() == 1
    # applied on the newer version (as after 重新应用), only the edited row changes
    form["version"] = "1"
    assert sup.post("/rules", data=form).status_code == 302
    book = RuleBook(kb.store, instance)
    assert safeyaml.load(book.text_of(2)) == {"disable": ["no-closing", "filler-bare"]}


def test_playground_runs_the_form_draft_and_the_yaml_draft_unsaved(app, kb, instance):
    sup = signed_in(app, "super1")
    form = _page_fields(sup.get("/rules").get_data(as_text=True))
    form.pop("vague-hedge.on")
    form["conversation"] = CHAT
    form["action"] = "try_form"
    resp = sup.post("/rules", data=form)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200, html
    assert re.search(r'<tr class="finding removed" data-rule="vague-hedge">.*?估计', html)
    assert 'class="play-side play-draft"' in html
    draft = html.split('class="play-side play-draft"')[1]
    assert 'data-rule="vague-hedge"' not in draft.split("</div>")[0]
    assert CHAT.splitlines()[2] in html  # the pasted text is kept
    # the YAML draft, as edited: a weight change shows in the score
    form["action"] = "try_yaml"
    form["yaml"] = "rules:\n  - id: vague-hedge\n    weight: 10\n    cap: 10\n"
    html = sup.post("/rules", data=form).get_data(as_text=True)
    saved = float(re.search(r'class="score-saved">([\d.]+)<', html).group(1))
    after = float(re.search(r'class="score-draft">([\d.]+)<', html).group(1))
    assert saved - after == 6
    assert RuleBook(kb.store, instance).version() == 0 and _rules_log(kb) == []


def test_playground_bad_input_and_bad_draft_say_why(app):
    sup = signed_in(app, "super1")
    form = _page_fields(sup.get("/rules").get_data(as_text=True))
    form["action"] = "try_yaml"
    form["conversation"] = "随便写点什么"
    resp = sup.post("/rules", data=form)
    assert resp.status_code == 400 and "无法读取粘贴的会话" in resp.get_data(as_text=True)
    form["conversation"] = CHAT
    form["yaml"] = "rules:\n  - id: vague-hedg\n    weight: 3\n"
    resp = sup.post("/rules", data=form)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "草稿规则无法加载" in html
    assert "未知规则「vague-hedg」（是否想用 vague-hedge？）" in html
    form["conversation"] = "客服: 好" * 30_000
    assert sup.post("/rules", data=form).status_code == 413


def test_only_rules_editors_use_the_form_and_playground(app):
    for name in ("agent1", "trainer1"):
        c = signed_in(app, name)
        for action in ("form", "try_form", "try_yaml"):
            resp = c.post("/rules", data={"action": action, "version": "0", "conversation": CHAT})
            assert resp.status_code == 403
    admin = signed_in(app, "admin1")
    assert 'value="try_form"' in admin.get("/rules").get_data(as_text=True)


def test_a_post_without_the_csrf_token_is_refused(app):
    sup = signed_in(app, "super1")
    del sup.environ_base["HTTP_X_CSRFTOKEN"]
    resp = sup.post("/rules", data={"action": "try_yaml", "yaml": "", "conversation": CHAT})
    assert resp.status_code == 400


def test_playground_reads_memotrace_text_with_the_team_names():
    # the 客服名单 reaches the playground as it reaches an upload
    from coach.options import ImportOptions

    text = "2024-03-01 10:00:20 张三\n在吗\n\n2024-03-01 10:00:40 小王\n亲，可能明天到吧\n"
    with pytest.raises(PlaygroundError) as bad:
        parse_pasted(text)
    assert "没有客服发言" in str(bad.value)
    load = ImportOptions().with_team(["小王"], {}).loader()
    [conv], _ = parse_pasted(text, load)
    assert [t.role for t in conv.turns] == ["customer", "agent"]
