"""One error shape for the API: {"ok": false, "error": "…", "status": N}."""

from __future__ import annotations

import json

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from kb.errors import KbError

MESSAGES = {
    400: "请求有误",
    401: "请先登录",
    403: "没有权限",
    404: "页面或资源不存在",
    405: "不支持该请求方法",
    413: "请求内容过大",
    415: "不支持的内容类型",
    429: "请求过于频繁，请稍后再试",
    500: "服务器内部错误",
}


class ApiError(Exception):
    """An error raised by a view, with a Chinese message and an HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def error_response(message: str, status: int):
    if wants_json():
        resp = jsonify({"ok": False, "error": message, "status": status})
        resp.status_code = status
        return resp
    back = request.referrer or ""
    same_site = back.startswith(request.host_url) and (
        back != request.url or request.method != "GET"  # a failed form post: back to the form
    )
    return render_template(
        "error.html", message=message, status=status, back=back if same_site else ""
    ), status


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.message, exc.status)

    from storage import UNAVAILABLE

    def _database_down(exc):
        # 503: a proxy in front (proxy_next_upstream http_503) tries another node
        app.logger.warning("database unavailable: %s", type(exc).__name__)
        return error_response("数据库暂时无法连接，请稍后再试", 503)

    for exc_class in UNAVAILABLE:
        app.register_error_handler(exc_class, _database_down)

    @app.errorhandler(KbError)
    def _kb_error(exc: KbError):
        return error_response(str(exc), exc.status)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        message = MESSAGES.get(status, exc.name)
        limit = app.config.get("MAX_CONTENT_LENGTH")
        if status == 413 and limit:
            message = f"{message}（单次上传合计不超过 {limit / 1024 / 1024:g} MB）"
        return error_response(message, status)

    @app.errorhandler(Exception)
    def _internal(exc: Exception):
        app.logger.exception("unhandled error on %s", request.path)
        return error_response(MESSAGES[500], 500)


def json_request(max_bytes: int) -> object:
    """The request's JSON value, or an ApiError: 413 over `max_bytes`, 415 when the
    body is not declared as JSON, 400 when it does not parse (nesting too deep too)."""
    if (request.content_length or 0) > max_bytes:
        raise ApiError(f"请求内容过大（最多 {max_bytes // 1024} KB）", 413)
    raw = request.get_data(cache=True)
    if len(raw) > max_bytes:
        raise ApiError(f"请求内容过大（最多 {max_bytes // 1024} KB）", 413)
    if raw.strip() and not request.is_json:
        raise ApiError("请求体应为 JSON（Content-Type: application/json）", 415)
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except RecursionError:
        raise ApiError("请求体 JSON 嵌套过深", 400) from None
    except (ValueError, UnicodeDecodeError):
        raise ApiError("请求体不是有效的 JSON", 400) from None
