"""Login, sessions, bearer tokens, CSRF and the one role table of the app.

Every view declares the permission it needs with ``@requires("…")``; the table
below says which roles hold each permission.  A test walks every route × role.
"""

from __future__ import annotations

import os
from functools import wraps
from pathlib import Path
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect

from kb.accounts import ROLE_LABELS, Accounts, AuthError, User

from .errors import ApiError, error_response, wants_json

# permission -> roles that hold it.  Keep README's role table in step with this.
PERMISSIONS: dict[str, frozenset[str]] = {
    "search": frozenset({"agent", "trainer", "supervisor", "admin"}),
    "article.read": frozenset({"agent", "trainer", "supervisor", "admin"}),
    "article.edit": frozenset({"trainer", "admin"}),
    "scripts.use": frozenset({"agent", "trainer", "supervisor", "admin"}),
    "scripts.edit": frozenset({"trainer", "admin"}),
    "scripts.report": frozenset({"trainer", "supervisor", "admin"}),
    "coach.check_reply": frozenset({"agent", "trainer", "supervisor", "admin"}),
    "coach.audit": frozenset({"supervisor", "admin"}),
    "coach.appeal": frozenset({"agent", "trainer", "supervisor", "admin"}),
    "rules.edit": frozenset({"supervisor", "admin"}),
    "admin": frozenset({"admin"}),
}
PUBLIC = "public"

bp = Blueprint("auth", __name__)
csrf = CSRFProtect()
login_manager = LoginManager()


class SessionUser(UserMixin):
    """Flask-Login's view of a kb.accounts.User."""

    def __init__(self, user: User, via: str = "session"):
        self.user = user
        self.id = str(user.id)
        self.username = user.username
        self.roles = user.roles
        self.via = via

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


def _secret_key(instance: Path) -> bytes:
    path = instance / "secret_key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        instance.mkdir(parents=True, exist_ok=True)
        key = os.urandom(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        return key
    except OSError:
        return os.urandom(32)


def init_app(app: Flask) -> None:
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(Path(app.config["INSTANCE"]))
    for name, value in (
        ("SESSION_COOKIE_HTTPONLY", True),
        ("SESSION_COOKIE_SAMESITE", "Lax"),
        ("REMEMBER_COOKIE_HTTPONLY", True),
        ("REMEMBER_COOKIE_SAMESITE", "Lax"),
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
        csrf.protect()

    @app.errorhandler(CSRFError)
    def _csrf_error(_exc):
        return error_response("CSRF 校验失败，请刷新页面后重试", 400)

    @app.context_processor
    def _inject():
        return {"current_user": current_user, "ROLE_LABELS": ROLE_LABELS}


@login_manager.user_loader
def _load_user(user_id: str):
    user = accounts().get(int(user_id)) if user_id.isdigit() else None
    return SessionUser(user) if user and not user.disabled else None


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
    remote = request.remote_addr or ""
    if acc.throttled(username, remote):
        return render_template(
            "login.html",
            next=request.form.get("next", ""),
            error="登录失败次数过多，请 15 分钟后再试",
        ), 429
    try:
        user = acc.authenticate(username, password, remote)
    except AuthError as exc:
        return render_template("login.html", next=request.form.get("next", ""), error=str(exc)), 401
    login_user(SessionUser(user))
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
@requires(PUBLIC)
def logout():
    logout_user()
    flash("已退出登录")
    return redirect(url_for("auth.login"))


def actor() -> str:
    """Who is acting, for revisions and the audit log."""
    return current_user.username if current_user.is_authenticated else "anonymous"
