"""Standard scripts on the web: JSON API, the agent panel, a script page, the usage report.

The library is loaded once per app and indexed beside the articles (doctype "script"),
so the one search box finds both; the search API asks `search_extras` for the script
fields of its hits and for a shortcut typed as the whole query (`/dd`).
"""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, g, render_template, request, url_for
from flask_login import current_user

from scripts_lib import CATEGORY_LABELS, CHANNEL_LABELS, CHANNELS, Library, Script
from scripts_lib.render import render, to_html, to_plain
from scripts_lib.usage import (
    SOURCE_NAME,
    PersonalScripts,
    UsageLog,
)

from . import get_kb
from .auth import requires
from .errors import ApiError, json_request

bp = Blueprint("scripts", __name__)

BODY_MAX = 64 * 1024  # bytes of a JSON request body
VALUES_MAX = 50  # placeholder values per render
VALUE_MAX = 500  # characters per value
NAME_MAX = 32  # characters per placeholder name
REPORT_DAYS_MAX = 3660


def init_app(app: Flask) -> None:
    """Index the core's library beside the articles when it changed, add the routes."""
    library = app.extensions["services"].scripts
    for err in library.errors:
        app.logger.warning("scripts library: %s", err)
    app.extensions["scripts"] = library
    kb = app.extensions["kb"]
    try:
        kb.sync_source(SOURCE_NAME)
    except Exception:  # the app still serves articles; the next start retries
        app.logger.exception("could not index the scripts library")
    app.register_blueprint(bp)


def library() -> Library:
    """The app's scripts library."""
    return current_app.extensions["scripts"]


def usage_log() -> UsageLog:
    log = g.get("script_usage")
    if log is None:
        log = g.script_usage = UsageLog(get_kb().store)
    return log


def personal() -> PersonalScripts:
    mine = g.get("personal_scripts")
    if mine is None:
        mine = g.personal_scripts = PersonalScripts(get_kb().store, library())
    return mine


def _user_id() -> int:
    return current_user.user.id


# -- presentation ---------------------------------------------------------------


def script_payload(script: Script) -> dict:
    """A shared script as the API and the panel see it."""
    lib = library()
    titles = {sc.name: sc.title for sc in lib.scenarios()}
    return {
        **script.to_dict(),
        "scenario_title": titles.get(script.scenario, script.scenario),
        "url": url_for("scripts.page", script_id=script.id),
    }


def personal_payload(mine) -> dict:
    """A personal script as the API and the panel see it."""
    return {**mine.to_dict(), "scenario_title": "我的话术", "url": ""}


@bp.app_context_processor
def _panel_context():
    def scripts_groups():
        return library().grouped()

    return {"scripts_groups": scripts_groups, "SCRIPT_CHANNELS": CHANNEL_LABELS}


# -- request bodies -------------------------------------------------------------


def json_body(allowed: tuple[str, ...]) -> dict:
    """The JSON object of the request (empty body: {}); 400 / 413 in the one error shape."""
    data = json_request(BODY_MAX)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ApiError("请求体应为 JSON 对象", 400)
    unknown = sorted(set(data) - set(allowed))
    if allowed and unknown:
        raise ApiError(f"未知字段 {', '.join(unknown)}", 400)
    return data


def render_values(data: dict) -> dict[str, str]:
    """Validated `values` of a render request: names to strings."""
    values = data.get("values")
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ApiError("字段 values 应为对象（占位符名称 → 值）", 400)
    if len(values) > VALUES_MAX:
        raise ApiError(f"字段 values 最多 {VALUES_MAX} 项", 400)
    out: dict[str, str] = {}
    for name, value in values.items():
        if len(name) > NAME_MAX:
            raise ApiError(f"字段 values 的名称过长：{name[:NAME_MAX]}…", 400)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ApiError(f"字段 values.{name} 应为字符串", 400)
        text = str(value)
        if len(text) > VALUE_MAX:
            raise ApiError(f"字段 values.{name} 过长（最多 {VALUE_MAX} 个字符）", 400)
        out[name] = text
    return out


def _query_args() -> tuple[str, str | None, str | None]:
    q = (request.args.get("q") or "").strip()
    max_chars = current_app.config["QUERY_MAX_CHARS"]
    if len(q) > max_chars:
        raise ApiError(f"参数 q 过长（最多 {max_chars} 个字符）", 400)
    scenario = request.args.get("scenario") or None
    names = [sc.name for sc in library().scenarios()]
    if scenario and scenario not in names:
        raise ApiError(f"参数 scenario 无效，应为 {' / '.join(names)} 之一", 400)
    channel = request.args.get("channel") or None
    if channel and channel not in CHANNELS:
        raise ApiError(f"参数 channel 无效，应为 {' / '.join(CHANNELS)} 之一", 400)
    return q, scenario, channel


