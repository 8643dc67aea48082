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

from storage import pins as repo

from . import textproc
from .errors import NotFound, ValidationError
from .models import STATUS_LABELS
from .store import Store, now_iso

CHECK_EVERY = 0.5
UNPUBLISHED = {"draft": "文章仍是草稿", "review": "文章待审核", "archived": "文章已归档"}
MAX_QUERY_CHARS = 200


def pin_key(query: str) -> str:
    """What a query and its variants share: the sorted characters of its normalised terms."""
    return "".join(sorted(set("".join(textproc.normalize(t) for t in textproc.terms(query)))))


def _audit(store: Store, actor: str, action: str, target: str, detail: dict) -> None:
    from .accounts import Accounts  # only when a pin changes: `kbcoach search` starts faster

    Accounts(store).audit(actor, action, target, detail)


def _flagged(pin: dict) -> dict:
    """A pin with `shown` (agents see it: its article is published) and `problem` (why
    not, in Chinese; empty when shown)."""
    status = pin.get("status")
    if status is None:
        problem = "文章已删除"
    elif status != "published":
        problem = UNPUBLISHED.get(status, f"文章状态为{STATUS_LABELS.get(status, status)}")
    else:
        problem = ""
    return {**pin, "shown": not problem, "problem": problem}


def list_pins(store: Store, limit: int = -1, offset: int = 0) -> list[dict]:
    """Pins, newest first (`limit` -1: every one), with their article's title (empty
    if the article is gone) and status; `shown` is False for a pin search skips (its
    article is not published, or gone), `problem` says why."""
    return [_flagged(p) for p in repo.list_pins(store.database, limit, offset)]


def unpublished_count(store: Store) -> int:
    """Pins that search skips because their article is not published or is gone."""
    return repo.unpublished_count(store.database)


def pin_count(store: Store) -> int:
    return repo.pin_count(store.database)


def get_pin(store: Store, pin_id: int) -> dict:
    pin = repo.get_pin(store.database, pin_id)
    if pin is None:
        raise NotFound(f"置顶「{pin_id}」不存在")
    return _flagged(pin)


def add_pin(store: Store, query: str, article_id: str, *, actor: str = "system") -> dict:
    """Pin `article_id` to `query` (idempotent); NotFound for an unknown article."""
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
    pin_id, created = repo.add_pin(store.database, query, key, article_id, now_iso(), actor)
    if created:
        _audit(store, actor, "pin.add", article_id, {"pin": pin_id, "query": query})
    return {**get_pin(store, pin_id), "created": created}


def remove_pin(store: Store, pin_id: int, *, actor: str = "system") -> dict:
    """Delete one pin; NotFound when there is no such pin."""
    pin = get_pin(store, pin_id)
    if not repo.remove_pin(store.database, pin_id):
        raise NotFound(f"置顶「{pin_id}」不存在")
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
            database = self.kb.store.database
            if repo.current_version(database) != self._version:
                self._version, self._map = repo.pin_map(database)
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
