"""Supervisor workspace: audit runs kept in the database (SQLite and PostgreSQL),
conversation pages, appeals, the team rule pack, article publishing in the audit log,
upload limits."""

from __future__ import annotations

import io
import json
import time

import pytest
import sqlalchemy as sa

from coach.audits import AuditError, AuditStore
from coach.checker import Checker
from coach.rulebook import RuleBook
from coach.rules import RuleError
from coach.transcripts import load_path, load_text
from kb.accounts import Accounts
from kb.store import Store
from storage import Database, schema
from storage.database import close_all, sqlite_url

from .conftest import run_cli, signed_in

# library and app-level tests run on both backends; the CLI ones on SQLite
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

CONVS = [
    {
        "id": "c-mine",
        "agent": "agent1",
        "turns": [
            {"role": "customer", "text": "在吗，我的快递到哪了"},
            {"role": "agent", "text": "哦"},
            {"role": "agent", "text": "差不多明天能到吧"},
        ],
    },
    {
        "id": "c-other",
        "agent": "bob",
        "turns": [
            {"role": "customer", "text": "你好"},
            {"role": "agent", "text": "您好，很高兴为您服务，请问有什么可以帮您？"},
            {"role": "customer", "text": "没事了"},
            {"role": "agent", "text": "感谢您的咨询，祝您生活愉快，再见！"},
        ],
    },
]


def jsonl(records, broken: str | None = None) -> str:
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    if broken is not None:
        lines.insert(1, broken)
    return "\n".join(lines) + "\n"


@pytest.fixture
def audits(tmp_path, database_url):
    """An AuditStore on a bare database (no articles, no index) whose log is a list."""
    url = database_url or sqlite_url(tmp_path / "instance")
    logged: list[str] = []
    store = AuditStore(Store(Database.open(url)), log=lambda *entry: logged.append(entry[1]))
    store.logged = logged
    yield store
    store.store.close()
    close_all(url)


def actions(kb) -> list[str]:
    return [e["action"] for e in Accounts(kb.store).audit_entries(500)][::-1]


@BOTH
def test_run_is_stored_checked_and_aggregated(audits):
    convs, errors = load_text(jsonl(CONVS, broken="{not json"), "upload.jsonl")
    assert [e.line for e in errors] == [2]
    run_id = audits.create_run("第一批", convs, errors, by="super1")
    assert audits.run(run_id)["status"] == "queued"
    assert audits.claim(run_id) and not audits.claim(run_id)  # one process checks a run
    run = audits.check(run_id, Checker(), batch=1)
    assert (run["status"], run["checked"], run["total"], run["errors"]) == ("done", 2, 2, 1)
    assert audits.errors(run_id) == [
        {"path": "upload.jsonl", "line": 2, "reason": audits.errors(run_id)[0]["reason"]}
    ]
    items = {i["conv_id"]: i for i in audits.items(run_id)}
    mine = audits.item(items["c-mine"]["id"])
    rules = {f["rule"] for f in mine["findings"]}
    assert {"filler-bare", "vague-hedge"} <= rules
    assert all(f["script"]["text"] for f in mine["findings"] if f["rule"] == "vague-hedge")
    assert mine["score"] < items["c-other"]["score"]
    agents = {a["agent"]: a for a in audits.agents(run_id)}
    assert agents["agent1"]["mean_score"] == mine["score"]
    assert audits.logged == ["audit.run"]


@BOTH
def test_empty_upload_is_refused(audits):
    with pytest.raises(AuditError):
        audits.create_run("空", [], [], by="x")


