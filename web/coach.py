"""Coach API: check whole conversations (supervisors) and draft replies (agents)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from flask import Blueprint, current_app, request

from coach.limits import CHECK_SECONDS, MAX_REPLY_CHARS

from .auth import requires
from .errors import ApiError, json_request

bp = Blueprint("coach", __name__, url_prefix="/api/v1/coach")
MAX_BATCH = 1000
BODY_MAX = 4 * 1024 * 1024
_lock = threading.Lock()
RULES_RECHECK = 1.0  # seconds between looks at the team rule-pack version


def checker_for(version: int):
    """The Checker of a team rule-pack version, built once per process and kept."""
    cache = current_app.extensions.setdefault("coach.checkers", {})
    chk = cache.get(version)
    if chk is None:
        with _lock:
            chk = cache.get(version)
            if chk is None:
                from coach.checker import Checker
                from coach.rulebook import RuleBook

                from . import get_kb

                pack = RuleBook(get_kb().store, current_app.config["INSTANCE"]).pack(version)
                seconds = current_app.config.get("COACH_CHECK_SECONDS", CHECK_SECONDS)
                chk = cache[version] = Checker(pack, seconds=seconds)
    return chk


def checker():
    """The Checker of the current team rules (rules and segmenter load once, ~1 s);
    the version is looked up at most once a second, so every worker follows a save."""
    now = time.monotonic()
    seen = current_app.extensions.get("coach.rules_seen")
    if seen is None or now - seen[0] > RULES_RECHECK:
        from coach.rulebook import RuleBook

        from . import get_kb

        version = RuleBook(get_kb().store, current_app.config["INSTANCE"]).version()
        seen = current_app.extensions["coach.rules_seen"] = (now, version)
    return checker_for(seen[1])


def json_body() -> object:
    body = json_request(BODY_MAX)
    if body is None:
        raise ApiError("缺少 JSON 请求体", 400)
    return body


@bp.post("/check")
@requires("coach.audit")
def check():
    """A conversation, a list of them, or {"conversations": [...]} → the JSON report."""
    body = json_body()
    min_level = request.args.get("min_level", "info")
    records = body.get("conversations", body) if isinstance(body, dict) else body
    if isinstance(records, list) and len(records) > MAX_BATCH:
        raise ApiError(f"一次最多检查 {MAX_BATCH} 个会话", 413)
    if not isinstance(records, list | dict):
        raise ApiError("conversations 应为会话对象或会话数组", 400)
    from coach.report import UsageError, check_records

    try:
        report = check_records(records, checker(), min_level)
    except UsageError as exc:
        raise ApiError(str(exc), 400) from None
    # the rule sources as names, not the server's file paths
    report["summary"]["rules"] = [Path(p).name for p in report["summary"]["rules"]]
    return {"ok": True, **report}


@bp.post("/check-reply")
@requires("coach.check_reply")
def check_reply():
    """{"text", "context"?, "position"?} → findings for a draft reply before it is sent.

    `position` is "middle" (default: mid-chat, no greeting or closing finding),
    "opening" (the first agent turn: greeting rules too) or "closing" (the last one:
    closing rules too)."""
    body = json_body()
    if not isinstance(body, dict):
        raise ApiError("请求体应为 JSON 对象", 400)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ApiError("字段 text 应为非空字符串", 400)
    if len(text) > MAX_REPLY_CHARS:
        raise ApiError(f"字段 text 过长（最多 {MAX_REPLY_CHARS} 个字符）", 413)
    context = body.get("context") or []
    if not isinstance(context, list) or not all(
        isinstance(t, dict) and isinstance(t.get("text", ""), str) for t in context
    ):
        raise ApiError('字段 context 应为 [{"role", "text"}] 数组', 400)
    from coach.checker import REPLY_POSITIONS

    position = body.get("position") or "middle"
    if not isinstance(position, str) or position not in REPLY_POSITIONS:
        raise ApiError("字段 position 应为 opening、middle 或 closing", 400)
    context = context[-50:]
    for n, t in enumerate(context, 1):
        if len(t.get("text") or "") > MAX_REPLY_CHARS:
            raise ApiError(f"context 第{n}句过长（每句最多 {MAX_REPLY_CHARS} 个字符）", 413)
    started = time.perf_counter()
    unfinished: list[dict] = []
    findings = checker().check_reply(text, context, position, unfinished)
    return {
        "ok": True,
        "findings": findings,
        "clean": not findings and not unfinished,
        "unfinished": unfinished,
        "took_ms": round((time.perf_counter() - started) * 1000, 3),
    }