def _report_days() -> int | None:
    raw = (request.args.get("days") or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= REPORT_DAYS_MAX:
        raise ApiError(f"参数 days 应为 1 到 {REPORT_DAYS_MAX} 之间的整数", 400)
    return int(raw)


# -- shared scripts API -----------------------------------------------------------


@bp.get("/api/v1/scripts")
@requires("scripts.use")
def api_list():
    q, scenario, channel = _query_args()
    found = library().search(q, scenario=scenario, channel=channel)
    counts: dict[str, int] = {}
    for s in found:
        counts[s.scenario] = counts.get(s.scenario, 0) + 1
    return {
        "ok": True,
        "total": len(found),
        "scenarios": [
            {**sc.to_dict(), "count": counts.get(sc.name, 0)} for sc in library().scenarios()
        ],
        "scripts": [script_payload(s) for s in found],
    }


@bp.get("/api/v1/scripts/usage")
@requires("scripts.report")
def api_usage():
    return {"ok": True, **usage_log().report(library(), days=_report_days())}


@bp.get("/api/v1/scripts/<script_id>")
@requires("scripts.use")
def api_get(script_id: str):
    return {"ok": True, "script": script_payload(library().get(script_id))}


@bp.post("/api/v1/scripts/<script_id>/render")
@requires("scripts.use")
def api_render(script_id: str):
    script = library().get(script_id)
    values = render_values(json_body(("values",)))
    rendered = render(script, values)
    return {
        "ok": True,
        "id": script.id,
        "text": to_plain(rendered),
        "missing": rendered.missing,
        "html": to_html(rendered),
    }


@bp.post("/api/v1/scripts/<script_id>/used")
@requires("scripts.use")
def api_used(script_id: str):
    script = library().get(script_id)
    data = json_body(("channel",))
    channel = data.get("channel") or ""
    if not isinstance(channel, str):
        raise ApiError("字段 channel 应为字符串", 400)
    event = usage_log().record(
        script.id, user_id=_user_id(), username=current_user.username, channel=channel
    )
    return {"ok": True, "recorded": {k: event[k] for k in ("script_id", "at", "channel")}}, 201


# -- personal scripts API ---------------------------------------------------------


@bp.get("/api/v1/my/scripts")
@requires("scripts.use")
def my_list():
    return {"ok": True, "scripts": [personal_payload(s) for s in personal().list(_user_id())]}


@bp.post("/api/v1/my/scripts")
@requires("scripts.use")
def my_create():
    mine = personal().create(_user_id(), json_body(PersonalScripts.FIELDS))
    return {"ok": True, "script": personal_payload(mine)}, 201


@bp.get("/api/v1/my/scripts/<int:personal_id>")
@requires("scripts.use")
def my_get(personal_id: int):
    return {"ok": True, "script": personal_payload(personal().get(_user_id(), personal_id))}


@bp.put("/api/v1/my/scripts/<int:personal_id>")
@requires("scripts.use")
def my_update(personal_id: int):
    """Replace a personal script's fields; "updated_at" (as GET gave it) makes the save
    refuse (409, with the current script and a diff) when it was saved since."""
    from kb.errors import StaleVersion

    data = json_body((*PersonalScripts.FIELDS, "updated_at"))
    based_on = data.pop("updated_at", None)
    if based_on is not None and not isinstance(based_on, str):
        raise ApiError("字段 updated_at 应为字符串（GET 返回的 updated_at）", 400)
    try:
        mine = personal().update(_user_id(), personal_id, data, based_on=based_on)
    except StaleVersion as exc:
        return {"ok": False, "error": exc.message, "status": 409, **exc.details}, 409
    return {"ok": True, "script": personal_payload(mine)}


@bp.delete("/api/v1/my/scripts/<int:personal_id>")
@requires("scripts.use")
def my_delete(personal_id: int):
    personal().delete(_user_id(), personal_id)
    return {"ok": True}


# -- pages ------------------------------------------------------------------------


@bp.get("/scripts/usage")
@requires("scripts.report")
def usage_page():
    days = _report_days()
    report = usage_log().report(library(), days=days)
    titles = {sc.name: sc.title for sc in library().scenarios()}
    return render_template(
        "scripts_usage.html", report=report, days=days, titles=titles, channels=CHANNEL_LABELS
    )


@bp.get("/scripts/<script_id>")
@requires("scripts.use")
def page(script_id: str):
    """One script with a fill-in form; works without JavaScript (values in the query)."""
    script = library().get(script_id)
    values = {name: request.args.get(name, "")[:VALUE_MAX] for name in script.placeholders}
    rendered = render(script, values)
    return render_template(
        "scripts_page.html",
        script=script_payload(script),
        values=values,
        text=to_plain(rendered),
        complete=rendered.complete,
        parts=rendered.parts,
        channels=CHANNEL_LABELS,
        category_labels=CATEGORY_LABELS,
    )
