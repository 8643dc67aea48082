"""How the scripts library is used: search feed, coach link, copy events, personal scripts.

Storage lives in the instance database (the kb Store): `script_usage` records who
copied which script when and on which channel; `personal_scripts` holds each agent's
own scripts beside the shared ones.  Nothing here imports Flask.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from kb.diff import diff_ops, ops_html
from kb.errors import NotFound, StaleVersion, ValidationError
from kb.store import Store, now_iso
from kb.textproc import normalize
from scripts_lib.coachlink import default_library
from scripts_lib.library import Library
from scripts_lib.loader import SHORTCUT_RE
from scripts_lib.models import CHANNELS, COACH_CATEGORIES, Script
from scripts_lib.render import Rendered, render
from scripts_lib.template import placeholders, stray_braces
from storage import usage as repo

SOURCE_NAME = "scripts"
DOCTYPE = "script"
DOC_PREFIX = "script:"  # index ids of scripts never collide with article ids
FEED_VERSION = "1"  # bump when script_document changes, so every index is refreshed

TITLE_MAX = 60
TEXT_MAX = 1000
TAGS_MAX = 10
TAG_MAX = 20
PERSONAL_MAX = 200  # personal scripts per user
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


# -- search feed --------------------------------------------------------------


def doc_id(script_id: str) -> str:
    """Index id of a script."""
    return DOC_PREFIX + script_id


def script_id_of(index_id: str) -> str:
    """Script id of an index id (the inverse of `doc_id`)."""
    return index_id.removeprefix(DOC_PREFIX)


def script_document(script: Script, scenario_title: str = "") -> dict:
    """The whoosh document of a script: the kb schema, doctype "script".

    The phrasings it replaces (稍等, 差不多 …), its scenario and shortcut count as
    similar questions, so an agent searching the weak wording finds the standard one.
    """
    from kb.index import document
    from kb.models import Article

    phrases = [r for r in script.replaces if r not in COACH_CATEGORIES]
    article = Article(
        id=doc_id(script.id),
        title=script.title,
        category="phrasing",
        body=script.text,
        tags=list(script.tags),
        similar=[*phrases, scenario_title, script.shortcut.lstrip("/")],
    )
    return document(article, doctype=DOCTYPE)


def script_documents(library: Library) -> Iterator[dict]:
    """Every script of the library as a whoosh document."""
    titles = {sc.name: sc.title for sc in library.scenarios()}
    for script in library.all():
        yield script_document(script, titles.get(script.scenario, ""))


def library_fingerprint(library: Library) -> str:
    """Changes whenever any script (or the feed format) changes."""
    scenarios = [sc.to_dict() for sc in library.scenarios()]
    scripts = [s.to_dict() for s in library.all()]
    payload = json.dumps([FEED_VERSION, scenarios, scripts], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def register_source(kb, library: Library | None = None) -> None:
    """Index the scripts beside the articles of `kb` (a kb.service.KnowledgeBase)."""

    def lib() -> Library:
        return library if library is not None else default_library()

    kb.add_source(
        SOURCE_NAME,
        lambda: script_documents(lib()),
        doctype=DOCTYPE,
        fingerprint=lambda: library_fingerprint(lib()),
    )


# -- usage events -------------------------------------------------------------


class UsageLog:
    """Copy events of scripts and the usage report built from them."""

    def __init__(self, store: Store):
        self.store = store

    def record(
        self, script_id: str, *, user_id: int, username: str, channel: str = "", via: str = "copy"
    ) -> dict:
        """Record one use of a script (who, when, which channel)."""
        if channel and channel not in CHANNELS:
            raise ValidationError(f"字段 channel 无效，应为 {' / '.join(CHANNELS)} 之一")
        event = {
            "at": now_iso(),
            "script_id": script_id,
            "user_id": user_id,
            "username": username,
            "channel": channel,
            "via": via,
        }
        repo.record(self.store.database, event)
        return event

    def report(self, library: Library, *, days: int | None = None) -> dict:
        """Which scripts are used, by whom, how often, and which are never used."""
        since = ""
        if days:
            start = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
            since = start.isoformat(timespec="milliseconds")
        rows = repo.uses(self.store.database, since)
        per_script: dict[str, dict] = {}
        per_user: dict[str, dict] = defaultdict(lambda: {"uses": 0, "scripts": set(), "last": ""})
        for script_id, username, channel, n, last in rows:
            entry = per_script.setdefault(
                script_id, {"uses": 0, "by_user": Counter(), "by_channel": Counter(), "last": ""}
            )
            entry["uses"] += n
            entry["by_user"][username] += n
            entry["by_channel"][channel or "unknown"] += n
            entry["last"] = max(entry["last"], last)
            user = per_user[username]
            user["uses"] += n
            user["scripts"].add(script_id)
            user["last"] = max(user["last"], last)
        scripts = []
        for script_id, entry in per_script.items():
            known = script_id in library
            script = library.get(script_id) if known else None
            scripts.append(
                {
                    "id": script_id,
                    "title": script.title if script else "",
                    "scenario": script.scenario if script else "",
                    "in_library": known,
                    "uses": entry["uses"],
                    "users": len(entry["by_user"]),
                    "by_user": dict(entry["by_user"].most_common()),
                    "by_channel": dict(entry["by_channel"].most_common()),
                    "last_used": entry["last"],
                }
            )
        scripts.sort(key=lambda s: (-s["uses"], s["id"]))
        users = [
            {
                "username": name,
                "uses": u["uses"],
                "scripts": len(u["scripts"]),
                "last_used": u["last"],
            }
            for name, u in per_user.items()
        ]
        users.sort(key=lambda u: (-u["uses"], u["username"]))
        never = [
            {"id": s.id, "title": s.title, "scenario": s.scenario, "shortcut": s.shortcut}
            for s in library.all()
            if s.id not in per_script
        ]
        return {
            "since": since,
            "days": days,
            "total": sum(s["uses"] for s in scripts),
            "scripts": scripts,
            "users": users,
            "never_used": never,
        }


# -- personal scripts ---------------------------------------------------------


@dataclass
class PersonalScript:
    """An agent's own script, shown beside the shared ones and visible only to them."""

    id: int
    user_id: int
    title: str
    text: str
    shortcut: str = ""
    tags: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=lambda: list(CHANNELS))
    created_at: str = ""
    updated_at: str = ""

    def render(self, values: Mapping[str, object] | None = None) -> Rendered:
        """Fill the placeholders like a shared script."""
        return render(self.text, values)

    def to_dict(self) -> dict:
        """The same shape as a shared script, with origin "personal" and a numeric id."""
        return {
            "id": self.id,
            "scenario": "mine",
            "title": self.title,
            "text": self.text,
            "placeholders": [
                {"name": name, "prompt": f"请输入{name}"} for name in placeholders(self.text)
            ],
            "shortcut": self.shortcut,
            "channels": list(self.channels),
            "tags": list(self.tags),
            "replaces": [],
            "origin": "personal",
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def _from_row(row: Mapping) -> PersonalScript:
    return PersonalScript(
        id=row["id"],
        user_id=row["user_id"],
        title=row["title"],
        text=row["text"],
        shortcut=row["shortcut"] or "",
        tags=json.loads(row["tags"] or "[]"),
        channels=json.loads(row["channels"] or "[]"),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class PersonalScripts:
    """CRUD of personal scripts; every call is scoped to one user (others' are NotFound)."""

    FIELDS = ("title", "text", "shortcut", "tags", "channels")

    def __init__(self, store: Store, library: Library | None = None):
        self.store = store
        self.library = library if library is not None else default_library()
        self.database = store.database

    def list(self, user_id: int) -> list[PersonalScript]:
        """The user's scripts, most recently changed first."""
        return [_from_row(r) for r in repo.list_personal(self.database, user_id)]

    def get(self, user_id: int, script_id: int) -> PersonalScript:
        """One of the user's scripts; another user's id is NotFound, like a missing one."""
        row = repo.get_personal(self.database, user_id, script_id)
        if row is None:
            raise NotFound(f"个人话术不存在：{script_id}")
        return _from_row(row)

    def by_shortcut(self, user_id: int, code: str) -> PersonalScript | None:
        """The user's script with this shortcut (`/x1`, `x1`, `／Ｘ1`), or None."""
        key = _shortcut_key(code)
        if not key:
            return None
        row = repo.personal_by_shortcut(self.database, user_id, key)
        return _from_row(row) if row is not None else None

    def create(self, user_id: int, data: object) -> PersonalScript:
        """Validate and add a script for the user."""
        # checks and insert in one transaction, the user's scripts locked: two
        # concurrent requests cannot both take the last place or the same shortcut
        with self.database.begin():
            repo.lock_user(self.database, user_id)
            fields = self._validate(user_id, data, current=None)
            if repo.count_personal(self.database, user_id) >= PERSONAL_MAX:
                raise ValidationError(f"个人话术已达上限（{PERSONAL_MAX} 条），请先删除不用的")
            stamp = now_iso()
            row = {"user_id": user_id, **fields, "created_at": stamp, "updated_at": stamp}
            new_id = repo.add_personal(self.database, row)
        return self.get(user_id, new_id)

    def update(
        self, user_id: int, script_id: int, data: object, *, based_on: str | None = None
    ) -> PersonalScript:
        """Replace the editable fields of one of the user's scripts.

        `based_on`: the script's `updated_at` as the editor read it (its version): when
        it was saved since (another tab), nothing is written and StaleVersion carries
        the current script and the diff of the text.  None: unchecked, as before."""
        with self.database.begin():
            repo.lock_user(self.database, user_id)
            current = self.get(user_id, script_id)
            fields = self._validate(user_id, data, current=current)
            if based_on is not None and based_on != current.updated_at:
                ops = diff_ops(current.text, fields["text"])
                raise StaleVersion(
                    f"这条个人话术已于 {current.updated_at[:19].replace('T', ' ')} 在别处保存过，"
                    f"你的修改未保存：请查看差异，重新打开后再改",
                    current_version=0,
                    details={
                        "current": current.to_dict(),
                        "diff": [{"field": "text", "label": "话术", "html": ops_html(ops),
                                  "ops": [list(o) for o in ops]}],
                    },
                )  # fmt: skip
            changed = {**fields, "updated_at": _later_than(current.updated_at)}
            if not repo.update_personal(self.database, user_id, script_id, changed):
                raise NotFound(f"个人话术不存在：{script_id}")
        return self.get(user_id, script_id)

    def delete(self, user_id: int, script_id: int) -> None:
        """Remove one of the user's scripts."""
        if not repo.delete_personal(self.database, user_id, script_id):
            raise NotFound(f"个人话术不存在：{script_id}")

    def _validate(self, user_id: int, data: object, current: PersonalScript | None) -> dict:
        if not isinstance(data, dict):
            raise ValidationError("请求体应为 JSON 对象")
        unknown = sorted(set(data) - set(self.FIELDS))
        if unknown:
            raise ValidationError(f"未知字段 {', '.join(unknown)}")
        title = _text_field(data, "title", TITLE_MAX)
        text = _text_field(data, "text", TEXT_MAX, multiline=True)
        bad = stray_braces(text)
        if bad:
            raise ValidationError(f"字段 text 的占位符格式有误：{bad[0]}（应为 {{名称}}）")
        shortcut = self._shortcut(user_id, data.get("shortcut"), current)
        tags = _str_list(data, "tags", TAGS_MAX, TAG_MAX)
        channels = _str_list(data, "channels", len(CHANNELS), 10) or list(CHANNELS)
        wrong = [c for c in channels if c not in CHANNELS]
        if wrong:
            raise ValidationError(f"字段 channels 无效：{wrong[0]}，应为 {' / '.join(CHANNELS)}")
        return {
            "title": title,
            "text": text,
            "shortcut": shortcut,
            "tags": json.dumps(tags, ensure_ascii=False),
            "channels": json.dumps(list(dict.fromkeys(channels))),
        }

    def _shortcut(self, user_id: int, raw: object, current: PersonalScript | None) -> str:
        if raw is None or raw == "":
            return ""
        if not isinstance(raw, str):
            raise ValidationError("字段 shortcut 应为字符串")
        key = _shortcut_key(raw)
        if not SHORTCUT_RE.match(key):
            raise ValidationError("字段 shortcut 应为 / 加 1 到 6 个小写字母或数字，如 /wd1")
        shared = self.library.by_shortcut(key)
        if shared is not None:
            raise ValidationError(f"字段 shortcut：{key} 已被共享话术「{shared.title}」使用")
        mine = self.by_shortcut(user_id, key)
        if mine is not None and (current is None or mine.id != current.id):
            raise ValidationError(f"字段 shortcut：{key} 已被你的话术「{mine.title}」使用")
        return key


def _later_than(stamp: str) -> str:
    """Now, or a millisecond after `stamp` if now is not later: updated_at is the
    version a save states it was based on, so every save must change it."""
    now = now_iso()
    if not stamp or now > stamp:
        return now
    try:
        then = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return now
    return (then + dt.timedelta(milliseconds=1)).isoformat(timespec="milliseconds")


def _shortcut_key(code: str) -> str:
    key = normalize((code or "").strip()).lower()
    return key if not key or key.startswith("/") else "/" + key


def _text_field(data: dict, name: str, limit: int, *, multiline: bool = False) -> str:
    value = data.get(name)
    if value is None:
        raise ValidationError(f"缺少字段 {name}")
    if not isinstance(value, str):
        raise ValidationError(f"字段 {name} 应为字符串")
    value = value.replace("\r\n", "\n").strip()
    if not multiline:
        value = " ".join(value.split())
    value = _CONTROL.sub("", value)
    if not value:
        raise ValidationError(f"字段 {name} 不能为空")
    if len(value) > limit:
        raise ValidationError(f"字段 {name} 过长（最多 {limit} 个字符）")
    return value


def _str_list(data: dict, name: str, max_items: int, max_chars: int) -> list[str]:
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"字段 {name} 应为字符串列表")
    items = [_CONTROL.sub("", v).strip() for v in value]
    items = [v for v in items if v]
    if len(items) > max_items:
        raise ValidationError(f"字段 {name} 最多 {max_items} 项")
    if any(len(v) > max_chars for v in items):
        raise ValidationError(f"字段 {name} 的每项最多 {max_chars} 个字符")
    return items
