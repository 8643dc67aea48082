"""Usage events and personal scripts in the instance database, on SQLite and PostgreSQL
(scripts_lib/usage.py over storage/usage.py; the web API is tested in test_scripts_web)."""

from __future__ import annotations

import threading

import pytest

from kb.errors import NotFound, ValidationError
from kb.store import Store
from scripts_lib.usage import PersonalScripts, UsageLog, default_library
from storage import Database
from storage.database import sqlite_url

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

MINE = {"title": "我的开场", "text": "{客户称呼}您好，我是小王。", "shortcut": "/wd1"}


@pytest.fixture
def store(tmp_path, database_url):
    db = Database(database_url or sqlite_url(tmp_path))
    yield Store(db)
    db.dispose()


def test_uses_are_counted_per_script_user_and_channel(store):
    log = UsageLog(store)
    lib = default_library()
    for script_id, user, channel in [
        ("hold-apology-1", "agent1", "wechat"),
        ("hold-apology-1", "agent1", "online"),
        ("hold-apology-1", "agent2", "online"),
        ("greeting-standard-1", "agent1", ""),
        ("gone-script", "agent2", "phone"),
    ]:
        event = log.record(script_id, user_id=len(user), username=user, channel=channel)
        assert event["script_id"] == script_id and event["at"]
    with pytest.raises(ValidationError, match="channel"):
        log.record("hold-apology-1", user_id=1, username="agent1", channel="fax")
    report = log.report(lib)
    assert report["total"] == 5
    assert [(s["id"], s["uses"], s["users"]) for s in report["scripts"]] == [
        ("hold-apology-1", 3, 2),
        ("gone-script", 1, 1),
        ("greeting-standard-1", 1, 1),
    ]
    top = report["scripts"][0]
    assert top["by_user"] == {"agent1": 2, "agent2": 1}
    assert top["by_channel"] == {"online": 2, "wechat": 1}
    assert report["scripts"][1]["in_library"] is False
    assert report["scripts"][2]["by_channel"] == {"unknown": 1}
    assert [(u["username"], u["uses"], u["scripts"]) for u in report["users"]] == [
        ("agent1", 3, 2),
        ("agent2", 2, 2),
    ]
    assert len(report["never_used"]) == len(lib) - 2
    assert log.report(lib, days=1)["total"] == 5


def test_personal_scripts_crud_scoped_to_their_owner(store):
    mine = PersonalScripts(store)
    first = mine.create(1, {**MINE, "tags": ["问候"]})
    assert first.user_id == 1 and first.tags == ["问候"] and first.shortcut == "/wd1"
    second = mine.create(1, {"title": "第二条", "text": "好的"})
    assert [s.id for s in mine.list(1)] == [second.id, first.id]  # newest change first
    assert mine.by_shortcut(1, "ＷＤ1").id == first.id and mine.by_shortcut(2, "/wd1") is None
    with pytest.raises(ValidationError, match="/wd1"):
        mine.create(1, {**MINE, "title": "重复"})
    changed = mine.update(1, first.id, {**MINE, "text": "您好！", "shortcut": "/wd2"})
    assert changed.text == "您好！" and changed.shortcut == "/wd2"
    assert [s.id for s in mine.list(1)] == [first.id, second.id]
    assert mine.create(2, MINE).user_id == 2  # shortcuts are per person
    for call in (
        lambda: mine.get(2, first.id),
        lambda: mine.update(2, first.id, MINE),
        lambda: mine.delete(2, first.id),
    ):
        with pytest.raises(NotFound):
            call()
    mine.delete(1, first.id)
    with pytest.raises(NotFound):
        mine.delete(1, first.id)
    assert [s.id for s in mine.list(1)] == [second.id]


def test_the_limit_and_shortcuts_hold_under_concurrent_creates(store, monkeypatch):
    """Checks and insert share one transaction with the user's scripts locked: four
    requests at once for one shortcut store one script, and none passes the limit."""
    import scripts_lib.usage as usage

    monkeypatch.setattr(usage, "PERSONAL_MAX", 3)
    mine = PersonalScripts(store)
    outcomes: list[object] = []
    barrier = threading.Barrier(4)

    def create(n: int, body: dict) -> None:
        barrier.wait()
        try:
            outcomes.append(mine.create(7, body).id)
        except ValidationError as exc:
            outcomes.append(str(exc))

    def run(bodies: list[dict]) -> list[object]:
        outcomes.clear()
        threads = [threading.Thread(target=create, args=(n, b)) for n, b in enumerate(bodies)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return list(outcomes)

    same = run([MINE] * 4)
    assert sum(isinstance(o, int) for o in same) == 1
    assert all("/wd1" in o for o in same if isinstance(o, str))
    many = run([{"title": f"第{n}条", "text": "好的"} for n in range(4)])
    assert sum(isinstance(o, int) for o in many) == 2  # 1 + 2 = the limit of 3
    assert len(mine.list(7)) == 3