@BOTH
def test_appeal_accepted_waives_the_finding_and_rescores(audits):
    convs, _ = load_text(jsonl(CONVS), "a.jsonl")
    run_id = audits.create_run("申诉", convs, [], by="super1")
    audits.claim(run_id)
    audits.check(run_id, Checker())
    item = next(i for i in audits.items(run_id) if i["conv_id"] == "c-mine")
    before = audits.item(item["id"])
    n = next(i for i, f in enumerate(before["findings"]) if f["rule"] == "filler-bare")
    with pytest.raises(AuditError):
        audits.appeal(item["id"], n, "   ", by="agent1")  # a reason is required
    with pytest.raises(AuditError):
        audits.appeal(item["id"], 99, "理由", by="agent1")
    appeal_id = audits.appeal(item["id"], n, "顾客还在输入，我只是回应", by="agent1")
    with pytest.raises(AuditError) as dup:
        audits.appeal(item["id"], n, "再申诉一次", by="agent1")
    assert dup.value.status == 409
    after = audits.decide(appeal_id, True, "同意", by="super1", pack=Checker().pack)
    assert after["findings"][n]["waived"] and after["findings"][n]["deduction"] == 0
    assert after["score"] > before["score"]
    assert after["findings"][n]["appeals"][0]["status"] == "accepted"
    with pytest.raises(AuditError):
        audits.decide(appeal_id, False, "", by="super1", pack=Checker().pack)
    agent = next(a for a in audits.agents(run_id) if a["agent"] == "agent1")
    assert agent["findings"] == len(before["findings"]) - 1
    # a rejected appeal changes nothing but its own state
    m = next(i for i, f in enumerate(before["findings"]) if f["rule"] == "vague-hedge")
    second = audits.appeal(item["id"], m, "只是估计", by="agent1")
    again = audits.decide(second, False, "含糊用语需要改", by="super1", pack=Checker().pack)
    assert again["score"] == after["score"] and not again["findings"][m].get("waived")
    assert audits.logged[-4:] == [
        "appeal.create",
        "appeal.accept",
        "appeal.create",
        "appeal.reject",
    ]


@BOTH
def test_rule_pack_versions_are_validated_and_kept(kb, instance):
    book = RuleBook(kb.store, instance)
    assert book.version() == 0
    with pytest.raises(RuleError) as bad:
        book.save("rules:\n  - id: filler-bare\n    weight: lots\n", by="super1")
    assert any("团队规则" in p for p in bad.value.problems)
    with pytest.raises(RuleError) as examples:
        book.save("rules: [{id: vague-hedge, add_examples: {must_not: [差不多吧]}}]", by="s")
    assert examples.value.problems[0].startswith("默认规则包 + 团队规则: 规则 vague-hedge")
    with pytest.raises(RuleError) as syntax:
        book.save("disable: [\n", by="super1")
    assert "团队规则:" in syntax.value.problems[0]  # names the line too
    assert book.version() == 0
    v1 = book.save("disable: [filler-bare]\n", by="super1", note="不查单独语气词")
    assert v1 == 1 and book.current()["by"] == "super1"
    assert not book.pack(1).get("filler-bare").enabled
    assert book.pack(0).get("filler-bare").enabled
    book.path_for(1).unlink()  # the file is rebuilt from the database
    assert not book.pack(1).get("filler-bare").enabled


def test_cli_run_list_and_audit_log(instance, tmp_path):
    src = tmp_path / "chats.jsonl"
    src.write_text(jsonl(CONVS, broken='{"id": "x", "turns": 5}'), encoding="utf-8")
    out = run_cli("audit", "run", str(src), "--json", instance=instance)
    assert out.returncode == 1, out.stderr  # like `check`: one record could not be read
    assert f"{src}:2:" in out.stderr  # the broken record named by file and line
    report = json.loads(out.stdout)
    assert report["run"]["status"] == "done" and report["run"]["checked"] == 2
    listing = run_cli("audit", "list", instance=instance).stdout
    assert listing.startswith("1\t已完成\t2/2\t")
    again = run_cli("audit", "resume", "1", instance=instance)
    assert again.returncode == 1 and "已完成" in again.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("disable: [no-such-rule]\n", encoding="utf-8")
    refused = run_cli("rules", "save", str(bad), instance=instance)
    assert refused.returncode == 2 and "no-such-rule" in refused.stderr
    good = tmp_path / "good.yaml"
    good.write_text("disable: [filler-bare]\n", encoding="utf-8")
    assert run_cli("rules", "save", str(good), "--by", "lead", instance=instance).returncode == 0
    assert "filler-bare" in run_cli("rules", "show", instance=instance).stdout
    second = json.loads(run_cli("audit", "run", str(src), "--json", instance=instance).stdout)
    assert second["run"]["rules_version"] == 1
    log = run_cli("audit-log", instance=instance).stdout
    assert "\tlead\trules.update\tv1\t" in log and "\tcli\taudit.run\t1\t" in log


# -- web -------------------------------------------------------------------------------------


def logged_in(app, username):
    """A signed-in client and its CSRF token (for the form posts below)."""
    c = signed_in(app, username)
    return c, c.environ_base["HTTP_X_CSRFTOKEN"]


def wait_done(client, run_id: int, headers: dict | None = None) -> dict:
    for _ in range(200):
        body = client.get(f"/api/v1/audits/{run_id}", headers=headers).get_json()
        if body["run"]["status"] not in ("queued", "running"):
            return body
        time.sleep(0.05)
    raise AssertionError(body)


