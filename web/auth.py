"""Login, sessions, bearer tokens, CSRF and the one role table of the app.

Every view declares the permission it needs with ``@requires("…")``; the table
below says which roles hold each permission.  A test walks every route × role.
"""

from __future__ import annotations

import os
from functools import wraps
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect

from kb.accounts import ROLE_LABELS, Accounts, AuthError, FieldError, Throttled, User

from .errors import ApiError, error_response, wants_json

# permission -> roles that hold it.  Keep README's role table in step with this.
PERMISSIONS: dict[str, frozenset[str]] = {
    "search": frozenset({"agent", "trainer", "supervisor", "admin"}),
    "article.read": frozenset({"agent", "trainer", "supervisor", "admin"}),
    "article.edit": frozenset({"trainer", "admin"}),
    "article.review": frozenset({"trainer", "admin"}),
    "scripts.use": frozenset({"agent", "trainer", "supervisor", "admin"}),
    "scripts.edit": frozenset({"trainer", "admin"}),
    "scripts.report": frozenset({"trainer", "supervisor", "admin"}),
    "coach.check_reply": frozenset({"agent", "trainer", "supervisor", "admin"}),
    "coach.audit": frozenset({"supervisor", "admin"}),
    "coach.appeal": frozenset({"agent", "trainer", "supervisor", "admin"}),
    "rules.edit": frozenset({"supervisor", "admin"}),
    "coach.calibrate": frozenset({"supervisor", "admin"}),
    "account": frozenset({"agent", "trainer", "supervisor", "admin"}),
    "admin": frozenset({"admin"}),
}
PUBLIC = "public"

bp = Blueprint("auth", __name__)
csrf = CSRFProtect()
login_manager = LoginManager()


class SessionUser(UserMixin):
    """Flask-Login's view of a kb.accounts.User.

    For a browser login, get_id() is the server-side session id: it is all the
    signed cookie holds, and the user loader looks it up on every request.
    """

    def __init__(self, user: User, via: str = "session", sid: str = ""):
        self.user = user
        self.id = str(user.id)
        self.username = user.username
        self.roles = user.roles
        self.via = via
        self.sid = sid

    def get_id(self) -> str:
        return self.sid

    def can(self, permission: str) -> bool:
        return bool(PERMISSIONS[permission] & set(self.roles))


def accounts() -> Accounts:
    from . import get_kb

    acc = g.get("accounts")
    if acc is None:
        acc = g.accounts = Accounts(get_kb().store)
    return acc


def requires(permission: str):
    """Declare and enforce the permission a view needs (or PUBLIC)."""
    if permission != PUBLIC and permission not in PERMISSIONS:
        raise KeyError(permission)

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if permission != PUBLIC:
                if not current_user.is_authenticated:
                    if request.headers.get("Authorization"):
                        raise ApiError("API 令牌无效、已吊销，或其账号已停用", 401)
                    if wants_json():
                        raise ApiError("请先登录", 401)
                    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
                if not current_user.can(permission):
                    raise ApiError("没有权限执行此操作", 403)
            return view(*args, **kwargs)

        wrapper.permission = permission
        return wrapper

    return decorate


SECRET_KEY_SETTING = "web.secret_key"


def _secret_key(kb) -> bytes:
    """The cookie-signing key, kept in the database so every node shares it.  An
    instance made before keeps the key of its `secret_key` file (logins stay valid)."""
    stored = kb.store.get_setting(SECRET_KEY_SETTING)
    if stored is None:
        legacy = kb.root / "secret_key"
        try:
            candidate = legacy.read_bytes()
        except FileNotFoundError:
            candidate = os.urandom(32)
        stored = kb.store.setting_once(SECRET_KEY_SETTING, candidate.hex())
        legacy.unlink(missing_ok=True)  # from now on the database holds it
    return bytes.fromhex(stored)


