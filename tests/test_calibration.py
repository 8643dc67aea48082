"""Sampling and calibration: the draw (repeatable by its seed), agreement between
supervisors (percent agreement and Cohen's kappa on confirm/reject, rating
agreement) and with the checker (precision per rule, misses), blind reviews that
are final once submitted, the pages' roles, CSRF and Chinese field messages."""

from __future__ import annotations

import re

import pytest

from coach.audits import AuditStore
from core.calibration import (
    cohen_kappa,
    draw,
    mean_kappa,
    miss_counts,
    pair_agreement,
    parse_sample_form,
    percent_agreement,
    rating_agreement,
    rule_precision,
)
from core.calibration_reviews import Calibration, CalibrationError, FormErrors

from .conftest import login, signed_in
from .test_my_audits import make_run

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

# -- the agreement math, against figures worked out by hand ------------------------------

C, R = "confirm", "reject"


def test_kappa_and_percent_agreement_match_a_hand_computed_example():
    # 10 findings; A and B agree on 8 (p_o = 0.8); each confirms 7 and rejects 3, so
    # p_e = 0.7 * 0.7 + 0.3 * 0.3 = 0.58 and kappa = (0.8 - 0.58) / (1 - 0.58) = 0.5238
    a = [C, C, C, C, C, C, R, R, R, C]
    b = [C, C, C, C, C, R, R, R, C, C]
    assert percent_agreement(a, b) == pytest.approx(0.8)
    assert cohen_kappa(a, b) == pytest.approx(0.22 / 0.42)
    assert round(cohen_kappa(a, b), 4) == 0.5238


