"""Waivers remembered: an accepted appeal's rule and wording waive the same wording
(normalised) in later runs at once (已自动豁免（依据申诉 #N）, no deduction, no
statistic counts it); other wordings and other rules still count; a finding without
wording is not remembered; the rules page shows the appeal and waiver rate per rule."""

from __future__ import annotations

import pytest

from coach.audits import AuditError, AuditStore
from coach.checker import Checker
from coach.waivers import rule_rates, wording_key
from core.agent_trends import AgentTrends

from .conftest import signed_in
from .test_my_audits import chat, make_run

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

FIRST = "2026-11-03T09:00:00.000+00:00"
LATER = "2026-11-12T09:00:00.000+00:00"


def vague(store: AuditStore, run_id: int, conv_id: str) -> tuple[dict, int]:
    item = next(i for i in store.items(run_id) if i["conv_id"] == conv_id)
    full = store.item(item["id"])
    n = next(k for k, f in enumerate(full["findings"]) if f["match"] == "差不多")
    return full, n


def accept_first(store: AuditStore) -> tuple[int, int]:
    """Run one, its 差不多 appealed and accepted: (run id, appeal id)."""
    run1 = make_run(store, "一", [chat("a-1", "agent1", "差不多明天到")], FIRST)
    item, n = vague(store, run1, "a-1")
    appeal = store.appeal(item["id"], n, "这里是引用顾客的话", by="agent1")
    store.decide(appeal, True, "", by="super1", pack=Checker().pack)
    return run1, appeal


def test_wording_key_normalises():
    assert wording_key("差 不多") == wording_key("差不多") == "差不多"
    assert wording_key("ＯＫ") == wording_key("ok")
    assert wording_key("") == wording_key(None) == ""


@BOTH
def test_the_same_wording_is_waived_in_later_runs(audits):
    _, appeal = accept_first(audits)
    rule = vague(audits, 1, "a-1")[0]["findings"][vague(audits, 1, "a-1")[1]]["rule"]
    run2 = make_run(
        audits,
        "二",
        [
            chat("b-1", "agent1", "差不多后天到"),  # the same wording, another chat
            chat("b-2", "agent1", "大概后天到"),  # another wording of the rule
        ],
        LATER,
    )
    item, n = vague(audits, run2, "b-1")
    f = item["findings"][n]
    assert f["rule"] == rule and f["waived"] and f["deduction"] == 0
    assert f["auto_waiver"] == appeal
    assert f["waiver_note"] == f"已自动豁免（依据申诉 #{appeal}）"
    counted = [g for g in item["findings"] if not g.get("waived")]
    assert all(g["match"] != "差不多" for g in counted)  # greeting, closing: still count
    assert item["score"] == 100 - sum(g["deduction"] for g in counted)
    other = next(i for i in audits.items(run2) if i["conv_id"] == "b-2")
    assert other["score"] < item["score"]  # 大概 still counts
    with pytest.raises(AuditError) as err:
        audits.appeal(item["id"], n, "再申诉", by="agent1")
    assert "已自动豁免" in str(err.value)
    # the agent's figures no longer count it
    team = {a["agent"]: a for a in AgentTrends(audits.database).team("2026-11")}
    assert team["agent1"]["findings"] == len(counted) + len(
        [g for g in audits.item(other["id"])["findings"] if not g.get("waived")]
    ) + len([g for g in audits.item(audits.items(1)[0]["id"])["findings"] if not g.get("waived")])
    rates = rule_rates(audits.database)[rule]
    assert rates["appeals"] == 1 and rates["accepted"] == 1 and rates["remembered"] == 1
    assert rates["waived"] == 2  # the appealed one and the automatic one
    assert rates["waiver_rate"] == round(100 * 2 / rates["findings"], 1)


def test_a_finding_without_wording_is_not_remembered(audits):
    run1 = make_run(audits, "一", [chat("c-1", "agent1", "明天到")], FIRST)  # no greeting
    item = audits.item(audits.items(run1)[0]["id"])
    n = next(k for k, f in enumerate(item["findings"]) if not f["match"])
    rule = item["findings"][n]["rule"]
    appeal = audits.appeal(item["id"], n, "顾客先说了你好", by="agent1")
    audits.decide(appeal, True, "", by="super1", pack=Checker().pack)
    run2 = make_run(audits, "二", [chat("c-2", "agent1", "后天到")], LATER)
    later = audits.item(audits.items(run2)[0]["id"])
    assert any(f["rule"] == rule and not f.get("waived") for f in later["findings"])
    assert rule_rates(audits.database)[rule]["remembered"] == 0


def test_a_rejected_appeal_is_not_remembered(audits):
    run1 = make_run(audits, "一", [chat("d-1", "agent1", "差不多明天到")], FIRST)
    item, n = vague(audits, run1, "d-1")
    appeal = audits.appeal(item["id"], n, "没问题", by="agent1")
    audits.decide(appeal, False, "确属模糊用语", by="super1", pack=Checker().pack)
    run2 = make_run(audits, "二", [chat("d-2", "agent1", "差不多后天到")], LATER)
    later, m = vague(audits, run2, "d-2")
    assert not later["findings"][m].get("waived")


def test_pages_show_the_automatic_waiver_and_the_rates(app, kb):
    store = AuditStore(kb.store)
    accept_first(store)
    run2 = make_run(store, "二", [chat("b-1", "agent1", "差不多后天到")], LATER)
    item, _ = vague(store, run2, "b-1")
    sup = signed_in(app, "super1")
    html = sup.get(f"/audits/items/{item['id']}").get_data(as_text=True)
    assert "已自动豁免（依据申诉 #1）" in html
    rules = sup.get("/rules").get_data(as_text=True)
    assert "申诉率" in rules and "豁免率" in rules
    assert 'class="num remembered">1<' in rules