class _SessionInterface(SecureCookieSessionInterface):
    """Cookies are marked Secure when SESSION_COOKIE_SECURE is set, or when the
    request itself came over https (directly, or as told by a trusted proxy)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or (
            has_request_context() and request.is_secure
        )


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _renew_csrf() -> None:
    """Drop the CSRF token: a token from before login (or logout) is no longer valid."""
    field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    session.pop(field, None)
    g.pop(field, None)


def init_app(app: Flask) -> None:
    app.session_interface = _SessionInterface()
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(app.extensions["kb"])
    for name, value in (
        ("SESSION_COOKIE_HTTPONLY", True),
        ("SESSION_COOKIE_SAMESITE", "Lax"),
        ("REMEMBER_COOKIE_HTTPONLY", True),
        ("REMEMBER_COOKIE_SAMESITE", "Lax"),
        ("REMEMBER_COOKIE_SECURE", app.config.get("SESSION_COOKIE_SECURE")),
    ):
        if not app.config.get(name):
            app.config[name] = value
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # checked below, skipping bearer-token calls
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    app.register_blueprint(bp)

    @app.before_request
    def _csrf():
        if request.method in ("GET", "HEAD", "OPTIONS") or request.routing_exception is not None:
            return
        if getattr(current_user, "via", "") == "token":
            return  # no cookie involved: a cross-site page cannot forge this request
        if not current_user.is_authenticated and request.endpoint not in _CSRF_WHEN_ANONYMOUS:
            return  # nobody to forge a request for: the view answers 401 (bad token, no login)
        csrf.protect()

    @app.before_request
    def _forced_password_change():
        """After an admin reset a password, the user may do nothing but choose a new one
        (or log out) in the browser.  Bearer tokens are their own credential: unaffected."""
        if request.endpoint in _OPEN_DURING_CHANGE or request.routing_exception is not None:
            return None
        if getattr(current_user, "via", "") != "session" or not current_user.user.must_change:
            return None
        if wants_json():
            raise ApiError("你的密码是管理员设置的临时密码，请先修改密码", 403)
        return redirect(url_for("auth.change_password"))

    @app.after_request
    def _security_headers(resp):
        for name, value in SECURITY_HEADERS.items():
            resp.headers.setdefault(name, value)
        return resp

    @app.errorhandler(CSRFError)
    def _csrf_error(_exc):
        return error_response("CSRF 校验失败，请刷新页面后重试", 400)

    @app.context_processor
    def _inject():
        return {"current_user": current_user, "ROLE_LABELS": ROLE_LABELS}


# what a user whose password must be changed may still reach
_OPEN_DURING_CHANGE = frozenset(
    {
        "auth.change_password",
        "auth.logout",
        "auth.logout_all",
        "auth.login",
        "static",
        "favicon",
        "healthz",
    }
)

# anonymous posts that still need a CSRF token (login CSRF; logout of a live session
# is checked above as an authenticated post)
_CSRF_WHEN_ANONYMOUS = frozenset({"auth.login", "auth.logout"})


@login_manager.user_loader
def _load_user(sid: str):
    user = accounts().session_user(sid)
    return SessionUser(user, sid=sid) if user else None


@login_manager.request_loader
def _load_from_token(req):
    header = req.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    user = accounts().user_for_token(header[7:].strip())
    return SessionUser(user, via="token") if user else None


@login_manager.unauthorized_handler
def _unauthorized():
    raise ApiError("请先登录", 401)


def _safe_next(target: str | None) -> str:
    if not target:
        return url_for("pages.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("pages.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
@requires(PUBLIC)
def login():
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""))
    username = (request.form.get("username") or "").strip()
    password = request.form.get("password") or ""
    acc = accounts()
    try:
        user = acc.authenticate(username, password, request.remote_addr or "")
    except AuthError as exc:
        status = 429 if isinstance(exc, Throttled) else 401
        return render_template(
            "login.html", next=request.form.get("next", ""), error=str(exc)
        ), status
    _end_session()
    session.clear()  # a fresh session: nothing (CSRF token included) carries over from before
    _renew_csrf()
    hours = float(current_app.config.get("SESSION_LIFETIME_HOURS") or 12)
    login_user(SessionUser(user, sid=acc.create_session(user, hours * 3600)))
    if user.must_change:
        flash("你的密码是管理员设置的临时密码（新账号或重设）：请先设置一个只有你知道的新密码")
        return redirect(url_for("auth.change_password"))
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/account/password", methods=["GET", "POST"])
@requires("account")
def change_password():
    """Any signed-in user changes their own password (required after an admin reset it).
    Every other session of the user ends; this browser gets a fresh one."""
    if current_user.via != "session":
        raise ApiError("请在浏览器中登录后修改密码", 403)
    forced = current_user.user.must_change
    if request.method == "GET":
        return render_template("change_password.html", forced=forced, errors={})
    acc = accounts()
    form = {k: (request.form.get(k) or "")[:1000] for k in ("current", "new", "confirm")}
    try:
        acc.change_own_password(
            current_user.username,
            form["current"],
            form["new"],
            form["confirm"],
            request.remote_addr or "",
        )
    except FieldError as exc:
        return render_template(
            "change_password.html", forced=forced, errors={exc.field: exc.message}
        ), 400
    except Throttled as exc:
        return render_template(
            "change_password.html", forced=forced, errors={"current": str(exc)}
        ), 429
    user = acc.by_name(current_user.username)
    session.clear()
    _renew_csrf()
    hours = float(current_app.config.get("SESSION_LIFETIME_HOURS") or 12)
    login_user(SessionUser(user, sid=acc.create_session(user, hours * 3600)))
    flash("密码已修改；其他设备上的登录已全部结束")
    return redirect(url_for("pages.index"))


def _end_session() -> None:
    if getattr(current_user, "via", "") == "session" and current_user.sid:
        accounts().end_session(current_user.sid)


@bp.post("/logout")
@requires(PUBLIC)
def logout():
    _end_session()
    logout_user()
    _renew_csrf()
    flash("已退出登录")
    return redirect(url_for("auth.login"))


@bp.post("/logout/all")
@requires("account")
def logout_all():
    """Sign the current user out of every browser (the sessions in the database)."""
    n = accounts().end_all_sessions(current_user.username, actor=actor())
    logout_user()
    _renew_csrf()
    flash(f"已在所有设备上退出登录（共 {n} 个会话）")
    return redirect(url_for("auth.login"))


def actor() -> str:
    """Who is acting, for revisions and the audit log."""
    return current_user.username if current_user.is_authenticated else "anonymous"
