"""Progress (issue 13): an upload answers at once and is read in the background, a
status endpoint feeds the progress bars, parse errors keep their file and line."""

from __future__ import annotations

import io
import json
import threading
import time

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from coach.audits import AuditStore
from coach.checker import Checker

from .conftest import add_user, open_logged_in, signed_in

CONV = {
    "id": "big-1",
    "agent": "客服小王",
    "turns": [
        {"role": "customer", "text": "我的快递到哪了"},
        {"role": "agent", "text": "您好，很高兴为您服务，我帮您查一下，请稍等"},
        {"role": "agent", "text": "不清楚哦"},
        {"role": "customer", "text": "好吧"},
        {"role": "agent", "text": "感谢您的咨询，祝您生活愉快，再见！"},
    ],
}


def conv(n: int, agent: str = "客服小王") -> dict:
    return {**CONV, "id": f"c-{n}", "agent": agent, "turns": [
        {**CONV["turns"][0], "text": f"订单 {n} 的快递到哪了"}, *CONV["turns"][1:]]}  # fmt: skip


def jsonl(records: list, broken: str | None = None) -> bytes:
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    if broken is not None:
        lines.insert(1, broken)
    return ("\n".join(lines) + "\n").encode("utf-8")


def upload(client, files, **fields):
    data = {"csrf_token": client.environ_base["HTTP_X_CSRFTOKEN"], **fields}
    data["files"] = [(io.BytesIO(content), name) for name, content in files]
    return client.post("/audits", data=data, content_type="multipart/form-data")


def wait_over(client, run_id: int) -> dict:
    """The run's status once it is over (polled: no time limit is asserted), and the
    thread of this process that read and checked it ended (before the database goes)."""
    for _ in range(2400):
        body = client.get(f"/audits/{run_id}/status").get_json()
        if not body["live"]:
            for thread in threading.enumerate():
                if thread.name == f"audit-{run_id}":
                    thread.join()
            return body
        time.sleep(0.05)
    raise AssertionError(body)


# -- the web: at once, then in the background ---------------------------------------


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_big_upload_answers_before_its_file_is_read(app, kb, users):
    """While the test holds qa_items locked, no conversation can be stored: the upload
    still answers with the run page, which shows the file being read."""
    sup = signed_in(app, users["supervisor"])
    # 4.3 MB: the same conversation 3,000 times (one is checked, the rest are duplicates)
    line = json.dumps(CONV, ensure_ascii=False).encode("utf-8") + b"\n"
    data = line * 3000
    assert len(data) > 1_000_000
    engine = sa.create_engine(kb.database_url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("LOCK TABLE qa_items IN EXCLUSIVE MODE"))
            resp = upload(sup, [("big.jsonl", data)], name="大文件")
            assert resp.status_code == 302
            run_id = int(resp.headers["Location"].rsplit("/", 1)[1])
            status = sup.get(f"/audits/{run_id}/status").get_json()
            assert status == {
                "ok": True,
                "id": run_id,
                "status": "queued",
                "label": "读取文件中",
                "checked": 0,
                "total": 0,
                "errors": 0,
                "percent": 0,
                "reading": True,
                "live": True,
                "message": "",
                "files": 1,
                "bytes": len(data),
            }
            page = sup.get(f"/audits/{run_id}").get_data(as_text=True)
            assert "读取文件中" in page and 'class="run-bar"' in page and "<noscript>" in page
            runs = sup.get("/audits").get_data(as_text=True)
            assert "读取文件中" in runs and f'/audits/{run_id}/status"' in runs
            # the API keeps its documented shape: a run being read is queued
            api = sup.get(f"/api/v1/audits/{run_id}").get_json()
            assert api["run"]["status"] == "queued" and "reading" not in api["run"]
            conn.rollback()  # the lock goes: the file is read and checked
    finally:
        engine.dispose()
    done = wait_over(sup, run_id)
    assert done["status"] == "done" and done["percent"] == 100, done
    assert done["total"] == 1 and done["checked"] == 1 and not done["reading"]
    assert "files" not in done
    body = sup.get(f"/api/v1/audits/{run_id}").get_json()
    assert body["duplicate_count"] == 2999 and body["items"][0]["conv_id"] == "big-1"


