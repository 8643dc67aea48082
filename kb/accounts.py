"""Users, roles, login sessions, API tokens, login throttling and the append-only audit log.

Passwords are hashed with werkzeug.security (scrypt); API tokens and session ids
are random and only their SHA-256 is stored.  Sessions live in the database, so
every worker process sees a logout, a password change or a disabled account at
once.  Login attempts are reserved atomically (BEGIN IMMEDIATE) before the
password is checked, so concurrent guesses cannot overrun the limit.  The audit
log refuses UPDATE and DELETE at the SQLite level (triggers), so history cannot
be rewritten through the app.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
from dataclasses import dataclass

from werkzeug.security import check_password_hash, generate_password_hash

from .errors import KbError, NotFound, ValidationError
from .models import ROLE_LABELS, ROLES  # noqa: F401 - re-exported
from .store import Store, now_iso

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-\u4e00-\u9fff]{2,32}$")
MIN_PASSWORD = 8
LOGIN_WINDOW_S = 15 * 60
LOGIN_MAX_FAILURES = 5
LOGIN_MAX_FAILURES_PER_ADDRESS = LOGIN_MAX_FAILURES * 4
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


def _now() -> float:
    return dt.datetime.now(dt.UTC).timestamp()


def ensure_schema(store: Store) -> None:
    """Create the accounts tables (idempotent)."""
    db = store.db
    names = db.table_names()
    if "sessions" not in names:
        with db.conn:
            db["sessions"].create(
                {
                    "id": int,
                    "sid_hash": str,
                    "user_id": int,
                    "created_at": float,
                    "last_seen": float,
                    "expires_at": float,
                },
                pk="id",
                if_not_exists=True,
            )
            db["sessions"].create_index(["sid_hash"], unique=True, if_not_exists=True)
            db["sessions"].create_index(["user_id"], if_not_exists=True)
    if "users" in names:
        return
    with db.conn:
        db["users"].create(
            {
                "id": int,
                "username": str,
                "password_hash": str,
                "roles": str,
                "disabled": int,
                "created_at": str,
            },
            pk="id",
            if_not_exists=True,
        )
        db["users"].create_index(["username"], unique=True, if_not_exists=True)
        db["tokens"].create(
            {
                "id": int,
                "user_id": int,
                "token_hash": str,
                "name": str,
                "created_at": str,
                "revoked_at": str,
                "last_used_at": str,
            },
            pk="id",
            if_not_exists=True,
        )
        db["tokens"].create_index(["token_hash"], unique=True, if_not_exists=True)
        db["login_failures"].create(
            {"id": int, "key": str, "at": float}, pk="id", if_not_exists=True
        )
        db["login_failures"].create_index(["key", "at"], if_not_exists=True)
        db["audit_log"].create(
            {"id": int, "at": str, "actor": str, "action": str, "target": str, "detail": str},
            pk="id",
            if_not_exists=True,
        )
        db.execute(
            "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END"
        )
        db.execute(
            "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END"
        )


class Accounts:
    """Account operations over one store."""

    def __init__(self, store: Store):
        self.store = store
        ensure_schema(store)

    @property
    def db(self):
        return self.store.db

    # -- users ----------------------------------------------------------------

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM users").fetchone()[0]

    @staticmethod
    def _user(row: dict) -> User:
        roles = tuple(r for r in (row["roles"] or "").split(",") if r)
        return User(
            id=row["id"], username=row["username"], roles=roles, disabled=bool(row["disabled"])
        )

    def get(self, user_id: int) -> User | None:
        rows = list(self.db.query("SELECT * FROM users WHERE id = ?", [user_id]))
        return self._user(rows[0]) if rows else None

    def by_name(self, username: str) -> User:
        rows = list(self.db.query("SELECT * FROM users WHERE username = ?", [username]))
        if not rows:
            raise NotFound(f"用户「{username}」不存在")
        return self._user(rows[0])

    def list(self) -> list[User]:
        return [self._user(r) for r in self.db.query("SELECT * FROM users ORDER BY username")]

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
        if list(self.db.query("SELECT id FROM users WHERE username = ?", [username])):
            raise ValidationError(f"用户「{username}」已存在")
        with self.db.conn:
            self.db["users"].insert(
                {
                    "username": username,
                    "password_hash": generate_password_hash(password),
                    "roles": ",".join(roles),
                    "disabled": 0,
                    "created_at": now_iso(),
                }
            )
        self.audit(actor, "user.add", username, {"roles": list(roles)})
        return self.by_name(username)

    def set_password(self, username: str, password: str, *, actor: str = "system") -> None:
        user = self.by_name(username)
        self.check_password(password)
        with self.db.conn:
            self.db.execute(
                "UPDATE users SET password_hash = ? WHERE id = ?",
                [generate_password_hash(password), user.id],
            )
            # a new password is also how an admin unlocks a name someone locked out
            self.db.execute(
                "DELETE FROM login_failures WHERE key = ?", [f"u:{user.username.lower()}"]
            )
            # whoever held the old password is signed out everywhere
            self.db.execute("DELETE FROM sessions WHERE user_id = ?", [user.id])
        self.audit(actor, "user.passwd", username, {})

    def set_roles(self, username: str, roles: list[str], *, actor: str = "system") -> None:
        user = self.by_name(username)
        roles = self.check_roles(roles)
        with self.db.conn:
            self.db.execute("UPDATE users SET roles = ? WHERE id = ?", [",".join(roles), user.id])
        self.audit(actor, "user.roles", username, {"roles": list(roles)})

    def set_disabled(self, username: str, disabled: bool, *, actor: str = "system") -> None:
        user = self.by_name(username)
        with self.db.conn:
            self.db.execute("UPDATE users SET disabled = ? WHERE id = ?", [int(disabled), user.id])
            if disabled:
                self.db.execute(
                    "UPDATE tokens SET revoked_at = ? WHERE user_id = ? AND "
                    "(revoked_at IS NULL OR revoked_at = '')",
                    [now_iso(), user.id],
                )
                self.db.execute("DELETE FROM sessions WHERE user_id = ?", [user.id])
        self.audit(actor, "user.disable" if disabled else "user.enable", username, {})

    # -- login ------------------------------------------------------------------

    def _recent_failures(self, key: str, now: float) -> int:
        return self.db.execute(
            "SELECT count(*) FROM login_failures WHERE key = ? AND at > ?",
            [key, now - LOGIN_WINDOW_S],
        ).fetchone()[0]

    def _over_limit(self, user_key: str, ip_key: str, now: float) -> bool:
        return (
            self._recent_failures(user_key, now) >= LOGIN_MAX_FAILURES
            or self._recent_failures(ip_key, now) >= LOGIN_MAX_FAILURES_PER_ADDRESS
        )

    def throttled(self, username: str, remote: str, now: float | None = None) -> bool:
        """True after too many recent failures for this user name or this address."""
        now = now if now is not None else _now()
        return self._over_limit(f"u:{username.lower()}", f"ip:{remote}", now)

    def _reserve_attempt(self, user_key: str, ip_key: str, now: float) -> list[int] | None:
        """Count this attempt as a failure before the password is checked, atomically.

        Under one write lock (BEGIN IMMEDIATE) the recent failures are counted and,
        when below the limits, one row per key is added; the ids are returned so a
        success can take them back.  None when the limit is reached: no check then.
        """
        conn = self.db.conn
        if conn.in_transaction:
            conn.commit()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if self._over_limit(user_key, ip_key, now):
                conn.rollback()
                return None
            ids = [
                conn.execute(
                    "INSERT INTO login_failures (key, at) VALUES (?, ?)", [key, now]
                ).lastrowid
                for key in (user_key, ip_key)
            ]
            conn.execute("DELETE FROM login_failures WHERE at < ?", [now - 86400])
            conn.commit()
            return ids
        except BaseException:
            conn.rollback()
            raise

    def authenticate(self, username: str, password: str, remote: str = "") -> User:
        """The user for these credentials; Throttled past the limits, else AuthError.

        Unknown names cost one (dummy) hash verification like known ones, and get
        the same message, so neither the answer nor its timing says who exists.
        """
        now = _now()
        user_key, ip_key = f"u:{username.lower()}", f"ip:{remote}"
        reserved = self._reserve_attempt(user_key, ip_key, now)
        if reserved is None:
            raise Throttled("登录失败次数过多，请 15 分钟后再试")
        rows = list(self.db.query("SELECT * FROM users WHERE username = ?", [username]))
        ok = _verify(rows[0]["password_hash"] if rows else None, password)
        if not ok or rows[0]["disabled"]:
            raise AuthError("用户名或密码错误，或账号已停用")
        with self.db.conn:
            self.db.execute("DELETE FROM login_failures WHERE key = ?", [user_key])
            self.db.execute("DELETE FROM login_failures WHERE id = ?", [reserved[1]])
        return self._user(rows[0])

    # -- sessions ----------------------------------------------------------------

    def create_session(self, user: User, lifetime_s: float = SESSION_LIFETIME_S) -> str:
        """A new login session; returns the random id for the cookie (only its hash is kept)."""
        sid = secrets.token_urlsafe(32)
        now = _now()
        with self.db.conn:
            self.db.execute("DELETE FROM sessions WHERE expires_at < ?", [now])
            self.db.execute(
                "INSERT INTO sessions (sid_hash, user_id, created_at, last_seen, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [_hash_token(sid), user.id, now, now, now + lifetime_s],
            )
        return sid

    def session_user(self, sid: str) -> User | None:
        """The enabled user of a live session, or None (unknown, ended, expired, disabled)."""
        if not sid:
            return None
        now = _now()
        rows = list(
            self.db.query(
                "SELECT sessions.id AS session_id, sessions.last_seen, users.* FROM sessions "
                "JOIN users ON users.id = sessions.user_id WHERE sid_hash = ? AND expires_at > ?",
                [_hash_token(sid), now],
            )
        )
        if not rows or rows[0]["disabled"]:
            return None
        data = rows[0]
        if now - data["last_seen"] > SESSION_TOUCH_S:
            with self.db.conn:
                self.db.execute(
                    "UPDATE sessions SET last_seen = ? WHERE id = ?", [now, data["session_id"]]
                )
        return self._user(data)

    def end_session(self, sid: str) -> None:
        with self.db.conn:
            self.db.execute("DELETE FROM sessions WHERE sid_hash = ?", [_hash_token(sid or "")])

    def sessions(self, username: str) -> list[dict]:
        user = self.by_name(username)
        return list(
            self.db.query(
                "SELECT id, created_at, last_seen, expires_at FROM sessions "
                "WHERE user_id = ? AND expires_at > ? ORDER BY id",
                [user.id, _now()],
            )
        )

    def end_all_sessions(self, username: str, *, actor: str = "system") -> int:
        """Sign a user out everywhere; returns how many sessions ended."""
        user = self.by_name(username)
        with self.db.conn:
            n = self.db.execute("DELETE FROM sessions WHERE user_id = ?", [user.id]).rowcount
        self.audit(actor, "user.logout_all", username, {"sessions": n})
        return n

    # -- API tokens ------------------------------------------------------------

    def create_token(self, username: str, name: str = "", *, actor: str = "system") -> str:
        """A new bearer token for a user; only its hash is stored."""
        user = self.by_name(username)
        if user.disabled:
            raise ValidationError(f"用户「{username}」已停用")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.db.conn:
            self.db["tokens"].insert(
                {
                    "user_id": user.id,
                    "token_hash": _hash_token(token),
                    "name": name,
                    "created_at": now_iso(),
                    "revoked_at": "",
                    "last_used_at": "",
                }
            )
        self.audit(actor, "token.create", username, {"name": name})
        return token

    def tokens(self, username: str) -> list[dict]:
        user = self.by_name(username)
        return list(
            self.db.query(
                "SELECT id, name, created_at, revoked_at, last_used_at FROM tokens WHERE user_id = ? "
                "ORDER BY id",
                [user.id],
            )
        )

    def revoke_token(self, token_or_id: str, *, actor: str = "system") -> None:
        """Revoke by the token itself or by its numeric id."""
        if token_or_id.isdigit():
            where, arg = "id = ?", int(token_or_id)
        else:
            where, arg = "token_hash = ?", _hash_token(token_or_id)
        row = self.db.execute(f"SELECT id FROM tokens WHERE {where}", [arg]).fetchone()  # noqa: S608
        if row is None:
            raise NotFound("令牌不存在")
        with self.db.conn:
            self.db.execute("UPDATE tokens SET revoked_at = ? WHERE id = ?", [now_iso(), row[0]])
        self.audit(actor, "token.revoke", str(row[0]), {})

    def user_for_token(self, token: str) -> User | None:
        rows = list(
            self.db.query(
                "SELECT users.*, tokens.id AS token_id FROM tokens JOIN users ON users.id = "
                "tokens.user_id WHERE token_hash = ? AND (revoked_at IS NULL OR revoked_at = '')",
                [_hash_token(token)],
            )
        )
        if not rows or rows[0]["disabled"]:
            return None
        return self._user(rows[0])

    # -- audit log ---------------------------------------------------------------

    def audit(self, actor: str, action: str, target: str, detail: dict | None = None) -> None:
        """Append one entry: who did what to which thing, when."""
        with self.db.conn:
            self.db["audit_log"].insert(
                {
                    "at": now_iso(),
                    "actor": actor,
                    "action": action,
                    "target": target,
                    "detail": json.dumps(detail or {}, ensure_ascii=False),
                }
            )

    def audit_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM audit_log").fetchone()[0])

    def audit_entries(self, limit: int = 200, offset: int = 0) -> list[dict]:
        return list(
            self.db.query(
                "SELECT * FROM audit_log ORDER BY id DESC LIMIT ? OFFSET ?", [limit, offset]
            )
        )


def random_password() -> str:
    return secrets.token_urlsafe(12)
