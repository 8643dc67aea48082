"""Admin pages: users (add, roles, disable, reset a password), API tokens (created and
shown once, revoked) and the audit log (filters, paging, CSV export).

Every change goes through kb.accounts, the same calls the CLI makes, so it is
audit-logged the same way (the actor is the signed-in admin).  Form messages are
checked here on the server and shown next to their field.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from core import auditlog
from kb.accounts import FieldError, Refused
from kb.errors import KbError
from kb.models import ROLES

from .auth import accounts, actor, requires
from .supervise import LIST_PER_PAGE, LOG_PER_PAGE, page_arg

bp = Blueprint("admin", __name__)
MAX_FIELD = 200  # characters kept of a form field (longer is refused by the checks)


def _field(name: str) -> str:
    return (request.form.get(name) or "")[: MAX_FIELD + 1]


# -- users -------------------------------------------------------------------------------


def _users_page(form=None, errors=None, row_errors=None, status: int = 200):
    return render_template(
        "admin_users.html",
        users=accounts().overview(),
        roles=ROLES,
        form=form or {"username": "", "roles": [], "must_change": True},
        errors=errors or {},
        row_errors=row_errors or {},
    ), status


@bp.get("/admin/users")
@requires("admin")
def users():
    return _users_page()


@bp.post("/admin/users")
@requires("admin")
def user_add():
    form = {
        "username": _field("username").strip(),
        "roles": request.form.getlist("roles"),
        "must_change": bool(request.form.get("must_change")),
    }
    try:
        user = accounts().add(
            form["username"],
            _field("password"),
            form["roles"] or [],
            actor=actor(),
            must_change=form["must_change"],
        )
    except FieldError as exc:
        return _users_page(form, {exc.field or "username": exc.message}, status=400)
    flash(f"已添加账号 {user.username}")
    return redirect(url_for("admin.users"))


def _row_failure(username: str, field: str, exc: KbError):
    message = exc.message if isinstance(exc, FieldError) else str(exc)
    return _users_page(row_errors={username: {field: message}}, status=exc.status)


@bp.post("/admin/users/<username>/roles")
@requires("admin")
def user_roles(username: str):
    roles = request.form.getlist("roles")
    try:
        accounts().set_roles(username, roles, actor=actor())
    except (FieldError, Refused) as exc:
        return _row_failure(username, "roles", exc)
    flash(f"已修改 {username} 的角色")
    return redirect(url_for("admin.users"))


@bp.post("/admin/users/<username>/disable")
@requires("admin")
def user_disable(username: str):
    try:
        accounts().set_disabled(username, True, actor=actor())
    except Refused as exc:
        return _row_failure(username, "state", exc)
    flash(f"已停用 {username}：其 API 令牌已全部吊销，登录会话已全部结束")
    return redirect(url_for("admin.users"))


@bp.post("/admin/users/<username>/enable")
@requires("admin")
def user_enable(username: str):
    accounts().set_disabled(username, False, actor=actor())
    flash(f"已启用 {username}（停用时吊销的 API 令牌不会恢复，需要时请新建）")
    return redirect(url_for("admin.users"))


@bp.post("/admin/users/<username>/password")
@requires("admin")
def user_password(username: str):
    """Reset a password: the user must choose a new one at the next login."""
    try:
        accounts().set_password(username, _field("password"), actor=actor(), must_change=True)
    except FieldError as exc:
        return _row_failure(username, "password", exc)
    flash(f"已重设 {username} 的密码：其登录会话已全部结束，下次登录后须先修改密码")
    return redirect(url_for("admin.users"))


# -- API tokens -----------------------------------------------------------------------------


def _tokens_page(form=None, errors=None, secret: str = "", status: int = 200):
    acc = accounts()
    page = page_arg()
    resp = render_template(
        "admin_tokens.html",
        tokens=acc.all_tokens(LIST_PER_PAGE, (page - 1) * LIST_PER_PAGE),
        token_count=acc.token_count(),
        page=page,
        per_page=LIST_PER_PAGE,
        users=[u for u in acc.list() if not u.disabled],
        form=form or {"username": request.args.get("user", ""), "name": ""},
        errors=errors or {},
        secret=secret,
    )
    headers = {"Cache-Control": "no-store"} if secret else {}
    return resp, status, headers


@bp.get("/admin/tokens")
@requires("admin")
def tokens():
    return _tokens_page()


@bp.post("/admin/tokens")
@requires("admin")
def token_create():
    """Create a token and show it on this one response (only its hash is kept)."""
    form = {"username": _field("username").strip(), "name": _field("name").strip()}
    try:
        secret = accounts().create_token(form["username"], form["name"], actor=actor())
    except FieldError as exc:
        return _tokens_page(form, {exc.field or "username": exc.message}, status=400)
    return _tokens_page({"username": "", "name": ""}, secret=secret, status=201)


@bp.post("/admin/tokens/<int:token_id>/revoke")
@requires("admin")
def token_revoke(token_id: int):
    accounts().revoke_token(str(token_id), actor=actor())  # NotFound → 404
    flash(f"已吊销令牌 #{token_id}")
    return redirect(url_for("admin.tokens"))


# -- audit log ------------------------------------------------------------------------------


@bp.get("/admin/audit-log")
@requires("admin")
def audit_log():
    acc = accounts()
    filt = auditlog.AuditFilter.from_args(request.args)
    where = filt.where()
    page = page_arg()
    entries = acc.audit_entries(LOG_PER_PAGE, (page - 1) * LOG_PER_PAGE, where)
    return render_template(
        "audit_log.html",
        entries=[{**e, "items": auditlog.detail_items(e["detail"])} for e in entries],
        count=acc.audit_count(where),
        page=page,
        per_page=LOG_PER_PAGE,
        filt=filt,
        actors=acc.audit_actors(),
        actions=auditlog.ACTION_NAMES,
        groups=auditlog.ACTION_GROUPS,
    ), 400 if filt.errors else 200


@bp.get("/admin/audit-log.csv")
@requires("admin")
def audit_log_csv():
    """The filtered entries as CSV (UTF-8 with BOM), streamed a chunk at a time."""
    filt = auditlog.AuditFilter.from_args(request.args)
    if filt.errors:
        field, message = next(iter(filt.errors.items()))
        raise FieldError(message, field)
    acc = accounts()
    body = auditlog.csv_chunks(auditlog.iter_entries(acc, filt.where()))
    return Response(
        stream_with_context(body),
        mimetype="text/csv",
        headers={
            "Content-Disposition": "attachment; filename=audit-log.csv",
            "Cache-Control": "no-store",
        },
    )


@bp.app_template_filter("action_name")
def action_name(action: str) -> str:
    return auditlog.action_name(action)
