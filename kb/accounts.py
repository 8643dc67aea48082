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
TOKEN_PREFIX = "kbc_"

# Password-hash verifications done by this process.  Unknown user names are
# verified against a dummy hash too, so both take the same time; tests read this.
hash_checks = 0
_dummy_hash: str | None = None


class AuthError(KbError):
    status = 401


class Throttled(AuthError):
    status = 429


@dataclass
class User:
    id: int
    username: str
    roles: tuple[str, ...]
    disabled: bool

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
            id=row["id"], username=row["username"], roles=roles, disabled=bool(row["disabled"])
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

    @staticmethod
    def check_roles(roles: list[str] | tuple[str, ...]) -> tuple[str, ...]:
        bad = [r for r in roles if r not in ROLES]
        if bad or not roles:
            raise ValidationError(
                f"角色无效：{','.join(bad) or '（空）'}；可选 {' / '.join(ROLES)}"
            )
        return tuple(dict.fromkeys(roles))

    @staticmethod
    def check_password(password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise ValidationError(f"密码至少 {MIN_PASSWORD} 个字符")

    def add(self, username: str, password: str, roles: list[str], *, actor: str = "system") -> User:
        if not USERNAME_RE.match(username or ""):
            raise ValidationError("用户名应为 2–32 个字母、数字、汉字或 _ . -")
        roles = self.check_roles(roles)
        self.check_password(password)
        if self.repo.user_by_name(username) is not None:  # before the (slow) hash
            raise ValidationError(f"用户「{username}」已存在")
        row = {
            "username": username,
            "password_hash": generate_password_hash(password),
            "roles": ",".join(roles),
            "disabled": 0,
            "created_at": now_iso(),
        }
        audit = _audit_entry(actor, "user.add", username, {"roles": list(roles)})
        if self.repo.add_user(row, audit) is None:
            raise ValidationError(f"用户「{username}」已存在")
        return self.by_name(username)

    def set_password(self, username: str, password: str, *, actor: str = "system") -> None:
        user = self.by_name(username)
        self.check_password(password)
        # a new password is also how an admin unlocks a name someone locked out, and
        # whoever held the old password is signed out everywhere
        self.repo.set_password(
            user.id,
            generate_password_hash(password),
            _user_key(user.username),
            _audit_entry(actor, "user.passwd", username),
        )

    def set_roles(self, username: str, roles: list[str], *, actor: str = "system") -> None:
        user = self.by_name(username)
        roles = self.check_roles(roles)
        self.repo.set_roles(
            user.id,
            ",".join(roles),
            _audit_entry(actor, "user.roles", username, {"roles": list(roles)}),
        )

    def set_disabled(self, username: str, disabled: bool, *, actor: str = "system") -> None:
        """Disabling also revokes the user's tokens and ends its sessions."""
        user = self.by_name(username)
        action = "user.disable" if disabled else "user.enable"
        self.repo.set_disabled(user.id, disabled, now_iso(), _audit_entry(actor, action, username))

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
        # only this attempt's
        ip_row = reserved[1]
        self.repo.forget_failures([_user_key(username, remote), _user_key(username)], [ip_row])
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
        user = self.by_name(username)
        if user.disabled:
            raise ValidationError(f"用户「{username}」已停用")
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
        """The enabled owner of a token that is not revoked (one indexed query)."""
        row = self.repo.token_user(_hash_token(token))
        if row is None or row["disabled"]:
            return None
        return self._user(row)

    # -- audit log ---------------------------------------------------------------

    def audit(self, actor: str, action: str, target: str, detail: dict | None = None) -> None:
        """Append one entry: who did what to which thing, when."""
        self.repo.append_audit(_audit_entry(actor, action, target, detail))

    def audit_count(self) -> int:
        return self.repo.audit_count()

    def audit_entries(self, limit: int = 200, offset: int = 0) -> list[dict]:
        """Newest first; ``detail`` is JSON text."""
        return self.repo.audit_entries(limit, offset)


def random_password() -> str:
    return secrets.token_urlsafe(12)
