"""Exports of saved audit results (issue 13, item 1): a run, an agent or a period as
XLSX (sheets 会话, 问题, 客服) or CSV (UTF-8 with BOM, no formula runs), read from
the database a page at a time.  Library on SQLite and PostgreSQL, the API, the CLI."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from coach.checker import Checker
from coach.exports import (
    AGENT_HEADER,
    CONVERSATION_HEADER,
    FINDING_HEADER,
    AuditExport,
    ExportError,
    Scope,
)
from coach.transcripts import load_text
from coach.writers import csv_cell
from kb.accounts import Accounts

from .conftest import run_cli, signed_in
from .test_audits import CONVS, jsonl, wait_done

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
EVIL = {
    "id": '=HYPERLINK("http://x")',
    "agent": "@agent",
    "started_at": "2026-11-02T09:30:00Z",
    "turns": [
        {"role": "customer", "text": "在吗"},
        {"role": "agent", "text": "-哦"},
        {"role": "agent", "text": "=1+1 差不多吧"},
    ],
}


def run_of(audits, records, name="a.jsonl", **kw) -> int:
    convs, errors = load_text(jsonl(records), name)
    run_id = audits.create_run(name, convs, errors, by="s", **kw)
    audits.claim(run_id)
    audits.check(run_id, Checker())
    return run_id


def sheet(wb, title) -> list[list]:
    return [list(r) for r in wb[title].iter_rows(values_only=True)]


def read_xlsx(data) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(data) if isinstance(data, bytes) else data)


def read_csv(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


@BOTH
def test_a_run_exports_its_conversations_findings_and_agents(audits, tmp_path):
    run_id = run_of(audits, [*CONVS, EVIL])
    items = {i["conv_id"]: i for i in audits.items(run_id)}
    mine = audits.item(items["c-mine"]["id"])
    audits.appeal(mine["id"], 0, "顾客在输入中", by="agent1")
    audits.decide(1, True, "", by="s", pack=Checker().pack)
    audits.appeal(mine["id"], 1, "不是", by="agent1")  # open
    export = AuditExport(audits.database, Scope(run_id=run_id), batch=2)
    out = tmp_path / "run.xlsx"
    export.write_xlsx(out)
    wb = read_xlsx(out)
    assert wb.sheetnames == ["会话", "问题", "客服"]
    convs = sheet(wb, "会话")
    assert convs[0] == CONVERSATION_HEADER
    assert [r[0] for r in convs[1:]] == ["c-mine", "c-other", EVIL["id"]]  # upload order
    evil = convs[3]
    assert evil[1] == "@agent" and evil[4] == "2026-11-02 09:30"  # a string, no formula
    assert evil[5] == run_id and evil[6] == "a.jsonl"
    rescored = audits.items(run_id)
    assert {r[0]: r[2] for r in convs[1:]} == {i["conv_id"]: i["score"] for i in rescored}
    assert {r[0]: r[3] for r in convs[1:]} == {i["conv_id"]: i["nfindings"] for i in rescored}
    finds = sheet(wb, "问题")
    assert finds[0] == FINDING_HEADER
    stored = audits.item(mine["id"])["findings"]
    rows = [r for r in finds[1:] if r[0] == "c-mine"]
    assert len(rows) == len(stored)
    first = rows[0]
    assert first[3] == stored[0]["rule"] and first[9] == stored[0]["suggestion"]
    assert first[11] == "已豁免（申诉已采纳）" and rows[1][11] == "申诉待处理"
    assert first[10] == 0  # a waived finding costs nothing
    turn = stored[1]["turn"]
    assert rows[1][2] == turn + 1 and rows[1][7] == CONVS[0]["turns"][turn]["text"]
    assert "=1+1 差不多吧" in [r[7] for r in finds[1:]]  # kept as text
    agents = sheet(wb, "客服")
    assert agents[0] == AGENT_HEADER
    by_agent = {a["agent"]: a for a in audits.agents(run_id)}
    assert {r[0]: (r[1], r[3], r[4]) for r in agents[1:]} == {
        name: (a["conversations"], a["mean_score"], a["findings"]) for name, a in by_agent.items()
    }
    text = "".join(export.csv("findings"))
    rows = read_csv(text)
    assert rows[0] == FINDING_HEADER and len(rows) == len(finds)
    assert "'=1+1 差不多吧" in [r[7] for r in rows] and "'-哦" in [r[7] for r in rows]
    conv_rows = read_csv("".join(export.csv("conversations")))
    assert conv_rows[3][:2] == ['\'=HYPERLINK("http://x")', "'@agent"]
    with pytest.raises(ExportError):
        export.csv("nope")


def test_csv_cells_that_would_run_as_formulas_are_text():
    assert [csv_cell(v) for v in ["=1", "+1", "-1", "@x", "\tx", "ok", "", None, -1, 2.5]] == [
        "'=1", "'+1", "'-1", "'@x", "'\tx", "ok", "", "", -1, 2.5,
    ]  # fmt: skip


@BOTH
def test_an_agent_or_a_period_exports_each_conversation_once(audits):
    first = run_of(audits, CONVS)
    run_of(audits, [CONVS[0]], "again.jsonl", reaudit=True)  # c-mine re-audited
    export = AuditExport(audits.database, Scope.of(agent="agent1"))
    convs = list(export.conversations())
    assert [(r[0], r[5]) for r in convs] == [("c-mine", first + 1)]  # the newest audit
    assert [r[:2] for r in export.agents()] == [["agent1", 1]]
    today = audits.run(first)["created_at"][:10]
    everyone = AuditExport(audits.database, Scope.of(since=today, until=today))
    assert sorted(r[0] for r in everyone.conversations()) == ["c-mine", "c-other"]
    assert list(AuditExport(audits.database, Scope.of(until="2000-01-01")).conversations()) == []
    # one run alone still has what it had
    assert len(list(AuditExport(audits.database, Scope(run_id=first)).conversations())) == 2
    for bad in ({}, {"since": "2026-13-01"}, {"until": "昨天"}):
        with pytest.raises(ExportError):
            Scope.of(**bad)


def test_a_run_of_thousands_exports_through_the_paged_generators(audits, tmp_path):
    """3,000 conversations, read 200 at a time: every row once, in order, both formats."""
    many = [
        {"id": f"k{n:05d}", "agent": f"a{n % 7}",
         "turns": [{"role": "customer", "text": "在吗"}, {"role": "agent", "text": f"哦 {n}"}]}
        for n in range(3000)
    ]  # fmt: skip
    run_id = run_of(audits, many)
    export = AuditExport(audits.database, Scope(run_id=run_id))
    chunks = export.csv("conversations")
    assert next(chunks).startswith("\ufeff会话ID")  # a generator: the first piece alone
    rows = read_csv("".join(export.csv("conversations")))
    assert [r[0] for r in rows[1:]] == [m["id"] for m in many]
    findings = read_csv("".join(export.csv("findings")))
    assert len(findings) - 1 == sum(i["nfindings"] for i in audits.items(run_id, limit=5000))
    out = tmp_path / "many.xlsx"
    export.write_xlsx(out)
    wb = openpyxl.load_workbook(out, read_only=True)
    ids = [r[0] for r in wb["会话"].iter_rows(min_row=2, values_only=True)]
    assert ids == [m["id"] for m in many]
    assert len(list(wb["客服"].iter_rows(values_only=True))) == 8


# -- web and CLI -------------------------------------------------------------------------


@BOTH
def test_the_export_api_streams_xlsx_and_csv_to_supervisors_only(app, users, kb):
    sup = signed_in(app, users["supervisor"])
    resp = sup.post("/api/v1/audits", json={"conversations": [*CONVS, EVIL]})
    run_id = resp.get_json()["run_id"]
    wait_done(sup, run_id)
    resp = sup.get(f"/api/v1/audits/{run_id}/export?format=xlsx")
    assert resp.status_code == 200 and resp.mimetype.endswith("spreadsheetml.sheet")
    assert f'filename="audit-run{run_id}.xlsx"' in resp.headers["Content-Disposition"]
    assert int(resp.headers["Content-Length"]) == len(resp.data)
    wb = read_xlsx(resp.data)
    assert [r[0] for r in sheet(wb, "会话")[1:]] == ["c-mine", "c-other", EVIL["id"]]
    resp = sup.get(f"/api/v1/audits/{run_id}/export?format=csv&table=conversations")
    assert resp.status_code == 200 and resp.is_streamed and resp.mimetype == "text/csv"
    assert read_csv(resp.get_data(as_text=True))[0] == CONVERSATION_HEADER
    findings = read_csv(sup.get(f"/api/v1/audits/{run_id}/export?format=csv").get_data(True))
    assert findings[0] == FINDING_HEADER and len(findings) > 3
    page = sup.get(f"/audits/{run_id}").get_data(as_text=True)
    assert f"/api/v1/audits/{run_id}/export?format=xlsx" in page
    by_agent = sup.get("/api/v1/audits/export?format=csv&table=conversations&agent=bob")
    assert [r[0] for r in read_csv(by_agent.get_data(as_text=True))[1:]] == ["c-other"]
    for url, status in (
        (f"/api/v1/audits/{run_id}/export?format=pdf", 400),
        (f"/api/v1/audits/{run_id}/export?format=csv&table=x", 400),
        ("/api/v1/audits/999/export", 404),
        ("/api/v1/audits/export?format=csv", 400),
        ("/api/v1/audits/export?since=2026-99-01", 400),
    ):
        resp = sup.get(url)
        assert resp.status_code == status and resp.get_json()["ok"] is False, url
    assert "audit.export" in [e["action"] for e in Accounts(kb.store).audit_entries(50)]
    for role in ("agent", "trainer"):
        other = signed_in(app, users[role])
        assert other.get(f"/api/v1/audits/{run_id}/export").status_code == 403
        assert other.get("/api/v1/audits/export?agent=agent1").status_code == 403
    assert app.test_client().get(f"/api/v1/audits/{run_id}/export").status_code in (302, 401)


def test_cli_exports_a_run_an_agent_and_refuses_bad_arguments(instance, tmp_path):
    src = tmp_path / "chats.jsonl"
    src.write_text(jsonl([*CONVS, EVIL]), encoding="utf-8")
    assert run_cli("audit", "run", str(src), instance=instance).returncode == 0
    out = tmp_path / "run.xlsx"
    done = run_cli("audit", "export", "1", "--format", "xlsx", "-o", str(out), instance=instance)
    assert done.returncode == 0, done.stderr
    wb = read_xlsx(out)
    assert wb.sheetnames == ["会话", "问题", "客服"] and len(sheet(wb, "会话")) == 4
    csv_out = tmp_path / "f.csv"
    done = run_cli("audit", "export", "1", "--format", "csv", "-o", str(csv_out),
                   instance=instance)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = read_csv(csv_out.read_text(encoding="utf-8"))
    assert rows[0] == FINDING_HEADER and rows[1][0] == "c-mine"
    agent_out = tmp_path / "bob.csv"
    args = ["--format", "csv", "--table", "agents", "--agent", "bob", "-o", str(agent_out)]
    assert run_cli("audit", "export", *args, instance=instance).returncode == 0
    assert [r[:2] for r in read_csv(agent_out.read_text(encoding="utf-8"))] == [
        AGENT_HEADER[:2], ["bob", "1"],
    ]  # fmt: skip
    missing = run_cli("audit", "export", "99", "-o", str(out), instance=instance)
    assert missing.returncode == 2 and "99" in missing.stderr
    nothing = run_cli("audit", "export", "-o", str(out), instance=instance)
    assert nothing.returncode == 2 and "请指定" in nothing.stderr
    log = run_cli("audit-log", instance=instance).stdout
    assert "\tcli\taudit.export\t1\t" in log


def test_the_export_form_checks_its_fields_and_sends_on_to_the_download(app, users):
    sup = signed_in(app, users["supervisor"])
    page = sup.get("/audits/export")
    assert page.status_code == 200 and 'name="since"' in page.get_data(as_text=True)
    assert "/audits/export" in sup.get("/audits").get_data(as_text=True)
    for query, message in (
        ("go=1", "请填写客服账号，或选择日期范围"),
        ("go=1&since=2026-13-01", "日期格式应为 2026-11-01"),
        ("go=1&since=2026-11-30&until=2026-11-01", "结束日期不能早于开始日期"),
        ("go=1&agent=bob&format=pdf", "请选择 Excel 或 CSV"),
    ):
        resp = sup.get(f"/audits/export?{query}")
        text = resp.get_data(as_text=True)
        assert resp.status_code == 400 and "field-error" in text and message in text, query
    resp = sup.get("/audits/export?go=1&agent=bob&since=&until=2026-11-30&format=csv")
    assert resp.status_code == 302
    location = resp.headers["Location"]
    assert location.startswith("/api/v1/audits/export?") and "agent=bob" in location
    assert "until=2026-11-30" in location and "since" not in location
    got = sup.get(location)
    assert got.status_code == 200 and read_csv(got.get_data(as_text=True))[0] == FINDING_HEADER
    assert signed_in(app, users["agent"]).get("/audits/export").status_code == 403
