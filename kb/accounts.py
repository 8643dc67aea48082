"""Users, roles, login sessions, API tokens, login throttling and the append-only audit log.

Passwords are hashed with werkzeug.security (scrypt); API tokens and session ids
are random and only their SHA-256 is stored.  Sessions live in the database (none
in a process's memory), so every worker process and every node sharing the database
sees a logout, a password change or a disabled account at once.  Login attempts are
reserved atomically (storage/accounts.py: one writer at a time on SQLite, an advisory
lock per throttling key on PostgreSQL) before the password is checked, so concurrent
guesses from any process or node cannot overrun the limit.  The audit log refuses
updates and deletes in the database itself (triggers, on both backends), so history
cannot be rewritten through the app.  The SQL lives in storage/accounts.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

from werkzeug.security import check_password_hash, generate_password_hash

from storage.accounts import AccountRepository

from .errors import KbError, NotFound, ValidationError
from .models import ROLE_LABELS, ROLES  # noqa: F401 - re-exported
from .store import Store, now_iso

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-\u4e00-\u9fff]{2,32}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 200
MAX_TOKEN_NAME = 100
LOGIN_WINDOW_S = 15 * 60
# Failed logins allowed within the window: for one name from one address; from one
# address whatever the names; and for one name from everywhere, the ceiling against
# guessing spread over many addresses.  Someone who merely knows a user's name can no
# longer lock that user out from the user's own address with five wrong guesses.
LOGIN_MAX_FAILURES = 5
LOGIN_MAX_FAILURES_PER_ADDRESS = LOGIN_MAX_FAILURES * 4
LOGIN_MAX_FAILURES_PER_NAME = LOGIN_MAX_FAILURES * 10
FAILURES_KEPT_S = 86400  # older failure rows are deleted
SESSION_LIFETIME_S = 12 * 3600
SESSION_TOUCH_S = 60  # last_seen is written at most this often per session
TOKEN_TOUCH_S = 60  # a token's last_used_at likewise
TOKEN_PREFIX = "kbc_"

# Password-hash verifications done by this process.  Unknown user names are
# verified against a dummy hash too, so both take the same time; tests read this.
hash_checks = 0
_dummy_hash: str | None = None


class AuthError(KbError):
    status = 401


class Throttled(AuthError):
    status = 429


class FieldError(ValidationError):
    """Bad input in one field of a form (`field` names it), so a page shows the message
    next to that field."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


class Refused(KbError):
    """A change that would lock the admins out (themselves, or the last admin)."""

    status = 409


