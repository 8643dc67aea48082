"""Duplicate conversations (issue 13, item 3): a conversation already audited, by its
id from the source or by its content, is skipped on upload and listed in the run, or
re-audited when asked; no statistic counts it twice.  SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from coach.audits import AuditStore
from coach.checker import Checker
from coach.dupes import fingerprint, given_id
from coach.transcripts import load_text
from kb.accounts import Accounts
from kb.store import Store
from storage import Database
from storage.database import close_all, sqlite_url

from .conftest import run_cli, signed_in
from .test_audits import CONVS, jsonl, wait_done

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
NEW = {
    "id": "c-new",
    "agent": "agent1",
    "turns": [{"role": "customer", "text": "发票怎么开"}, {"role": "agent", "text": "好吧"}],
}


@pytest.fixture
def audits(tmp_path, database_url):
    """An AuditStore on a bare database whose log is a list of actions."""
    url = database_url or sqlite_url(tmp_path / "instance")
    logged: list[str] = []
    store = AuditStore(Store(Database.open(url)), log=lambda *entry: logged.append(entry[1]))
    store.logged = logged
    yield store
    store.store.close()
    close_all(url)


def convs_of(records, name="a.jsonl"):
    convs, errors = load_text(jsonl(records), name)
    assert errors == []
    return convs


def checked(audits, run_id):
    audits.claim(run_id)
    return audits.check(run_id, Checker())


def test_the_fingerprint_is_the_content_not_times_names_or_spacing():
    a = convs_of([CONVS[0]])[0]
    other = {
        **CONVS[0],
        "id": "x",
        "agent": "someone",
        "turns": [
            {**t, "text": " " + t["text"].replace("，", ",") + "  ", "ts": 1700000000 + n}
            for n, t in enumerate(CONVS[0]["turns"])
        ],
    }
    b = convs_of([other])[0]
    assert fingerprint(a.turns) == fingerprint(b.turns) == fingerprint(a.to_dict()["turns"])
    changed = {**CONVS[0], "turns": [*CONVS[0]["turns"], {"role": "agent", "text": "再见"}]}
    assert fingerprint(convs_of([changed])[0].turns) != fingerprint(a.turns)
    swapped = {**CONVS[0], "turns": [{**t, "role": "agent"} for t in CONVS[0]["turns"]]}
    assert fingerprint(convs_of([swapped])[0].turns) != fingerprint(a.turns)


def test_ids_the_importers_make_up_are_not_ids():
    given = convs_of([CONVS[0]])[0]
    assert given_id(given) == "c-mine"
    no_id = {k: v for k, v in CONVS[0].items() if k != "id"}
    assert given_id(convs_of([no_id])[0]) is None  # "line-1"
    text = "2016-02-02 10:00:01 客户: 在吗\n2016-02-02 10:00:03 客服小王: 您好\n"
    chat = load_text(text, "chat.txt")[0][0]
    assert chat.id.startswith("chat.txt#") and given_id(chat) is None
    csv = load_text("role,text\n客户,在吗\n客服,您好\n", "x.csv")[0][0]
    assert csv.id == "csv" and given_id(csv) is None


@BOTH
def test_a_second_upload_skips_what_was_audited_and_counts_it_once(audits):
    first = audits.create_run("一", convs_of(CONVS), [], by="s")
    checked(audits, first)
    before = audits.agents(first)
    same_id = {**CONVS[1], "turns": [*CONVS[1]["turns"], {"role": "customer", "text": "好"}]}
    same_text = {**CONVS[0], "id": "c-renamed"}
    upload = [CONVS[0], NEW, same_id, same_text, NEW]
    second = audits.create_run("二", convs_of(upload, "b.jsonl"), [], by="s")
    run = checked(audits, second)
    assert (run["status"], run["total"], run["checked"]) == ("done", 1, 1)
    assert [i["conv_id"] for i in audits.items(second)] == ["c-new"]
    assert audits.items(second)[0]["seq"] == 1  # its place in the upload
    assert audits.duplicate_count(second) == 4
    mine, other = (next(i for i in audits.items(first) if i["conv_id"] == c) for c in CONVS_IDS)
    dupes = [
        (d["seq"], d["conv_id"], d["reason"], d["label"], d["of_item"], d["of_run"])
        for d in audits.duplicates(second)
    ]
    new_item = audits.items(second)[0]["id"]
    assert dupes == [
        (0, "c-mine", "content", "内容相同", mine["id"], first),
        (2, "c-other", "id", "会话ID相同", other["id"], first),
        (3, "c-renamed", "content", "内容相同", mine["id"], first),
        (4, "c-new", "upload", "本次上传中重复", new_item, second),
    ]
    assert [d["seq"] for d in audits.duplicates(second, limit=2, offset=2)] == [3, 4]
    # every statistic counts each conversation once
    assert audits.agents(first) == before
    assert [(a["agent"], a["conversations"]) for a in audits.agents(second)] == [("agent1", 1)]
    assert audits.items_of_agent_count("agent1") == 2  # c-mine once, c-new once
    assert audits.logged[-1] == "audit.run"
    # a third upload of the same file: all of it is a duplicate, and the run says so
    third = audits.create_run("三", convs_of(upload, "b.jsonl"), [], by="s")
    run = checked(audits, third)
    assert (run["status"], run["total"], audits.duplicate_count(third)) == ("done", 0, 5)
    assert audits.items_of_agent_count("agent1") == 2


CONVS_IDS = ("c-mine", "c-other")


@BOTH
def test_reaudit_checks_again_and_the_newest_audit_counts(audits):
    first = audits.create_run("一", convs_of(CONVS), [], by="s")
    checked(audits, first)
    again = audits.create_run("再查", convs_of([CONVS[0], CONVS[0]]), [], by="s", reaudit=True)
    run = checked(audits, again)
    assert run["total"] == 1 and audits.duplicate_count(again) == 1  # twice in one upload
    assert audits.duplicates(again)[0]["reason"] == "upload"
    # the first run keeps its results; over runs, the conversation counts once (newest)
    assert audits.item_count(first) == 2
    mine = audits.items_of_agent("agent1")
    assert [(i["run_id"], i["conv_id"]) for i in mine] == [(again, "c-mine")]
    assert audits.items_of_agent_count("agent1") == 1
    # a later plain upload is a duplicate of the newest audit
    later = audits.create_run("三", convs_of([CONVS[0]]), [], by="s")
    newest = audits.items(again)[0]["id"]
    assert [(d["of_item"], d["of_run"]) for d in audits.duplicates(later)] == [(newest, again)]


@BOTH
def test_conversations_without_ids_match_by_content_only(audits):
    no_ids = [{k: v for k, v in c.items() if k != "id"} for c in CONVS]
    first = audits.create_run("一", convs_of(no_ids), [], by="s")
    asked = [
        {"role": "customer", "text": "别的问题"},
        {"role": "agent", "text": "您好，这边为您查询"},
    ]
    other = [{**no_ids[0], "turns": asked}, no_ids[1]]
    second = audits.create_run("二", convs_of(other), [], by="s")  # line-1 and line-2 again
    assert audits.item_count(first) == 2 and audits.item_count(second) == 1
    assert [(d["conv_id"], d["reason"]) for d in audits.duplicates(second)] == [
        ("line-2", "content")
    ]


def test_a_large_upload_is_checked_for_duplicates_across_chunks(audits):
    """More conversations than one insert chunk: duplicates in later chunks of the same
    upload, and of another run, are found."""
    many = [{"id": f"k{n}", "agent": "a", "turns": [{"role": "agent", "text": f"第{n}句"}]}
            for n in range(1200)]  # fmt: skip
    run_id = audits.create_run("大", convs_of(many + many[:3]), [], by="s")
    assert audits.run(run_id)["total"] == 1200 and audits.duplicate_count(run_id) == 3
    again = audits.create_run("再", convs_of(many[1000:] + [NEW]), [], by="s")
    assert audits.run(again)["total"] == 1 and audits.duplicate_count(again) == 200


@BOTH
def test_the_migration_fills_the_fingerprints_of_stored_conversations(tmp_path, database_url):
    url = database_url or sqlite_url(tmp_path / "old")
    (tmp_path / "old").mkdir(exist_ok=True)
    db = Database(url, migrate=False)
    db.migrate("0002")
    items = sa.table("qa_items", sa.column("run_id"), sa.column("conv_id"),
                     sa.column("conversation"), sa.column("status"))  # fmt: skip
    convs = convs_of(CONVS)
    with db.begin() as conn:
        conn.execute(
            sa.insert(items),
            [
                {"run_id": 1, "conv_id": c.id, "status": "done",
                 "conversation": json.dumps(c.to_dict(), ensure_ascii=False)}
                for c in convs
            ] + [{"run_id": 1, "conv_id": "broken", "status": "done", "conversation": "{"}],
        )  # fmt: skip
    db.migrate()
    with db.read() as conn:
        got = dict(conn.execute(sa.text("SELECT conv_id, fingerprint FROM qa_items")).all())
    assert got == {
        "c-mine": fingerprint(convs[0].turns),
        "c-other": fingerprint(convs[1].turns),
        "broken": fingerprint([]),
    }
    close_all(url)


# -- web and CLI -------------------------------------------------------------------------


def upload(client, files, reaudit=False):
    token = client.environ_base["HTTP_X_CSRFTOKEN"]
    data = {"csrf_token": token, "name": ""}
    if reaudit:
        data["reaudit"] = "1"
    import io

    data["files"] = [(io.BytesIO(content), fname) for fname, content in files]
    resp = client.post("/audits", data=data, content_type="multipart/form-data")
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return int(resp.headers["Location"].rsplit("/", 1)[-1])


@BOTH
def test_the_run_page_and_api_list_skipped_duplicates(app, users, kb):
    sup = signed_in(app, users["supervisor"])
    body = jsonl(CONVS).encode("utf-8")
    first = upload(sup, [("chats.jsonl", body)])
    wait_done(sup, first)
    second = upload(sup, [("chats.jsonl", body)])
    done = wait_done(sup, second)
    assert done["duplicate_count"] == 2 and done["item_count"] == 0
    assert [d["conv_id"] for d in done["duplicates"]] == ["c-mine", "c-other"]
    page = sup.get(f"/audits/{second}").get_data(as_text=True)
    assert "重复会话 2 个，已跳过" in page and "内容相同" in page
    assert f"批次 #{first} 中的会话" in page
    assert "重复会话" not in sup.get(f"/audits/{first}").get_data(as_text=True)
    third = upload(sup, [("chats.jsonl", body)], reaudit=True)
    assert wait_done(sup, third)["item_count"] == 2
    token = Accounts(kb.store).create_token(users["supervisor"])
    h = {"Authorization": f"Bearer {token}"}
    resp = app.test_client().post("/api/v1/audits", json={"conversations": CONVS}, headers=h)
    assert resp.status_code == 202 and resp.get_json()["duplicate_count"] == 2
    wait_done(sup, resp.get_json()["run_id"])  # its check ends before the database goes
    resp = app.test_client().post(
        "/api/v1/audits", json={"conversations": CONVS, "reaudit": True}, headers=h
    )
    assert resp.get_json()["duplicate_count"] == 0
    wait_done(sup, resp.get_json()["run_id"])
    bad = {"conversations": CONVS, "reaudit": "yes"}
    resp = app.test_client().post("/api/v1/audits", json=bad, headers=h)
    assert resp.status_code == 400 and "reaudit" in resp.get_json()["error"]


def test_cli_skips_duplicates_unless_reaudit(instance, tmp_path):
    src = tmp_path / "chats.jsonl"
    src.write_text(jsonl(CONVS), encoding="utf-8")
    assert run_cli("audit", "run", str(src), instance=instance).returncode == 0
    again = run_cli("audit", "run", str(src), "--json", instance=instance)
    assert again.returncode == 0, again.stderr
    assert "重复会话 2 个，已跳过" in again.stderr
    assert json.loads(again.stdout)["run"]["total"] == 0
    forced = run_cli("audit", "run", str(src), "--reaudit", "--json", instance=instance)
    assert json.loads(forced.stdout)["run"]["checked"] == 2 and "重复" not in forced.stderr