def upload(client, token, files, name=""):
    data = {"csrf_token": token, "name": name}
    data["files"] = [(io.BytesIO(content), fname) for fname, content in files]
    return client.post("/audits", data=data, content_type="multipart/form-data")


@BOTH
def test_upload_check_read_and_appeal_through_the_pages(app, kb, users):
    sup, stok = logged_in(app, users["supervisor"])
    resp = upload(sup, stok, [("chats.jsonl", jsonl(CONVS, broken="{oops").encode("utf-8"))])
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/audits/1")
    body = wait_done(sup, 1)
    assert body["run"]["status"] == "done" and body["errors"][0]["line"] == 2
    page = sup.get("/audits/1").get_data(as_text=True)
    assert "chats.jsonl" in page and "agent1" in page and "已完成" in page
    mine = next(i for i in body["items"] if i["conv_id"] == "c-mine")
    other = next(i for i in body["items"] if i["conv_id"] == "c-other")
    conv_page = sup.get(f"/audits/items/{mine['id']}").get_data(as_text=True)
    assert "<mark" in conv_page and "标准话术" in conv_page
    assert "未能检查的规则" in conv_page and "缺少时间戳" in conv_page  # timing rules need ts

    agent, atok = logged_in(app, users["agent"])
    assert "c-mine" in agent.get("/my/audits").get_data(as_text=True)
    assert agent.get(f"/audits/items/{other['id']}").status_code == 404  # not theirs
    assert agent.get("/audits/1").status_code == 403
    stored = AuditStore(kb.store).item(mine["id"])["findings"]
    finding = next(n for n, f in enumerate(stored) if f["rule"] == "filler-bare")
    resp = agent.post(
        f"/audits/items/{mine['id']}/appeals",
        data={"csrf_token": atok, "finding": str(finding), "reason": "顾客在输入中"},
    )
    assert resp.status_code == 302
    queue = sup.get("/appeals").get_data(as_text=True)
    assert "顾客在输入中" in queue
    trainer, ttok = logged_in(app, users["trainer"])
    resp = trainer.post(f"/audits/items/{mine['id']}/appeals", data={"csrf_token": ttok})
    assert resp.status_code == 404  # someone else's conversation does not exist for them
    resp = sup.post("/appeals/1", data={"csrf_token": stok, "decision": "accept", "note": "好"})
    assert resp.status_code == 302
    rescored = wait_done(sup, 1)
    new_score = next(i["score"] for i in rescored["items"] if i["conv_id"] == "c-mine")
    assert new_score > mine["score"]
    assert "已采纳" in agent.get("/my/audits").get_data(as_text=True)
    assert actions(kb)[-3:] == ["audit.run", "appeal.create", "appeal.accept"]


@BOTH
def test_upload_limits_and_types(app, users):
    sup, tok = logged_in(app, users["supervisor"])
    resp = upload(sup, tok, [("virus.exe", b"MZ")])
    assert resp.status_code == 415 and "virus.exe" in resp.get_data(as_text=True)
    resp = upload(sup, tok, [(f"f{i}.jsonl", b"{}") for i in range(21)])
    assert resp.status_code == 413
    big = b"x" * (app.config["MAX_CONTENT_LENGTH"] + 10)
    assert upload(sup, tok, [("big.txt", big)]).status_code == 413
    resp = upload(sup, tok, [("../../etc/passwd.jsonl", jsonl(CONVS).encode())])
    assert resp.status_code == 302  # only the base name is used, never a path
    body = wait_done(sup, 1)
    assert {i["source"] for i in body["items"]} == {"passwd.jsonl:1", "passwd.jsonl:2"}
    resp = upload(sup, tok, [("empty.jsonl", b"")])
    assert resp.status_code == 400 and "empty.jsonl" in resp.get_data(as_text=True)
    # beside another file, an empty one is an unreadable record, not dropped silently
    resp = upload(sup, tok, [("a.jsonl", jsonl(CONVS).encode()), ("empty.jsonl", b"\n \n")])
    body = wait_done(sup, int(resp.headers["Location"].rsplit("/", 1)[-1]))
    assert [(e["path"], e["reason"]) for e in body["errors"]] == [
        ("empty.jsonl", "文件中没有会话（为空或只有空行）")
    ]