@dataclass
class User:
    id: int
    username: str
    roles: tuple[str, ...]
    disabled: bool
    must_change: bool = False  # a reset password: change it before anything else

    def has(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _verify(password_hash: str | None, password: str) -> bool:
    """Check a password; with no hash, verify against a dummy one (same cost, always False)."""
    global hash_checks, _dummy_hash
    hash_checks += 1
    if password_hash:
        return check_password_hash(password_hash, password)
    if _dummy_hash is None:
        _dummy_hash = generate_password_hash(secrets.token_urlsafe(16))
    check_password_hash(_dummy_hash, password)
    return False


def _user_key(username: str, remote: str | None = None) -> str:
    """The throttling key of a name (and of that name from one address)."""
    key = f"u:{username.lower()}"
    return key if remote is None else f"{key}@{remote}"


def _now() -> float:
    return dt.datetime.now(dt.UTC).timestamp()


def _audit_entry(actor: str, action: str, target: str, detail: dict | None = None) -> dict:
    return {"at": now_iso(), "actor": actor, "action": action, "target": target,
            "detail": detail or {}}  # fmt: skip


class Accounts:
    """Account operations over one store (cheap: one per request is fine)."""

    def __init__(self, store: Store):
        self.store = store
        self.repo = AccountRepository(store.database)

    # -- users ----------------------------------------------------------------

    def count(self) -> int:
        return self.repo.count_users()

    @staticmethod
    def _user(row: dict) -> User:
        roles = tuple(r for r in (row["roles"] or "").split(",") if r)
        return User(
            id=row["id"],
            username=row["username"],
            roles=roles,
            disabled=bool(row["disabled"]),
            must_change=bool(row.get("must_change_password")),
        )

    def get(self, user_id: int) -> User | None:
        row = self.repo.user_by_id(user_id)
        return self._user(row) if row else None

    def by_name(self, username: str) -> User:
        row = self.repo.user_by_name(username)
        if row is None:
            raise NotFound(f"用户「{username}」不存在")
        return self._user(row)

    def list(self) -> list[User]:
        return [self._user(r) for r in self.repo.list_users()]

    def overview(self) -> list[dict]:
        """Every user for the admin page: the User plus ``created_at`` and
        ``last_login_at`` (ISO text, "" when unknown)."""
        return [
            {
                "user": self._user(r),
                "created_at": r["created_at"] or "",
                "last_login_at": r["last_login_at"] or "",
            }
            for r in self.repo.list_users()
        ]

    @staticmethod
    def check_roles(roles: list[str] | tuple[str, ...]) -> tuple[str, ...]:
        bad = [r for r in roles if r not in ROLES]
        if bad or not roles:
            raise FieldError(
                f"角色无效：{','.join(bad) or '（空）'}；可选 {' / '.join(ROLES)}", "roles"
            )
        return tuple(dict.fromkeys(roles))

    @staticmethod
    def check_password(password: str, username: str = "", field: str = "password") -> None:
        """The password policy, for every way a password is set (CLI, admin, the user)."""
        if not password:
            raise FieldError("请输入密码", field)
        if len(password) < MIN_PASSWORD:
            raise FieldError(f"密码至少 {MIN_PASSWORD} 个字符", field)
        if len(password) > MAX_PASSWORD:
            raise FieldError(f"密码最多 {MAX_PASSWORD} 个字符", field)
        if len(set(password)) == 1:
            raise FieldError("密码太弱：不能只由同一个字符重复组成", field)
        if username and password.casefold() == username.casefold():
            raise FieldError("密码太弱：不能与用户名相同", field)

    @staticmethod
    def check_username(username: str) -> None:
        if not username:
            raise FieldError("请输入用户名", "username")
        if not USERNAME_RE.match(username):
            raise FieldError("用户名应为 2–32 个字母、数字、汉字或 _ . -", "username")

    def add(
        self,
        username: str,
        password: str,
        roles: list[str],
        *,
        actor: str = "system",
        must_change: bool = False,
    ) -> User:
        """A new account; with `must_change`, its password must be changed at first login."""
        self.check_username(username or "")
        roles = self.check_roles(roles)
        self.check_password(password, username)
        if self.repo.user_by_name(username) is not None:  # before the (slow) hash
            raise FieldError(f"用户「{username}」已存在", "username")
        row = {
            "username": username,
            "password_hash": generate_password_hash(password),
            "roles": ",".join(roles),
            "disabled": 0,
            "created_at": now_iso(),
            "must_change_password": int(must_change),
        }
        detail = {"roles": list(roles), **({"must_change": True} if must_change else {})}
        audit = _audit_entry(actor, "user.add", username, detail)
        if self.repo.add_user(row, audit) is None:
            raise FieldError(f"用户「{username}」已存在", "username")
        return self.by_name(username)

    def set_password(
        self, username: str, password: str, *, actor: str = "system", must_change: bool = False
    ) -> None:
        """A new password; with `must_change` (an admin's reset) the user must pick their
        own at the next login before doing anything else."""
        user = self.by_name(username)
        self.check_password(password, username)
        # a new password is also how an admin unlocks a name someone locked out, and
        # whoever held the old password is signed out everywhere
        self.repo.set_password(
            user.id,
            generate_password_hash(password),
            _user_key(user.username),
            _audit_entry(
                actor, "user.passwd", username, {"must_change": True} if must_change else None
            ),
            must_change=must_change,
        )

    def change_own_password(
        self, username: str, current: str, new: str, confirm: str, remote: str = ""
    ) -> None:
        """A signed-in user replaces their password: the current one is checked like a
        login (throttled the same way), the new one against the policy.  FieldError
        names the field at fault; every session of the user ends (the page starts a
        fresh one for the browser that asked)."""
        if not current:
            raise FieldError("请输入当前密码", "current")
        self.check_password(new, username, field="new")
        if new != confirm:
            raise FieldError("两次输入的新密码不一致", "confirm")
        if new == current:
            raise FieldError("新密码不能与当前密码相同", "new")
        try:
            self._verify_attempt(username, current, remote)
        except Throttled:
            raise
        except AuthError:
            raise FieldError("当前密码不正确", "current") from None
        self.set_password(username, new, actor=username)

    def _admin_guard(self, user: User, actor: str, *, disable: bool = False, roles=None):
        """A check run under the admin lock (storage): nobody disables themself or takes
        their own admin role away, and one enabled admin always remains."""
        if actor == user.username and disable:
            raise Refused("不能停用自己的账号")
        if actor == user.username and roles is not None and "admin" not in roles:
            raise Refused("不能去掉自己的管理员角色（请另一位管理员操作）")

        def guard(enabled: list[dict]) -> None:
            admins = {r["id"] for r in enabled if "admin" in (r["roles"] or "").split(",")}
            if user.id in admins and admins == {user.id}:
                raise Refused(
                    f"「{user.username}」是最后一位启用的管理员，不能停用或去掉其管理员角色"
                )

        if disable or (roles is not None and "admin" not in roles):
            return guard
        return None

    def set_roles(self, username: str, roles: list[str], *, actor: str = "system") -> None:
        user = self.by_name(username)
        roles = self.check_roles(roles)
        self.repo.set_roles(
            user.id,
            ",".join(roles),
            _audit_entry(actor, "user.roles", username, {"roles": list(roles)}),
            guard=self._admin_guard(user, actor, roles=roles),
        )

    def set_disabled(self, username: str, disabled: bool, *, actor: str = "system") -> None:
        """Disabling also revokes the user's tokens and ends its sessions."""
        user = self.by_name(username)
        action = "user.disable" if disabled else "user.enable"
        self.repo.set_disabled(
            user.id,
            disabled,
            now_iso(),
            _audit_entry(actor, action, username),
            guard=self._admin_guard(user, actor, disable=True) if disabled else None,
        )

    # -- login ------------------------------------------------------------------

    @staticmethod
    def _limits(username: str, remote: str) -> dict[str, int]:
        """The throttling keys of an attempt and how many recent failures each allows."""
        return {
            _user_key(username, remote): LOGIN_MAX_FAILURES,
            f"ip:{remote}": LOGIN_MAX_FAILURES_PER_ADDRESS,
            _user_key(username): LOGIN_MAX_FAILURES_PER_NAME,
        }

    def throttled(self, username: str, remote: str, now: float | None = None) -> bool:
        """True after too many recent failures for this name from this address, for
        this address, or for this name from everywhere."""
        now = now if now is not None else _now()
        limits = self._limits(username, remote)
        counts = self.repo.failure_counts(list(limits), now - LOGIN_WINDOW_S)
        return any(counts.get(key, 0) >= limit for key, limit in limits.items())

    def authenticate(self, username: str, password: str, remote: str = "") -> User:
        """The user for these credentials; Throttled past the limits, else AuthError.

        The attempt is first recorded as a failure, atomically with counting the recent
        ones (across every process and node), and only then is the password checked; a
        success takes the record back.  So concurrent guesses cannot overrun the limit.
        Unknown names cost one (dummy) hash verification like known ones, and get the
        same message, so neither the answer nor its timing says who exists.
        """
        return self._verify_attempt(username, password, remote, login=True)

    def _verify_attempt(
        self, username: str, password: str, remote: str, *, login: bool = False
    ) -> User:
        now = _now()
        limits = self._limits(username, remote)
        reserved = self.repo.reserve_attempt(
            limits, now, since=now - LOGIN_WINDOW_S, prune_before=now - FAILURES_KEPT_S
        )
        if reserved is None:
            raise Throttled("登录失败次数过多，请 15 分钟后再试")
        row = self.repo.user_by_name(username)
        ok = _verify(row["password_hash"] if row else None, password)
        if not ok or row["disabled"]:
            raise AuthError("用户名或密码错误，或账号已停用")
        # the name's failures go (from this address and from all); of the address's,
        # only this attempt's; a login stamps the user's last_login_at
        ip_row = reserved[1]
        self.repo.forget_failures(
            [_user_key(username, remote), _user_key(username)],
            [ip_row],
            user_id=row["id"] if login else None,
            login_at=now_iso(),
        )
        return self._user(row)

    # -- sessions ----------------------------------------------------------------

    def create_session(self, user: User, lifetime_s: float = SESSION_LIFETIME_S) -> str:
        """A new login session; returns the random id for the cookie (only its hash is kept)."""
        sid = secrets.token_urlsafe(32)
        now = _now()
        self.repo.create_session(_hash_token(sid), user.id, now, now + lifetime_s)
        return sid

    def session_user(self, sid: str) -> User | None:
        """The enabled user of a live session, or None (unknown, ended, expired, disabled).

        Asked on every request: one indexed query (and, at most once a minute per
        session, a write of last_seen).  Nothing is cached in the process, so a logout
        on any node holds on every node at once."""
        if not sid:
            return None
        now = _now()
        row = self.repo.session_user(_hash_token(sid), now)
        if row is None or row["disabled"]:
            return None
        if now - row["last_seen"] > SESSION_TOUCH_S:
            self.repo.touch_session(row["session_id"], now)
        return self._user(row)

    def end_session(self, sid: str) -> None:
        self.repo.end_session(_hash_token(sid or ""))

    def sessions(self, username: str) -> list[dict]:
        user = self.by_name(username)
        return self.repo.sessions(user.id, _now())

    def end_all_sessions(self, username: str, *, actor: str = "system") -> int:
        """Sign a user out everywhere; returns how many sessions ended."""
        user = self.by_name(username)
        return self.repo.end_all_sessions(user.id, _audit_entry(actor, "user.logout_all", username))

    # -- API tokens ------------------------------------------------------------

    def create_token(self, username: str, name: str = "", *, actor: str = "system") -> str:
        """A new bearer token for a user; only its hash is stored."""
        name = (name or "").strip()
        if len(name) > MAX_TOKEN_NAME:
            raise FieldError(f"用途说明最多 {MAX_TOKEN_NAME} 个字符", "name")
        if not username:
            raise FieldError("请选择账号", "username")
        try:
            user = self.by_name(username)
        except NotFound as exc:
            raise FieldError(str(exc), "username") from None
        if user.disabled:
            raise FieldError(f"用户「{username}」已停用", "username")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.repo.add_token(
            {
                "user_id": user.id,
                "token_hash": _hash_token(token),
                "name": name,
                "created_at": now_iso(),
                "revoked_at": "",
                "last_used_at": "",
            },
            _audit_entry(actor, "token.create", username, {"name": name}),
        )
        return token

    def tokens(self, username: str) -> list[dict]:
        user = self.by_name(username)
        return self.repo.tokens(user.id)

    def all_tokens(self, limit: int = 100, offset: int = 0) -> list[dict]:
        """Every user's tokens, newest first, with the owner's ``username``."""
        return self.repo.all_tokens(limit, offset)

    def token_count(self) -> int:
        return self.repo.token_count()

    def revoke_token(self, token_or_id: str, *, actor: str = "system") -> None:
        """Revoke by the token itself or by its numeric id."""
        audit = _audit_entry(actor, "token.revoke", "")  # the target: the token's id
        if token_or_id.isascii() and token_or_id.isdigit():
            token_id = int(token_or_id)
            found = (
                self.repo.revoke_token(now_iso(), token_id=token_id, audit=audit)
                if token_id < 2**63  # larger is no id on either backend
                else None
            )
        else:
            found = self.repo.revoke_token(
                now_iso(), token_hash=_hash_token(token_or_id), audit=audit
            )
        if found is None:
            raise NotFound("令牌不存在")

    def user_for_token(self, token: str) -> User | None:
        """The enabled owner of a token that is not revoked (one indexed query; the
        token's last_used_at is written at most once a minute)."""
        row = self.repo.token_user(_hash_token(token))
        if row is None or row["disabled"]:
            return None
        now = now_iso()
        if _seconds_between(row["last_used_at"], now) > TOKEN_TOUCH_S:
            self.repo.touch_token(row["token_id"], now)
        return self._user(row)

    # -- audit log ---------------------------------------------------------------

    def audit(self, actor: str, action: str, target: str, detail: dict | None = None) -> None:
        """Append one entry: who did what to which thing, when."""
        self.repo.append_audit(_audit_entry(actor, action, target, detail))

    def audit_count(self, where: dict | None = None) -> int:
        """How many entries (those matching `where`: see storage AccountRepository)."""
        return self.repo.audit_count(where)

    def audit_entries(
        self, limit: int = 200, offset: int = 0, where: dict | None = None
    ) -> list[dict]:
        """Newest first; ``detail`` is JSON text; `where` filters (core/auditlog.py)."""
        return self.repo.audit_entries(limit, offset, where)

    def audit_actors(self) -> list[str]:
        return self.repo.audit_actors()


def _seconds_between(earlier: str | None, later: str) -> float:
    """Seconds from one ISO time to another (infinite when the first is unknown)."""
    if not earlier:
        return float("inf")
    try:
        return (
            dt.datetime.fromisoformat(later) - dt.datetime.fromisoformat(earlier)
        ).total_seconds()
    except ValueError:
        return float("inf")


def random_password() -> str:
    return secrets.token_urlsafe(12)
