"""Pinned answers: a trainer pins an article to a query, and to its variants.

A pin matches on the query's retrieval terms (textproc.terms, normalised), reduced
to their sorted set of characters: 发票怎么开 / 怎么开发票 / 發票怎麼開 segment
differently (发票 + 开, or 开发票) but share 开发票 as characters, so all three hit
the same pin.  Searches read a per-process map, reloaded when a version counter in
the meta table moves (checked at most every 0.5 s), so pins cost a search nothing
when there are none and one dict lookup when there are.
"""

from __future__ import annotations

import threading
import time

from . import textproc
from .errors import NotFound, ValidationError
from .store import Store, now_iso

VERSION_KEY = "pins.version"
CHECK_EVERY = 0.5
MAX_QUERY_CHARS = 200


def ensure_schema(store: Store) -> None:
    """Create the pins table (idempotent)."""
    db = store.db
    if "pins" in db.table_names():
        return
    with db.conn:
        db["pins"].create(
            {
                "id": int,
                "query": str,
                "match_key": str,
                "article_id": str,
                "created_at": str,
                "created_by": str,
            },
            pk="id",
            if_not_exists=True,
        )
        db["pins"].create_index(["match_key"], if_not_exists=True)


def pin_key(query: str) -> str:
    """What a query and its variants share: the sorted characters of its normalised terms."""
    return "".join(sorted(set("".join(textproc.normalize(t) for t in textproc.terms(query)))))


def _bump(store: Store) -> None:
    version = int(store.get_setting(VERSION_KEY) or 0) + 1
    store.db["meta"].insert({"key": VERSION_KEY, "value": str(version)}, pk="key", replace=True)


def _audit(store: Store, actor: str, action: str, target: str, detail: dict) -> None:
    from .accounts import Accounts  # only when a pin changes: `kbcoach search` starts faster

    Accounts(store).audit(actor, action, target, detail)


def list_pins(store: Store, limit: int = -1, offset: int = 0) -> list[dict]:
    """Pins, newest first (`limit` -1: every one), with their article's title (empty
    if the article is gone)."""
    ensure_schema(store)
    return list(
        store.db.query(
            "SELECT p.id, p.query, p.article_id, coalesce(a.title, '') AS title, "
            "p.created_at, p.created_by FROM pins p LEFT JOIN articles a ON a.id = p.article_id "
            "ORDER BY p.id DESC LIMIT ? OFFSET ?",
            [limit, offset],
        )
    )


def pin_count(store: Store) -> int:
    ensure_schema(store)
    return int(store.db.execute("SELECT count(*) FROM pins").fetchone()[0])


def get_pin(store: Store, pin_id: int) -> dict:
    ensure_schema(store)
    for pin in list_pins(store):
        if pin["id"] == pin_id:
            return pin
    raise NotFound(f"置顶「{pin_id}」不存在")


def add_pin(store: Store, query: str, article_id: str, *, actor: str = "system") -> dict:
    """Pin `article_id` to `query` (idempotent); NotFound for an unknown article."""
    ensure_schema(store)
    query = " ".join((query or "").split())
    if not query:
        raise ValidationError("字段 query 不能为空")
    if len(query) > MAX_QUERY_CHARS:
        raise ValidationError(f"字段 query 过长（最多 {MAX_QUERY_CHARS} 个字符）")
    key = pin_key(query)
    if not key:
        raise ValidationError("字段 query 没有可检索的词")
    article = store.get(article_id)  # NotFound for an unknown article
    if article.status != "published":
        raise ValidationError(
            f"文章「{article_id}」尚未发布（当前状态 {article.status}），发布后才能置顶：未发布的文章不会出现在搜索中"
        )
    row = store.db.execute(
        "SELECT id FROM pins WHERE match_key = ? AND article_id = ?", [key, article_id]
    ).fetchone()
    if row is not None:
        return {**get_pin(store, row[0]), "created": False}
    with store.db.conn:
        cur = store.db.execute(
            "INSERT INTO pins (query, match_key, article_id, created_at, created_by) "
            "VALUES (?, ?, ?, ?, ?)",
            [query, key, article_id, now_iso(), actor],
        )
        pin_id = cur.lastrowid
        _bump(store)
    _audit(store, actor, "pin.add", article_id, {"pin": pin_id, "query": query})
    return {**get_pin(store, pin_id), "created": True}


def remove_pin(store: Store, pin_id: int, *, actor: str = "system") -> dict:
    """Delete one pin; NotFound when there is no such pin."""
    pin = get_pin(store, pin_id)
    with store.db.conn:
        store.db.execute("DELETE FROM pins WHERE id = ?", [pin_id])
        _bump(store)
    _audit(store, actor, "pin.remove", pin["article_id"], {"pin": pin_id, "query": pin["query"]})
    return pin


class PinMap:
    """Per-process map of match key -> pinned article ids, for the search engine."""

    def __init__(self, kb):
        self.kb = kb
        self._map: dict[str, list[str]] = {}
        self._version: str | None = None
        self._checked = -CHECK_EVERY
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < CHECK_EVERY:
            return
        with self._lock:
            if now - self._checked < CHECK_EVERY:
                return
            store = self.kb.store
            version = store.get_setting(VERSION_KEY, "0")
            if version != self._version:
                table: dict[str, list[str]] = {}
                if "pins" in store.db.table_names():
                    for key, aid in store.db.execute(
                        "SELECT match_key, article_id FROM pins ORDER BY id"
                    ):
                        table.setdefault(key, []).append(aid)
                self._map, self._version = table, version
            self._checked = now

    def invalidate(self) -> None:
        """Reload on the next lookup (this process just changed a pin)."""
        self._checked = -CHECK_EVERY

    def lookup(self, query: str) -> list[str]:
        """Article ids pinned to `query` or one of its variants, in pinning order."""
        self._refresh()
        if not self._map:
            return []
        return list(self._map.get(pin_key(query), ()))


def attach(kb) -> PinMap:
    """Make `kb`'s search engine put pinned articles first (idempotent)."""
    pins = getattr(kb.engine, "pins", None)
    if not isinstance(pins, PinMap):
        pins = kb.engine.pins = PinMap(kb)
    return pins