def test_parse_errors_read_in_the_background_are_listed_with_file_and_line(app, users):
    sup = signed_in(app, users["supervisor"])
    csv_text = "会话ID,角色,内容\nx1,客户,你好\nx1,客服,您好，请问有什么可以帮您\n"
    resp = upload(
        sup,
        [
            ("chats.jsonl", jsonl([conv(1), conv(2)], broken="{oops")),
            ("more.csv", csv_text.encode("utf-8")),
            ("empty.jsonl", b"\n\n"),
        ],
    )
    assert resp.status_code == 302
    run_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    done = wait_over(sup, run_id)
    assert done["status"] == "done" and done["total"] == 3 and done["checked"] == 3
    assert done["errors"] == 2 and done["percent"] == 100
    body = sup.get(f"/api/v1/audits/{run_id}").get_json()
    assert [(e["path"], e["line"]) for e in body["errors"]] == [
        ("chats.jsonl", 2),
        ("empty.jsonl", 0),
    ]
    page = sup.get(f"/audits/{run_id}").get_data(as_text=True)
    assert "无法读取的记录" in page and "chats.jsonl" in page and "文件中没有会话" in page
    assert "已完成" in page and 'value="100"' in page and "<noscript>" not in page
    # fields the form does not know are passed to the reader untouched; the agents
    # field is read in the background like the rest
    text = (
        "2016-02-02 10:00:01 顾客甲: 在吗\n2016-02-02 10:00:09 阿青: 您好，请问有什么可以帮您？\n"
    )
    resp = upload(sup, [("chat.txt", text.encode("utf-8"))], agents="阿青", extra="x")
    done = wait_over(sup, int(resp.headers["Location"].rsplit("/", 1)[1]))
    assert done["total"] == 1 and done["errors"] == 0, done


def test_what_the_request_can_tell_is_still_refused_at_once(app, users):
    sup = signed_in(app, users["supervisor"])
    before = sup.get("/audits").get_data(as_text=True).count('class="status-')
    resp = upload(sup, [("a.jsonl", b"\n \n"), ("b.csv", b"")])
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'id="err-files"' in page and "没有会话" in page
    resp = upload(sup, [("a.jsonl", jsonl([conv(1)]))], agent_pattern="(a|ab)*c", name="夜班")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "客服名称规则过于复杂" in page and 'value="夜班"' in page
    assert sup.get("/audits").get_data(as_text=True).count('class="status-') == before


def test_the_status_endpoint_is_for_supervisors(app, users):
    sup = signed_in(app, users["supervisor"])
    resp = upload(sup, [("a.jsonl", jsonl([conv(1)]))])
    run_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    assert wait_over(sup, run_id)["label"] == "已完成"
    agent = signed_in(app, users["agent"])
    assert agent.get(f"/audits/{run_id}/status").status_code == 403
    missing = sup.get("/audits/999/status", headers={"Accept": "application/json"})
    assert missing.status_code == 404 and missing.get_json()["ok"] is False


# -- the background worker (SQLite) --------------------------------------------------


def test_the_worker_reads_an_upload_then_checks_it(audits):
    files = [("a.jsonl", jsonl([conv(1), conv(2), conv(1)], broken="not json")),
             ("b.jsonl", b"")]  # fmt: skip
    run_id = audits.create_upload("夜班", files, {"agents": ""}, by="zhao", rules_version=0)
    run = audits.run(run_id)
    assert (run["status"], run["label"], run["reading"], run["total"]) == (
        "queued",
        "读取文件中",
        True,
        0,
    )
    assert audits.upload_stats(run_id) == (2, len(files[0][1]))
    assert not audits.claim(run_id)  # not checked before it is read
    assert audits.work(lambda version: Checker()) == 1  # read
    run = audits.run(run_id)
    assert (run["status"], run["reading"], run["total"], run["errors"]) == ("running", False, 2, 2)
    assert audits.upload_stats(run_id) == (0, 0)
    assert audits.duplicate_count(run_id) == 1  # c-1 twice in the upload
    assert [(e["path"], e["line"]) for e in audits.errors(run_id)] == [
        ("a.jsonl", 2),
        ("b.jsonl", 0),
    ]
    assert audits.work(lambda version: Checker()) == 2  # checked
    run = audits.run(run_id)
    assert (run["status"], run["checked"], run["percent"]) == ("done", 2, 100)
    assert audits.work(lambda version: Checker()) == 0  # nothing left anywhere


def test_an_upload_whose_reader_died_is_read_by_another_worker(audits):
    from storage import audits as repo

    run_id = audits.create_upload("夜班", [("a.jsonl", jsonl([conv(1)]))], {}, by="zhao")
    now = time.time()
    # a worker claimed it and died: its claim expires, and it may not save any more
    assert repo.claim_upload(audits.database, "gone:1:1", now + 60, now) == run_id
    assert audits.read_upload() is None  # held
    with audits.database.begin() as conn:  # the claim runs out
        conn.execute(sa.update(repo._runs).values(claimed_until=now - 1))
    assert audits.read_upload(claimer="here:1:1") == run_id
    with audits.database.begin():
        assert not repo.hold_upload(audits.database, run_id, "gone:1:1")
    assert audits.run(run_id)["total"] == 1


def test_an_upload_that_fails_to_read_keeps_its_files_for_a_resume(audits):
    # stored fields are checked when they come in; one that no longer loads fails the run
    run_id = audits.create_upload(
        "夜班", [("a.jsonl", jsonl([conv(1)]))], {"agent_pattern": "(a|ab)*c"}, by="zhao"
    )
    with pytest.raises(ValueError):
        audits.read_upload(run_id)
    run = audits.run(run_id)
    assert run["status"] == "failed" and "客服名称规则" in run["message"]
    assert audits.upload_stats(run_id)[0] == 1
    assert audits.retry_upload(run_id) and audits.run(run_id)["label"] == "读取文件中"
    assert not audits.retry_upload(run_id)  # queued already