@BOTH
def test_api_run_and_bad_bodies(app, users, kb):
    token = Accounts(kb.store).create_token(users["supervisor"])
    c = app.test_client()
    h = {"Authorization": f"Bearer {token}"}
    resp = c.post("/api/v1/audits", json={"conversations": CONVS + [{"id": 1}]}, headers=h)
    assert resp.status_code == 202, resp.get_json()
    body = resp.get_json()
    assert body["errors"][0]["line"] == 3
    done = wait_done(c, body["run_id"], headers=h)
    assert done["run"]["checked"] == 2 and len(done["agents"]) == 2
    assert c.post("/api/v1/audits", json={"conversations": "x"}, headers=h).status_code == 400
    assert c.post("/api/v1/audits", json={"conversations": []}, headers=h).status_code == 400
    assert c.get("/api/v1/audits/999", headers=h).status_code == 404


@BOTH
def test_rules_page_saves_versions_and_check_reply_follows(app, users, kb):
    sup, tok = logged_in(app, users["supervisor"])
    reply = sup.post("/api/v1/coach/check-reply", json={"text": "哦"}, headers={"X-CSRFToken": tok})
    assert any(f["rule"] == "filler-bare" for f in reply.get_json()["findings"])
    resp = sup.post("/rules", data={"csrf_token": tok, "yaml": "disable: [nope]\n"})
    assert resp.status_code == 400 and "nope" in resp.get_data(as_text=True)
    resp = sup.post("/rules", data={"csrf_token": tok, "yaml": "disable: [filler-bare]\n"})
    assert resp.status_code == 302
    assert "v1" in sup.get("/rules").get_data(as_text=True)
    reply = sup.post("/api/v1/coach/check-reply", json={"text": "哦"}, headers={"X-CSRFToken": tok})
    assert not any(f["rule"] == "filler-bare" for f in reply.get_json()["findings"])
    assert "rules.update" in actions(kb)
    agent, atok = logged_in(app, users["agent"])
    assert agent.post("/rules", data={"csrf_token": atok, "yaml": ""}).status_code == 403


@BOTH
def test_article_publishing_is_audited_and_admins_read_the_log(app, users, kb):
    trainer, tok = logged_in(app, users["trainer"])
    h = {"X-CSRFToken": tok}
    new = {
        "title": "以旧换新怎么办理",
        "category": "product",
        "body": "到店办理。",
        "status": "draft",
    }
    resp = trainer.put("/api/v1/articles/product-trade-in", json=new, headers=h)
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "added"
    resp = trainer.put("/api/v1/articles/product-trade-in", json={"status": "published"}, headers=h)
    assert resp.get_json()["article"]["status"] == "published"
    same = trainer.put("/api/v1/articles/product-trade-in", json={"status": "published"}, headers=h)
    assert same.get_json()["outcome"] == "unchanged"
    bad = trainer.put("/api/v1/articles/product-trade-in", json={"status": "gone"}, headers=h)
    assert bad.status_code == 400 and "状态" in bad.get_json()["error"]
    bad = trainer.put("/api/v1/articles/product-trade-in", json={"tags": "x"}, headers=h)
    assert bad.status_code == 400 and "tags" in bad.get_json()["error"]
    bad = trainer.put("/api/v1/articles/product-new", json={"title": "缺字段"}, headers=h)
    assert bad.status_code == 400 and "category" in bad.get_json()["error"]
    log = [(e["actor"], e["action"], e["target"]) for e in Accounts(kb.store).audit_entries()]
    assert ("trainer1", "article.publish", "product-trade-in") in log
    assert ("trainer1", "article.create", "product-trade-in") in log
    hits = kb.search("以旧换新").hits
    assert hits and hits[0].id == "product-trade-in"

    admin, _ = logged_in(app, users["admin"])
    page = admin.get("/admin/audit-log").get_data(as_text=True)
    assert "article.publish" in page and "trainer1" in page
    assert trainer.get("/admin/audit-log").status_code == 403


@BOTH
def test_whole_sample_runs_whole(audits, chat_sample):
    convs, errors = load_path(chat_sample)
    run_id = audits.create_run("JD", convs, errors, by="t")
    audits.claim(run_id)
    run = audits.check(run_id, Checker())
    assert run["checked"] == run["total"] == len(convs) == 500
    assert sum(i["nfindings"] for i in audits.items(run_id, limit=1000)) > 100