def test_kappa_edge_cases():
    assert cohen_kappa([C, R, C], [C, R, C]) == pytest.approx(1.0)
    # every finding judged the other way: p_o = 0, p_e = 0.5 * 0.5 * 2 = 0.5, kappa -1
    assert cohen_kappa([C, R], [R, C]) == pytest.approx(-1.0)
    # both confirm everything: chance agreement is 1, kappa is undefined
    assert cohen_kappa([C, C, C], [C, C, C]) is None
    assert percent_agreement([C, C, C], [C, C, C]) == 1.0
    assert cohen_kappa([], []) is None and percent_agreement([], []) is None
    # 6 findings: agree on 4 (p_o = 2/3); A confirms 5, B 3: p_e = 5/6*3/6 + 1/6*3/6 = 1/2
    assert cohen_kappa([C, R, C, C, C, C], [C, R, C, R, C, R]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        cohen_kappa([C], [C, R])


def test_rating_agreement_is_exact_rate_and_mean_absolute_difference():
    got = rating_agreement([5, 4, 3, 2], [5, 3, 3, 4])
    assert got == {"n": 4, "exact": 0.5, "mad": 0.75}  # |0|+|1|+|0|+|2| = 3, / 4
    assert rating_agreement([], []) == {"n": 0, "exact": None, "mad": None}


def test_pairs_compare_only_what_both_judged_and_lights_kappa_averages_them():
    verdicts = {
        "甲": {"1:0": C, "1:1": R, "2:0": C},
        "乙": {"1:0": C, "1:1": C, "2:0": C, "3:0": R},  # 3:0 not judged by 甲
        "丙": {"1:0": R, "1:1": R, "2:0": C},
    }
    ratings = {"甲": {1: 3, 2: 4}, "乙": {1: 3}, "丙": {1: 1, 2: 4}}
    pairs = pair_agreement(verdicts, ratings, ["甲", "乙", "丙"])
    assert [(p["a"], p["b"], p["findings"]) for p in pairs] == [
        ("甲", "乙", 3),
        ("甲", "丙", 3),
        ("乙", "丙", 3),
    ]
    ab = pairs[0]
    assert ab["agreement"] == pytest.approx(2 / 3)
    assert ab["kappa"] is None or ab["kappa"] == pytest.approx(0.0)  # 乙 confirms all
    assert ab["ratings"] == {"n": 1, "exact": 1.0, "mad": 0.0}
    ac = pairs[1]  # 甲 C R C, 丙 R R C: p_o 2/3, p_e = 2/3*1/3 + 1/3*2/3 = 4/9, kappa 0.4
    assert ac["kappa"] == pytest.approx((2 / 3 - 4 / 9) / (1 - 4 / 9))
    assert ac["ratings"] == {"n": 2, "exact": 0.5, "mad": 1.0}
    assert mean_kappa(pairs) == pytest.approx(
        sum(p["kappa"] for p in pairs if p["kappa"] is not None)
        / len([p for p in pairs if p["kappa"] is not None])
    )
    assert mean_kappa([]) is None


def test_precision_per_rule_pools_every_verdict_lowest_first():
    judged = [
        ("vague-hedge", "vague", C),
        ("vague-hedge", "vague", C),
        ("no-closing", "no_closing", C),
        ("no-closing", "no_closing", R),
        ("no-greeting", "no_greeting", R),
    ]
    rows = rule_precision(judged)
    assert [(r["rule"], r["confirmed"], r["rejected"], r["precision"]) for r in rows] == [
        ("no-greeting", 0, 1, 0.0),
        ("no-closing", 1, 1, 0.5),
        ("vague-hedge", 2, 0, 1.0),
    ]
    misses = [
        {"rule": "vulgar-words", "category": "vulgar", "reviewer": "甲"},
        {"rule": "vulgar-words", "category": "vulgar", "reviewer": "乙"},
        {"rule": "no-closing", "category": "no_closing", "reviewer": "甲"},
    ]
    assert [(m["rule"], m["count"], m["by"]) for m in miss_counts(misses)] == [
        ("vulgar-words", 2, ["甲", "乙"]),
        ("no-closing", 1, ["甲"]),
    ]


# -- the draw -----------------------------------------------------------------------------


def test_the_draw_is_repeatable_per_agent_and_takes_all_of_a_small_agent():
    cands = [{"id": i, "agent": "a"} for i in range(1, 41)] + [
        {"id": i, "agent": "b"} for i in range(41, 44)
    ]
    first = draw(cands, 5, 1234)
    assert draw(list(reversed(cands)), 5, 1234) == first  # order of the input is irrelevant
    assert [d["agent"] for d in first] == ["a"] * 5 + ["b"] * 3
    assert {d["id"] for d in first if d["agent"] == "b"} == {41, 42, 43}
    # each agent's draw is their own: leaving b out changes nothing for a
    assert draw(cands[:40], 5, 1234) == first[:5]
    assert draw(cands, 5, 1235) != first  # another seed, another sample (here)
    assert len({d["id"] for d in first}) == len(first)


def test_the_sample_form_says_what_is_wrong_in_chinese():
    params, errors = parse_sample_form(
        {"from": "2026-11-30", "to": "2026-11-01", "per_agent": "0", "seed": "x", "run": "abc"}
    )
    assert errors == {
        "to": "结束日期不能早于开始日期",
        "per_agent": "每位客服抽取的会话数应为 1 到 50 之间的整数",
        "seed": "随机种子应为 0 到 1000000000000 之间的整数",
        "run": "批次应从列表中选择",
    }
    _, errors = parse_sample_form({"from": "2026/11/01", "per_agent": "3", "seed": "7"})
    assert errors == {"from": "日期应为「年-月-日」，例如 2026-11-02"}
    params, errors = parse_sample_form(
        {"agents": "阿青， 小王、阿青", "per_agent": "3", "seed": "42", "name": "十一月"}
    )
    assert errors == {} and params["agents"] == ["阿青", "小王"] and params["seed"] == 42


# -- the store ------------------------------------------------------------------------------


def chat(conv_id: str, agent: str, *agent_lines: str) -> dict:
    """A conversation whose content is its own (not skipped as a duplicate)."""
    turns = [{"role": "customer", "text": f"我的快递到哪了？订单号 {conv_id}"}]
    return {"id": conv_id, "agent": agent,
            "turns": turns + [{"role": "agent", "text": line} for line in agent_lines]}  # fmt: skip


OCT = "2026-10-20T09:00:00.000+00:00"
NOV = "2026-11-03T09:00:00.000+00:00"
RUN_OCT = [chat(f"o-{n}", "agent1", "哦", "差不多明天能到吧") for n in range(3)]
RUN_NOV = [
    chat("n-1", "agent1", "哦", "差不多明天能到吧"),  # 4 findings
    chat("n-2", "agent1", "您好，很高兴为您服务", "差不多后天到"),  # 2 findings
    *[chat(f"b-{n}", "bob", "您好，很高兴为您服务", "差不多后天到") for n in range(6)],
]
RULES = {
    "filler-bare": "filler",
    "no-greeting": "no_greeting",
    "vague-hedge": "vague",
    "no-closing": "no_closing",
    "improper-attitude": "improper",
}


def params(**kw) -> dict:
    form = {"per_agent": "2", "seed": "42", **kw}
    p, errors = parse_sample_form(form)
    assert errors == {}
    return p


@pytest.fixture
def runs(audits: AuditStore) -> tuple[int, int]:
    return make_run(audits, "十月", RUN_OCT, OCT), make_run(audits, "十一月", RUN_NOV, NOV)


def review_all(cal: Calibration, sample_id: int, who: str, verdict, rating) -> None:
    """Answer every conversation: verdict(rule, item) and rating(item) decide."""
    for it in cal.items(sample_id):
        form = {f"v{f['index']}": verdict(f["rule"], it) for f in it["findings"]}
        cal.save(sample_id, it["seq"], who, {**form, "rating": str(rating(it))})


@BOTH
def test_a_sample_is_drawn_per_agent_and_period_and_redrawn_identically(audits, runs):
    log: list[tuple] = []
    cal = Calibration(audits.database, log=lambda *a: log.append(a))
    nov = params(**{"from": "2026-11-01", "to": "2026-11-30", "name": "十一月"})
    sid = cal.create(nov, by="super1")
    items = cal.items(sid)
    assert [i["agent"] for i in items] == ["agent1", "agent1", "bob", "bob"]
    assert {i["conv_id"] for i in items if i["agent"] == "agent1"} == {"n-1", "n-2"}
    assert all(i["run_id"] == runs[1] for i in items)
    again = cal.create(nov, by="super2")
    assert [i["item_id"] for i in cal.items(again)] == [i["item_id"] for i in items]
    other = cal.create({**nov, "seed": 7}, by="super1")
    assert len(cal.items(other)) == 4
    # agents named, one run, all periods
    only = cal.create(params(agents="agent1", run=str(runs[0]), per_agent="5"), by="super1")
    assert {i["conv_id"] for i in cal.items(only)} == {"o-0", "o-1", "o-2"}
    info = cal.sample(sid)
    assert (info["name"], info["seed"], info["size"], info["since"]) == (
        "十一月", "42", 4, "2026-11-01")  # fmt: skip
    assert cal.count() == 4 and [s["id"] for s in cal.samples()][0] == only
    assert log[0][:3] == ("super1", "calibration.create", str(sid))
    with pytest.raises(CalibrationError) as empty:
        cal.create(params(**{"from": "2027-01-01"}), by="super1")
    assert empty.value.field == "range"
    with pytest.raises(CalibrationError) as no_run:
        cal.create(params(run="999"), by="super1")
    assert no_run.value.field == "run"


@BOTH
def test_two_supervisors_review_blind_submit_and_the_report_compares_them(audits, runs):
    log: list[tuple] = []
    cal = Calibration(audits.database, log=lambda *a: log.append(a))
    sid = cal.create(params(agents="agent1", **{"from": "2026-11-01"}), by="super1")
    items = cal.items(sid)
    assert [len(i["findings"]) for i in items] == [4, 2]
    n1, n2 = items
    # an incomplete answer is refused with a message per field
    with pytest.raises(FormErrors) as bad:
        cal.save(sid, 1, "super1", {"v0": "confirm", "v1": "maybe"})
    assert bad.value.errors == {
        "v1": "请判断这条问题成立还是不成立",
        "v2": "请判断这条问题成立还是不成立",
        "v3": "请判断这条问题成立还是不成立",
        "rating": "请给这个会话打 1 到 5 分",
    }
    with pytest.raises(CalibrationError, match="还有 2 个会话未评完"):
        cal.submit(sid, "super1")

    # 甲 rejects no-greeting only; 乙 rejects no-greeting and both no-closing findings
    review_all(cal, sid, "super1", lambda rule, it: R if rule == "no-greeting" else C,
               lambda it: {1: 2, 2: 3}[it["seq"]])  # fmt: skip
    review_all(cal, sid, "super2",
               lambda rule, it: R if rule in ("no-greeting", "no-closing") else C,
               lambda it: {1: 2, 2: 4}[it["seq"]])  # fmt: skip
    cal.add_miss(sid, 2, "super2", {"rule": "improper-attitude", "turn": "3", "note": "语气生硬"},
                 RULES)  # fmt: skip
    cal.add_miss(sid, 2, "super2", {"rule": "vague-hedge", "turn": "2"}, RULES)
    _, mine = cal.answers(sid, "super2")
    cal.delete_miss(
        sid, 2, "super2", [m for m in mine[n2["id"]] if m["rule"] == "vague-hedge"][0]["id"]
    )
    with pytest.raises(FormErrors) as miss_bad:
        cal.add_miss(sid, 2, "super2", {"rule": "nope", "turn": "9"}, RULES)
    assert miss_bad.value.errors == {
        "rule": "请选择漏检的规则",
        "turn": "轮次应为 1 到 3 之间的整数",
    }

    # each sees their own answers only, and no report before submitting
    answers1, _ = cal.answers(sid, "super1")
    assert answers1[n2["id"]]["rating"] == 3
    assert not cal.may_read_report(sid, "super1")
    cal.submit(sid, "super1")
    assert cal.may_read_report(sid, "super1") and not cal.may_read_report(sid, "super2")
    with pytest.raises(CalibrationError, match="已提交"):
        cal.save(sid, 1, "super1", {f"v{i}": C for i in range(4)} | {"rating": "5"})
    with pytest.raises(CalibrationError, match="已提交"):
        cal.submit(sid, "super1")
    report = cal.report(sid)
    assert report["reviewers"] == ["super1"] and report["pending"] == ["super2"]
    assert report["pairs"] == []  # 乙 has not submitted: their answers do not count yet
    cal.submit(sid, "super2")
    cal.observe(sid, "admin1")
    assert cal.may_read_report(sid, "admin1")
    with pytest.raises(CalibrationError):
        cal.save(sid, 1, "admin1", {})  # an observer cannot review any more (form ok or not)

    report = cal.report(sid)
    (pair,) = report["pairs"]
    # 6 findings: agree on 4 -> 66.7 %; 甲 confirms 5 of 6, 乙 3 of 6:
    # p_e = 5/6*3/6 + 1/6*3/6 = 0.5, kappa = (2/3 - 1/2) / (1 - 1/2) = 1/3
    assert pair["findings"] == 6
    assert pair["agreement"] == pytest.approx(2 / 3)
    assert pair["kappa"] == pytest.approx(1 / 3)
    # ratings 2,3 vs 2,4: exact 1 of 2, mean absolute difference 0.5
    assert pair["ratings"] == {"n": 2, "exact": 0.5, "mad": 0.5}
    precision = {r["rule"]: (r["confirmed"], r["rejected"]) for r in report["precision"]}
    assert precision == {
        "filler-bare": (2, 0),
        "no-greeting": (0, 2),
        "vague-hedge": (4, 0),
        "no-closing": (2, 2),
    }
    assert [(m["rule"], m["count"]) for m in report["miss_rules"]] == [("improper-attitude", 1)]
    assert report["misses"][0]["seq"] == 2 and report["misses"][0]["turn"] == 2
    assert [c["disagreements"] for c in report["conversations"]] == [1, 1]
    actions = {a[1] for a in log}
    assert {"calibration.answer", "calibration.miss", "calibration.miss_delete",
            "calibration.submit", "calibration.observe"} <= actions  # fmt: skip


# -- the pages ------------------------------------------------------------------------------


@pytest.fixture
def web_runs(app, kb):
    store = AuditStore(kb.store)
    make_run(store, "十一月", RUN_NOV, NOV)
    return store


def field_error(html: str, field: str) -> str:
    m = re.search(
        rf'<p class="field-error" role="alert"[^>]*data-field="{field}">([^<]*)</p>', html
    )
    return m.group(1) if m else ""


def new_sample(client, **kw) -> int:
    data = {"per_agent": "2", "seed": "42", "agents": "agent1", **kw}
    resp = client.post("/calibration", data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return int(resp.headers["Location"].rstrip("/").rsplit("/", 1)[1])


@pytest.mark.parametrize("role", ["agent", "trainer"])
def test_agents_and_trainers_may_not_calibrate(app, users, web_runs, role):
    sup = signed_in(app, "super1")
    sid = new_sample(sup)
    client = signed_in(app, users[role])
    for url in ("/calibration", f"/calibration/{sid}", f"/calibration/{sid}/items/1",
                f"/calibration/{sid}/report"):  # fmt: skip
        assert client.get(url).status_code == 403, url
    assert client.post("/calibration", data={"per_agent": "2", "seed": "1"}).status_code == 403
    assert client.post(f"/calibration/{sid}/items/1", data={"rating": "3"}).status_code == 403
    assert client.post(f"/calibration/{sid}/submit").status_code == 403
    assert "质检校准" not in client.get("/").get_data(as_text=True)
    assert 'href="/calibration"' in sup.get("/").get_data(as_text=True)


def test_posts_need_the_csrf_token(app, users, web_runs):
    sup = signed_in(app, "super1")
    sid = new_sample(sup)
    bare = app.test_client()
    assert login(bare, "super1").status_code == 302
    for url, data in (("/calibration", {"per_agent": "2", "seed": "1"}),
                      (f"/calibration/{sid}/items/1", {"rating": "3"}),
                      (f"/calibration/{sid}/items/1/misses", {"rule": "no-closing", "turn": "1"}),
                      (f"/calibration/{sid}/submit", {}), (f"/calibration/{sid}/observe", {})):  # fmt: skip
        resp = bare.post(url, data=data)
        assert resp.status_code == 400 and "CSRF" in resp.get_data(as_text=True), url
    assert Calibration(web_runs.database).review(sid, "super1") is None


def test_pages_check_the_forms_and_keep_reviews_blind(app, users, web_runs):
    sup, admin = signed_in(app, "super1"), signed_in(app, "admin1")
    page = sup.get("/calibration").get_data(as_text=True)
    assert re.search(r'name="seed"[^>]*value="\d+"', page)  # a seed is proposed
    bad = sup.post("/calibration", data={"per_agent": "", "seed": "abc", "to": "昨天"})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400
    assert field_error(html, "per_agent") == "每位客服抽取的会话数应为 1 到 50 之间的整数"
    assert field_error(html, "seed") == "随机种子应为 0 到 1000000000000 之间的整数"
    assert field_error(html, "to") == "日期应为「年-月-日」，例如 2026-11-02"
    assert 'value="abc"' in html  # what was typed is kept
    empty = sup.post("/calibration", data={"per_agent": "2", "seed": "1", "from": "2030-01-01"})
    assert empty.status_code == 400
    assert "没有已完成质检的会话" in field_error(empty.get_data(as_text=True), "range")

    sid = new_sample(sup, name="页面样本")
    sample = sup.get(f"/calibration/{sid}").get_data(as_text=True)
    assert "页面样本" in sample and '<strong class="seed">42</strong>' in sample
    assert "seed=42" in sample  # the link that draws the same sample again
    item = sup.get(f"/calibration/{sid}/items/1").get_data(as_text=True)
    assert 'data-rule="no-greeting"' in item and "第 2 句" in item
    missing = sup.post(f"/calibration/{sid}/items/1", data={"v0": "confirm"})
    html = missing.get_data(as_text=True)
    assert missing.status_code == 400
    assert field_error(html, "v1") == "请判断这条问题成立还是不成立"
    assert field_error(html, "rating") == "请给这个会话打 1 到 5 分"
    assert re.search(r'name="v0" value="confirm"[^>]*checked', html)  # kept
    miss = sup.post(f"/calibration/{sid}/items/1/misses", data={"rule": "", "turn": "99"})
    assert miss.status_code == 400
    assert field_error(miss.get_data(as_text=True), "rule") == "请选择漏检的规则"

    ok = sup.post(f"/calibration/{sid}/items/1",
                  data={"v0": "confirm", "v1": "reject", "v2": "confirm", "v3": "confirm",
                        "rating": "2"})  # fmt: skip
    assert ok.status_code == 302 and ok.headers["Location"].endswith(f"/calibration/{sid}/items/2")
    # the other supervisor sees none of it, and nobody sees the report before submitting
    other = admin.get(f"/calibration/{sid}/items/1").get_data(as_text=True)
    assert not re.search(r"checked", other)
    locked = sup.get(f"/calibration/{sid}/report").get_data(as_text=True)
    assert "提交你对本样本的评审后才能看到" in locked and "Cohen" not in locked
    early = sup.post(f"/calibration/{sid}/submit")
    assert early.status_code == 400 and "还有 1 个会话未评完" in early.get_data(as_text=True)
    assert sup.get(f"/calibration/{sid}/items/9").status_code == 404
    assert sup.get("/calibration/999").status_code == 404


def test_the_audit_log_names_calibration_actions(app, users, web_runs, kb):
    from core.auditlog import action_name
    from kb.accounts import Accounts

    sup = signed_in(app, "super1")
    sid = new_sample(sup)
    sup.post(f"/calibration/{sid}/observe")
    entries = Accounts(kb.store).audit_entries(10, 0, {"action": "calibration."})
    assert [e["action"] for e in entries] == ["calibration.observe", "calibration.create"]
    assert action_name("calibration.create") == "抽取校准样本"
    log = signed_in(app, "admin1").get("/admin/audit-log").get_data(as_text=True)
    assert "抽取校准样本" in log and "只看校准报告" in log