# -- the browser ---------------------------------------------------------------------


def test_the_browser_shows_the_upload_and_the_run_reaching_100_percent(
    browser, live_server, tmp_path
):
    add_user(live_server.instance, "progress1", "supervisor")
    src = tmp_path / "progress-chats.jsonl"
    src.write_bytes(jsonl([conv(n, agent="客服进度") for n in range(300)], broken="{oops"))
    ctx, pg = open_logged_in(browser, live_server.url, "progress1")
    try:
        seen: list[tuple[str, str]] = []
        pg.expose_function("reportUpload", lambda value, text: seen.append((value, text)))
        pg.click("nav >> text=会话质检")
        pg.evaluate(
            """() => {
              const box = document.querySelector('.upload-progress');
              new MutationObserver(() => window.reportUpload(
                  box.querySelector('progress').getAttribute('value'),
                  box.querySelector('.upload-text').textContent))
                .observe(box, {attributes: true, childList: true, subtree: true,
                               characterData: true});
            }"""
        )
        pg.set_input_files("input[name=files]", str(src))
        pg.fill("input[name=name]", "进度条")
        pg.click("text=上传并质检")
        pg.wait_for_url("**/audits/*")
        # the run page: its bar follows the status endpoint and ends at 100%
        expect(pg.locator(".run-status")).to_contain_text("已完成", timeout=60000)
        expect(pg.locator(".run-progress progress")).to_have_attribute("value", "100")
        expect(pg.locator(".run-progress .run-percent")).to_have_text("100%")
        expect(pg.locator(".run-status")).to_contain_text("已检查 300/300")
        expect(pg.locator("table.items tbody tr")).to_have_count(100)  # the first page
        expect(pg.locator("table.errors")).to_contain_text("progress-chats.jsonl")
        expect(pg.locator("table.agents")).to_contain_text("客服进度")
        # the form was sent with its bytes counted, up to 100 %
        assert any(text.startswith("正在上传") for _, text in seen), seen
        assert ("100", "上传完成，正在打开质检批次…") in seen, seen
        # the runs list shows the finished run's bar full
        pg.click("nav >> text=会话质检")
        row = pg.locator("table.runs tbody tr", has_text="进度条")
        expect(row.locator("progress")).to_have_attribute("value", "100")
        expect(row.locator(".run-count")).to_have_text("300/300")
    finally:
        ctx.close()


def test_the_browser_shows_a_refused_upload_next_to_the_field(browser, live_server, tmp_path):
    add_user(live_server.instance, "progress2", "supervisor")
    bad = tmp_path / "notes.exe"
    bad.write_bytes(b"MZ")
    ctx, pg = open_logged_in(browser, live_server.url, "progress2")
    try:
        pg.click("nav >> text=会话质检")
        pg.set_input_files("input[name=files]", str(bad))
        pg.fill("input[name=name]", "坏文件")
        pg.click("text=上传并质检")
        expect(pg.locator("#err-files")).to_contain_text("类型不支持")
        expect(pg.locator("input[name=name]")).to_have_value("坏文件")
        assert pg.url.endswith("/audits")
        # the page that came back works like the first: a good file goes through
        good = tmp_path / "good.jsonl"
        good.write_bytes(jsonl([conv(1, agent="客服重试")]))
        pg.set_input_files("input[name=files]", str(good))
        pg.click("text=上传并质检")
        pg.wait_for_url("**/audits/*")
        expect(pg.locator(".run-status")).to_contain_text("已完成", timeout=60000)
    finally:
        ctx.close()


def test_kbcoach_audit_resume_reads_a_stored_upload_then_checks_it(instance):
    from kb.service import KnowledgeBase

    from .conftest import run_cli

    base = KnowledgeBase(instance)
    try:
        store = AuditStore(base.store)
        run_id = store.create_upload(
            "夜班", [("a.jsonl", jsonl([conv(1), conv(2)], broken="{oops"))], {}, by="zhao"
        )
    finally:
        base.close()
    proc = run_cli("audit", "resume", str(run_id), instance=instance)
    assert "质检批次 1：2/2 个会话，1 条无法读取" in proc.stdout, proc.stderr


def test_a_failed_reading_is_resumed_from_the_run_page_by_reading_again(app, kb, users):
    store = AuditStore(kb.store)
    run_id = store.create_upload(
        "夜班", [("a.jsonl", jsonl([conv(1)]))], {"agent_pattern": "(a|ab)*c"}, by="zhao"
    )
    with pytest.raises(ValueError):
        store.read_upload(run_id)
    sup = signed_in(app, users["supervisor"])
    page = sup.get(f"/audits/{run_id}").get_data(as_text=True)
    assert "失败" in page and "重新读取上传的文件并质检" in page
    assert sup.post(f"/audits/{run_id}/resume").status_code == 302  # read again, not 409
    again = wait_over(sup, run_id)
    assert again["status"] == "failed" and "客服名称规则" in again["message"]