@BOTH
def test_ids_are_unique_without_regard_to_case_on_every_surface(app, users, kb):
    """PUT /api/v1/articles/Product-Invoice beside product-invoice was a second
    article; the rule lives in the core (kb.authoring), so the API and the editor
    refuse it alike."""
    trainer, tok = logged_in(app, users["trainer"])
    h = {"X-CSRFToken": tok}
    body = {"title": "发票", "category": "product", "body": "正文"}
    resp = trainer.put("/api/v1/articles/Product-Invoice", json=body, headers=h)
    assert resp.status_code == 409 and "product-invoice" in resp.get_json()["error"]
    form = {"csrf_token": tok, "id": "PRODUCT-INVOICE", **body}
    page = trainer.post("/editor", data=form)
    assert page.status_code == 409 and "product-invoice" in page.get_data(as_text=True)
    assert kb.store.id_taken("product-INVOICE") == "product-invoice"
    assert kb.store.count() == 4
    ok = trainer.put("/api/v1/articles/product-invoice", json={"tags": ["发票"]}, headers=h)
    assert ok.status_code == 200 and ok.get_json()["outcome"] == "changed"


@BOTH
def test_editor_form_errors_name_the_field_and_keep_the_draft(app, users):
    trainer, tok = logged_in(app, users["trainer"])
    form = {"csrf_token": tok, "title": "标题", "category": "product", "body": "正文"}
    resp = trainer.post("/editor", data={**form, "id": "bad id/../x"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "id「bad id/../x」无效" in page and "正文</textarea>" in page
    resp = trainer.post("/editor", data={**form, "id": "product-x", "category": "food"})
    assert resp.status_code == 400 and "分类「food」无效" in resp.get_data(as_text=True)
    resp = trainer.post("/editor", data={**form, "id": "product-x", "review_by": "明天"})
    assert resp.status_code == 400 and "review_by" in resp.get_data(as_text=True)
    preview = trainer.post("/editor", data={**form, "id": "product-x", "action": "preview"})
    assert preview.status_code == 200 and "<p>正文</p>" in preview.get_data(as_text=True)
    assert trainer.get("/editor/product-x").status_code == 404  # preview saved nothing
    resp = trainer.post("/editor", data={**form, "id": "product-x"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/articles/product-x")
    resp = trainer.post("/api/v1/render", json={"body": "<script>x</script>**粗**"},
                        headers={"X-CSRFToken": tok})  # fmt: skip
    assert resp.get_json()["html"].strip() == "<p><strong>粗</strong></p>"
    agent, atok = logged_in(app, users["agent"])
    assert agent.get("/editor/product-x").status_code == 403


@BOTH
def test_walkthrough_fixes(app, users, kb, instance):
    """Found by a new-user walkthrough: each of these once misbehaved."""
    sup, tok = logged_in(app, users["supervisor"])
    huge = "99999999999999999999"
    for url in (f"/audits/{huge}", f"/audits/items/{huge}", f"/api/v1/audits/{huge}"):
        assert sup.get(url).status_code == 404, url  # was an OverflowError (500)
    admin, _ = logged_in(app, users["admin"])
    assert admin.get(f"/admin/audit-log?page={huge}").status_code == 200
    assert app.test_client().get("/favicon.ico").status_code == 204
    # the check API names its rule files, never the server's paths
    report = sup.post("/api/v1/coach/check", json=CONVS[0], headers={"X-CSRFToken": tok}).get_json()
    assert report["summary"]["rules"] == ["default.yaml"]
    # saving the rules unchanged adds no version
    assert sup.post("/rules", data={"csrf_token": tok, "yaml": ""}).status_code == 302
    assert RuleBook(kb.store, instance).version() == 0
    # a waived finding cannot be appealed again
    store = AuditStore(kb.store)
    convs, _ = load_text(jsonl(CONVS), "a.jsonl")
    run_id = store.create_run("x", convs, [], by="s")
    store.claim(run_id)
    store.check(run_id, Checker())
    item = next(i for i in store.items(run_id) if i["conv_id"] == "c-mine")
    first = store.appeal(item["id"], 0, "理由", by="agent1")
    store.decide(first, True, "", by="s", pack=Checker().pack)
    with pytest.raises(AuditError) as again:
        store.appeal(item["id"], 0, "再来", by="agent1")
    assert again.value.status == 409
    assert (
        next(i for i in store.items(run_id) if i["id"] == item["id"])["nfindings"]
        == len(store.item(item["id"])["findings"]) - 1
    )  # the waived finding no longer counts
    # a new password lifts a lock-out
    acc = Accounts(kb.store)
    for _ in range(6):
        with pytest.raises(Exception):  # noqa: B017 - AuthError
            acc.authenticate("agent1", "wrong", "10.0.0.9")
    assert acc.throttled("agent1", "10.0.0.9")
    assert not acc.throttled("agent1", "10.0.0.8")  # only the guessing address is locked
    acc.set_password("agent1", "another-good-pass-1", actor="admin1")
    assert not acc.throttled("agent1", "10.0.0.9")


def test_cli_search_puts_pins_first_and_suggests(kb, instance):
    from kb import pins

    pins.add_pin(kb.store, "退款", "product-invoice", actor="trainer1")
    out = run_cli("search", "退款", instance=instance).stdout
    assert out.splitlines()[0].startswith("1. 【置顶】如何开具发票")
    res = json.loads(run_cli("search", "退款", "--json", instance=instance).stdout)
    assert res["hits"][0]["pinned"] and not res["hits"][1]["pinned"]
    miss = run_cli("search", "ruhekaijufapiao", instance=instance)
    assert miss.returncode == 1 and "您是不是要找「如何开具发票」" in miss.stdout


@BOTH
def test_second_walkthrough_fixes(app, users, kb):
    """Found by a second walkthrough: each of these once misbehaved."""
    # one huge turn: a few findings, not tens of thousands
    sup, tok = logged_in(app, users["supervisor"])
    huge = {"id": "huge", "agent": "agent1", "turns": [{"role": "agent", "text": "可能" * 20000}]}
    resp = upload(sup, tok, [("huge.jsonl", jsonl([huge]).encode())])
    body = wait_done(sup, int(resp.headers["Location"].rsplit("/", 1)[1]))
    assert body["items"][0]["nfindings"] <= 5
    # a rejected appeal cannot be filed again
    store = AuditStore(kb.store)
    item_id = body["items"][0]["id"]
    first = store.appeal(item_id, 0, "理由", by="agent1")
    store.decide(first, False, "不同意", by="super1", pack=Checker().pack)
    with pytest.raises(AuditError, match="已被驳回"):
        store.appeal(item_id, 0, "再来一次", by="agent1")
    # drafts are for editors: agents get a 404, as search hides them
    agent, _ = logged_in(app, users["agent"])
    assert agent.get("/articles/phrasing-draft").status_code == 404
    assert agent.get("/api/v1/articles/phrasing-draft").status_code == 404
    trainer, ttok = logged_in(app, users["trainer"])
    assert trainer.get("/articles/phrasing-draft").status_code == 200
    # an id that differs only in case is a duplicate
    form = {"csrf_token": ttok, "title": "t", "category": "product", "body": "b"}
    resp = trainer.post("/editor", data={**form, "id": "PRODUCT-INVOICE"})
    assert resp.status_code == 409 and "product-invoice" in resp.get_data(as_text=True)
    # pinning a draft is refused with the reason
    resp = trainer.post(
        "/pins", data={"csrf_token": ttok, "query": "草稿", "article_id": "phrasing-draft"}
    )
    assert resp.status_code == 400 and "尚未发布" in resp.get_data(as_text=True)


def _rows(audits, where) -> list[dict]:
    with audits.database.read() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(
                sa.select(schema.qa_items).where(where).order_by(schema.qa_items.c.id)
            )
        ]


def _python_agents(audits, run_id):
    """The per-agent figures computed the old way: every finding parsed in Python."""
    from types import SimpleNamespace

    from coach.scoring import aggregate_agents

    reports = [
        SimpleNamespace(
            agent=i["agent"],
            score=i["score"],
            agent_turns=i["agent_turns"],
            findings=[f for f in json.loads(i["findings"]) if not f.get("waived")],
        )
        for i in _rows(audits, schema.qa_items.c.run_id == run_id)
    ]
    return aggregate_agents(reports)


@BOTH
def test_agent_figures_are_sql_aggregates_equal_to_parsing_every_finding(audits, chat_sample):
    """The run page's agents come from the findings table (its cost follows the agents
    shown, not their conversations); the figures equal the old per-finding parse, after
    a waiver too."""
    convs, errors = load_path(chat_sample)
    run_id = audits.create_run("gen", convs, errors, by="t")
    audits.claim(run_id)
    audits.check(run_id, Checker())
    item = next(i for i in audits.items(run_id, limit=500) if i["nfindings"])
    appeal = audits.appeal(item["id"], 0, "不是模糊用语", by=item["agent"])
    audits.decide(appeal, True, "同意", by="super1", pack=Checker().pack)

    def same(got, want):
        key = lambda a: a["agent"]  # noqa: E731
        assert sorted(got, key=key) == sorted(want, key=key)

    same(audits.agents(run_id), _python_agents(audits, run_id))
    paged = audits.agents(run_id, limit=2, offset=2)
    assert [a["agent"] for a in paged] == [a["agent"] for a in audits.agents(run_id)][2:4]
    # the conversations' finding counts follow the table too
    listed = {i["id"]: i["nfindings"] for i in audits.items(run_id, limit=1000)}
    for row in _rows(audits, schema.qa_items.c.run_id == run_id):
        want = sum(1 for f in json.loads(row["findings"]) if not f.get("waived"))
        assert listed[row["id"]] == want


@BOTH
def test_a_conversation_page_reads_its_turns_and_findings_in_sql(audits):
    """item_page reads one page of turns and the findings of those turns (JSON paged in
    SQL: JSON1 on SQLite, json_array_elements on PostgreSQL); it equals the same page
    cut out of the whole item."""
    turns = []
    for n in range(60):
        turns += [
            {"role": "customer", "text": f"第{n}个问题", "ts": 1_700_000_000 + 60 * n},
            {"role": "agent", "text": "哦" if n % 2 else "好" * 2500, "speaker": "小王"},
        ]
    conv = {"id": "long", "agent": "agent1", "turns": turns}
    convs, _ = load_text(jsonl([conv, CONVS[0]]), "long.jsonl")
    run_id = audits.create_run("long", convs, [], by="s")
    audits.claim(run_id)
    audits.check(run_id, Checker())
    long = next(i for i in audits.items(run_id) if i["conv_id"] == "long")
    whole = audits.item(long["id"])
    page = audits.item_page(long["id"], limit=50, offset=50)
    assert page["nfindings"] == long["nfindings"] == len(whole["findings"]) > 0
    assert [t["n"] for t in page["turn_list"]] == list(range(50, 100))
    for t in page["turn_list"]:
        src = whole["conversation"]["turns"][t["n"]]
        assert (t["role"], t["ts"], t["text"]) == (src["role"], src.get("ts"), src["text"][:2000])
        assert t["speaker"] == src.get("speaker", "")
        assert t["clipped"] == max(len(src["text"]) - 2000, 0)
    assert isinstance(page["turn_list"][0]["ts"], float)  # as stored, on both backends

    def strip(f):
        return {k: v for k, v in f.items() if k != "appeals"}

    want = [strip(f) for f in whole["findings"] if 50 <= f["turn"] <= 99]
    assert [strip(f) for f in page["page_findings"]] == want and want
    general = [strip(f) for f in whole["findings"] if f["turn"] >= len(turns)]
    assert [strip(f) for f in page["general"]] == general
    n = next(k for k, f in enumerate(whole["findings"]) if f["turn"] >= 50)
    assert audits.finding_turn(long["id"], n) == whole["findings"][n]["turn"]
    assert audits.finding_turn(long["id"], 10_000) is None
    assert audits.item_page(long["id"], limit=50, offset=500)["turn_list"] == []
    with pytest.raises(AuditError):
        audits.item_page(10_000)


@BOTH
def test_lists_and_counts_of_runs_conversations_and_appeals(audits):
    """Every list the pages show, paged and counted in SQL, on both backends."""
    convs, errors = load_text(jsonl(CONVS, broken="{bad"), "a.jsonl")
    first = audits.create_run("一", convs, errors, by="s")
    # other conversations of the same agents (the same ones again would be skipped)
    later = [
        {**c, "id": c["id"] + "-2", "turns": [*c["turns"], CONVS[0]["turns"][0]]} for c in CONVS
    ]
    second = audits.create_run("二", load_text(jsonl(later), "b.jsonl")[0], [], by="s")
    for run_id in (first, second):
        audits.claim(run_id)
        audits.check(run_id, Checker())
    assert audits.run_count() == 2
    listed = audits.runs()
    assert [r["id"] for r in listed] == [second, first]
    assert [r["label"] for r in listed] == ["已完成", "已完成"]
    scores = [i["score"] for i in audits.items(first)]
    assert listed[1]["mean_score"] == round(sum(scores) / len(scores), 1)
    assert audits.runs(limit=1, offset=1)[0]["id"] == first
    assert audits.error_count(first) == 1 and audits.error_count(second) == 0
    assert audits.errors(first, limit=1, offset=1) == []
    assert audits.item_count(first) == 2 and audits.item_count(first, agent="bob") == 1
    assert [i["conv_id"] for i in audits.items(first, agent="bob")] == ["c-other"]
    assert audits.agent_count(first) == 2
    mine = audits.items_of_agent("agent1")
    assert [i["run_id"] for i in mine] == [second, first]  # newest run first
    assert mine[0]["run_name"] == "二" and mine[0]["nfindings"] > 0
    assert audits.items_of_agent_count("agent1") == 2
    assert audits.items_of_agent("agent1", limit=1, offset=1)[0]["run_id"] == first
    item_id = mine[0]["id"]
    a1 = audits.appeal(item_id, 0, "理由一", by="agent1")
    a2 = audits.appeal(item_id, 1, "理由二", by="agent1")
    audits.decide(a1, False, "不同意", by="s", pack=Checker().pack)
    assert [a["id"] for a in audits.appeals()] == [a2, a1]
    assert [a["id"] for a in audits.appeals(status="open")] == [a2]
    assert [a["id"] for a in audits.appeals(by="agent1", limit=1, offset=1)] == [a1]
    assert [a["id"] for a in audits.appeals(item_id=item_id, findings=[0])] == [a1]
    assert audits.appeals(status="rejected")[0]["label"] == "已驳回"
    assert audits.appeal_count() == 2 and audits.appeal_count(status="open", by="agent1") == 1
    assert audits.appeal_count(by="bob") == 0
    got = audits.get_appeal(a2)
    assert (got["run_id"], got["conv_id"], got["agent"]) == (second, "c-mine-2", "agent1")
    with pytest.raises(AuditError) as missing:
        audits.get_appeal(10_000)
    assert missing.value.status == 404
    with pytest.raises(AuditError):
        audits.decide(10_000, True, "", by="s", pack=Checker().pack)
    with pytest.raises(AuditError):
        audits.run(10_000)


@BOTH
def test_decisions_on_one_conversation_at_once_lose_no_waiver(audits):
    """Two supervisors accepting appeals on two findings of one conversation at the
    same moment: its row is locked by each decision in turn, so both waivers stay."""
    import threading

    convs, _ = load_text(jsonl(CONVS), "a.jsonl")
    run_id = audits.create_run("并发", convs, [], by="s")
    audits.claim(run_id)
    audits.check(run_id, Checker())
    item = next(i for i in audits.items(run_id) if i["conv_id"] == "c-mine")
    pack = Checker().pack
    for _ in range(3):
        findings = [n for n, f in enumerate(audits.item(item["id"])["findings"])
                    if not f.get("waived")]  # fmt: skip
        if len(findings) < 2:
            break
        ids = [audits.appeal(item["id"], n, "理由", by="agent1") for n in findings[:2]]
        start = threading.Barrier(2)
        errors = []

        def decide(appeal_id, start, errors):
            try:
                start.wait()
                audits.decide(appeal_id, True, "", by="s", pack=pack)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=decide, args=(a, start, errors)) for a in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        after = audits.item(item["id"])["findings"]
        assert all(after[n].get("waived") for n in findings[:2])
    listed = next(i for i in audits.items(run_id) if i["id"] == item["id"])
    assert listed["nfindings"] == sum(1 for f in after if not f.get("waived"))


def test_a_finding_past_its_rules_cap_says_why_it_costs_nothing(app, users):
    """A rule deducts up to its cap per conversation; the findings past it say so
    instead of a bare 扣 0 分."""
    sup, token = logged_in(app, users["supervisor"])
    turns = [{"role": "customer", "text": "东西什么时候到"}]
    for n in range(6):  # six vague replies, one turn each
        turns += [
            {"role": "agent", "text": f"您好，大概第{n}天吧"},
            {"role": "customer", "text": "到底哪天"},
        ]
    turns.append({"role": "agent", "text": "请问还有其他可以帮您的吗？祝您生活愉快，再见！"})
    chat = {"id": "c-cap", "agent": "agent1", "turns": turns}
    resp = upload(sup, token, [("cap.jsonl", jsonl([chat]).encode("utf-8"))])
    run_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    item = wait_done(sup, run_id)["items"][0]
    page = sup.get(f"/audits/items/{item['id']}").get_data(as_text=True)
    assert "扣 4 分" in page
    assert page.count("扣 4 分") == 2  # vague-hedge: 4 a finding, 8 a conversation
    assert page.count("不扣分：本规则每个会话最多扣 8 分，本会话已扣满") == 4
    assert "扣 0 分" not in page
