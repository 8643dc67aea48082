"""Re-audit and compare: a run checked again with a changed rule pack (a disabled
rule) becomes a new run linked to the old one; the comparison shows each
conversation's score change and the findings removed; statistics count each
conversation once; the run page offers it to supervisors only."""

from __future__ import annotations

import pytest

from coach.audits import AuditError, AuditStore
from coach.checker import Checker
from coach.compare import compare, reaudit, reaudit_of, reaudits
from coach.rulebook import RuleBook
from core.agent_trends import AgentTrends

from .conftest import signed_in
from .test_my_audits import chat, make_run

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
WHEN = "2026-11-03T09:00:00.000+00:00"
CHATS = [
    chat("r-1", "agent1", "差不多明天到"),
    chat("r-2", "agent1", "您好，很高兴为您服务"),
]


def vague_rule(store: AuditStore, run_id: int) -> str:
    item = next(i for i in store.items(run_id) if i["conv_id"] == "r-1")
    return next(f["rule"] for f in store.item(item["id"])["findings"] if f["match"] == "差不多")


@BOTH
def test_reaudit_links_runs_and_counts_once(audits):
    old = make_run(audits, "原批次", CHATS, WHEN)
    new = reaudit(audits, old, by="super1", rules_version=0)
    assert reaudit_of(audits, new) == old and reaudits(audits, old) == [new]
    assert audits.run(new)["name"] == "重新质检：原批次"
    assert audits.claim(new)
    audits.check(new, Checker())
    view = compare(audits, old, new)
    assert view["compared"] == 2 and view["changed"] == 0  # same rules: nothing changed
    assert view["old_mean"] == view["new_mean"]
    team = {a["agent"]: a for a in AgentTrends(audits.database).team("2026-11")}
    assert team["agent1"]["conversations"] == 2  # not 4


def test_compare_shows_removed_findings_and_score_change(audits, tmp_path):
    old = make_run(audits, "原批次", CHATS, WHEN)
    rule = vague_rule(audits, old)
    book = RuleBook(audits.store, tmp_path / "rules")
    version = book.save(f"disable: [{rule}]\n", by="super1")
    new = reaudit(audits, old, by="super1", rules_version=version)
    assert audits.claim(new)
    audits.check(new, Checker(book.pack(version)))
    view = compare(audits, old, new)
    row = next(r for r in view["rows"] if r["conv_id"] == "r-1")
    assert row["delta"] > 0 and row["added"] == []
    assert [f["rule"] for f in row["removed"]] == [rule]
    assert row["removed"][0]["match"] == "差不多"
    assert view["rows"][0]["conv_id"] == "r-1"  # changed first
    assert {r["rule"]: r["removed"] for r in view["by_rule"]}[rule] == 1
    assert view["changed"] == 1


def test_an_empty_run_cannot_be_reaudited(audits):
    from coach.transcripts import ImportIssue

    run_id = audits.create_run("坏文件", [], [ImportIssue("a.jsonl", 1, "坏行")], by="super1")
    with pytest.raises(AuditError):
        reaudit(audits, run_id, by="super1", rules_version=0)


def test_pages_reaudit_and_compare(app, kb, users):
    store = AuditStore(kb.store)
    old = make_run(store, "原批次", CHATS, WHEN)
    sup = signed_in(app, "super1")
    page = sup.get(f"/audits/{old}").get_data(as_text=True)
    assert "用当前规则重新质检并对比" in page
    resp = sup.post(f"/audits/{old}/reaudit")
    assert resp.status_code == 302
    new = int(resp.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    assert reaudit_of(store, new) == old
    compare_page = sup.get(f"/audits/{new}/compare")
    assert compare_page.status_code == 200 and "重新质检对比" in compare_page.get_data(as_text=True)
    assert sup.get(f"/audits/{old}/compare").status_code == 404
    assert sup.get(f"/audits/{old}/compare?with={new}").status_code == 200
    agent = signed_in(app, users["agent"])
    assert agent.post(f"/audits/{old}/reaudit").status_code == 403
    assert agent.get(f"/audits/{new}/compare").status_code == 403
