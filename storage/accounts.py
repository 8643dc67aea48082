"""The SQL of accounts: users, API tokens, login sessions, login throttling, the audit log.

``kb/accounts.py`` keeps the rules (password hashing, roles, the throttling limits, the
messages); this module only reads and writes rows, on SQLite and PostgreSQL alike.

Every write that belongs together is one transaction, the audit entry included.  The
two lookups made on every request (a session id from the cookie, a bearer token) are
one indexed query each, built once here.

Login throttling reserves an attempt atomically: the recent failures are counted and,
below the limits, one failure row per key is added, in one transaction that no other
reservation for the same key can interleave with.  On SQLite the write transaction is
``BEGIN IMMEDIATE`` (one writer at a time); on PostgreSQL, where several nodes share the
database, a transaction-scoped advisory lock per throttling key is taken before
counting, so concurrent guesses from any process or node are serialised per key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy import bindparam, delete, func, insert, or_, select, update

from . import schema
from .database import Database

users = schema.users
tokens = schema.tokens
sessions = schema.sessions
login_failures = schema.login_failures
audit_log = schema.audit_log

# the first key of the two-int advisory locks of login throttling (the second is the
# key's hash); two-int locks never collide with the one-bigint locks of storage/database.py
THROTTLE_LOCK_CLASS = 7_215_003

USER_COLUMNS = (
    users.c.id,
    users.c.username,
    users.c.password_hash,
    users.c.roles,
    users.c.disabled,
)

_not_revoked = or_(tokens.c.revoked_at.is_(None), tokens.c.revoked_at == "")

# -- the statements of every request: built once ---------------------------------------

_SESSION_USER = (
    select(sessions.c.id.label("session_id"), sessions.c.last_seen, *USER_COLUMNS)
    .join_from(sessions, users, users.c.id == sessions.c.user_id)
    .where(sessions.c.sid_hash == bindparam("sid_hash"))
    .where(sessions.c.expires_at > bindparam("now"))
)
_TOUCH_SESSION = (
    update(sessions)
    .where(sessions.c.id == bindparam("session_id"))
    .values(last_seen=bindparam("now"))
)
_TOKEN_USER = (
    select(*USER_COLUMNS)
    .join_from(tokens, users, users.c.id == tokens.c.user_id)
    .where(tokens.c.token_hash == bindparam("token_hash"))
    .where(_not_revoked)
)
_ADVISORY_LOCK = sa.text("SELECT pg_advisory_xact_lock(:cls, :key)")


def _failures_of(name_key: str):
    """A name's failure rows: its own key and its per-address keys (`key@address`)."""
    return or_(
        login_failures.c.key == name_key,
        login_failures.c.key.startswith(name_key + "@", autoescape=True),
    )


def throttle_lock_key(key: str) -> int:
    """A stable 32-bit signed number for a throttling key (the advisory lock's second half)."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:4], "big", signed=True)


def _audit_row(entry: Mapping) -> dict:
    detail = entry.get("detail") or {}
    return {
        **entry,
        "detail": detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False),
    }


class AccountRepository:
    """Rows of the accounts tables in one Database; plain dicts and ints out."""

    def __init__(self, db: Database):
        self.db = db

    # -- users -------------------------------------------------------------------

    def count_users(self) -> int:
        with self.db.read() as conn:
            return conn.execute(select(func.count()).select_from(users)).scalar_one()

    def user_by_id(self, user_id: int) -> dict | None:
        with self.db.read() as conn:
            row = conn.execute(select(*USER_COLUMNS).where(users.c.id == user_id)).first()
        return dict(row._mapping) if row else None

    def user_by_name(self, username: str) -> dict | None:
        with self.db.read() as conn:
            row = conn.execute(select(*USER_COLUMNS).where(users.c.username == username)).first()
        return dict(row._mapping) if row else None

    def list_users(self) -> list[dict]:
        """By name in code-point order (as SQLite compares), whatever PostgreSQL's collation."""
        with self.db.read() as conn:
            rows = [dict(r._mapping) for r in conn.execute(select(*USER_COLUMNS))]
        return sorted(rows, key=lambda r: (r["username"], r["id"]))

    def add_user(self, row: Mapping, audit: Mapping | None = None) -> int | None:
        """Insert a user (and its audit entry); None when the name is taken."""
        try:
            with self.db.begin() as conn:
                taken = conn.execute(
                    select(users.c.id).where(users.c.username == row["username"])
                ).first()
                if taken:
                    return None
                user_id = conn.execute(insert(users).returning(users.c.id), dict(row)).scalar_one()
                self._audit(conn, audit)
                return user_id
        except sa.exc.IntegrityError:
            # the unique index: another node added the same name between our check and insert
            if self.db.in_transaction:
                raise
            return None

    def set_password(
        self, user_id: int, password_hash: str, failure_key: str, audit: Mapping | None = None
    ) -> None:
        """New hash; the name's login failures (from every address) and every session
        of the user are gone."""
        with self.db.begin() as conn:
            conn.execute(
                update(users).where(users.c.id == user_id).values(password_hash=password_hash)
            )
            conn.execute(delete(login_failures).where(_failures_of(failure_key)))
            conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
            self._audit(conn, audit)

    def set_roles(self, user_id: int, roles: str, audit: Mapping | None = None) -> None:
        with self.db.begin() as conn:
            conn.execute(update(users).where(users.c.id == user_id).values(roles=roles))
            self._audit(conn, audit)

    def set_disabled(
        self, user_id: int, disabled: bool, now_iso: str, audit: Mapping | None = None
    ) -> None:
        """Disabling also revokes the user's tokens and ends its sessions."""
        with self.db.begin() as conn:
            conn.execute(update(users).where(users.c.id == user_id).values(disabled=int(disabled)))
            if disabled:
                conn.execute(
                    update(tokens)
                    .where(tokens.c.user_id == user_id)
                    .where(_not_revoked)
                    .values(revoked_at=now_iso)
                )
                conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
            self._audit(conn, audit)

    # -- login throttling ----------------------------------------------------------

    @staticmethod
    def _failure_counts(conn, keys: list[str], since: float) -> dict[str, int]:
        rows = conn.execute(
            select(login_failures.c.key, func.count())
            .where(login_failures.c.key.in_(keys))
            .where(login_failures.c.at > since)
            .group_by(login_failures.c.key)
        )
        return {key: n for key, n in rows}

    def failure_counts(self, keys: list[str], since: float) -> dict[str, int]:
        """Failures recorded after `since` (epoch seconds), per key (absent: none)."""
        with self.db.read() as conn:
            return self._failure_counts(conn, keys, since)

    def reserve_attempt(
        self, limits: Mapping[str, int], now: float, since: float, prune_before: float
    ) -> list[int] | None:
        """Record one failure per key of `limits`, unless a key has `limit` failures after
        `since` already (then None and nothing is written).  Returns the new rows' ids, in
        the order of `limits`, so a successful login can take them back.  Atomic per key
        across processes and nodes (see the module docstring).  Failures older than
        `prune_before` are deleted on the way."""
        keys = list(limits)
        with self.db.begin() as conn:
            if self.db.dialect == "postgresql":
                # in one order everywhere, so two reservations never wait for each other
                for lock in sorted({throttle_lock_key(k) for k in keys}):
                    conn.execute(_ADVISORY_LOCK, {"cls": THROTTLE_LOCK_CLASS, "key": lock})
            counts = self._failure_counts(conn, keys, since)
            if any(counts.get(key, 0) >= limit for key, limit in limits.items()):
                return None
            ids = (
                conn.execute(
                    insert(login_failures).returning(
                        login_failures.c.id, sort_by_parameter_order=True
                    ),
                    [{"key": key, "at": now} for key in keys],
                )
                .scalars()
                .all()
            )
            conn.execute(delete(login_failures).where(login_failures.c.at < prune_before))
            return list(ids)

    def forget_failures(self, keys: list[str], ids: list[int]) -> None:
        """Delete every failure of `keys` and the rows `ids` (a login that succeeded)."""
        with self.db.begin() as conn:
            conn.execute(
                delete(login_failures).where(
                    or_(login_failures.c.key.in_(keys), login_failures.c.id.in_(ids))
                )
            )

    # -- sessions ------------------------------------------------------------------

    def create_session(self, sid_hash: str, user_id: int, now: float, expires_at: float) -> None:
        """A new session row; expired ones are deleted on the way."""
        with self.db.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.expires_at < now))
            conn.execute(
                insert(sessions),
                {
                    "sid_hash": sid_hash,
                    "user_id": user_id,
                    "created_at": now,
                    "last_seen": now,
                    "expires_at": expires_at,
                },
            )

    def _lookup(self, stmt, params: dict) -> dict | None:
        """The first row of a one-statement read made on every request (on PostgreSQL
        Database.read() is autocommit: no BEGIN/ROLLBACK round trips around it)."""
        with self.db.read() as conn:
            row = conn.execute(stmt, params).first()
        return dict(row._mapping) if row else None

    def session_user(self, sid_hash: str, now: float) -> dict | None:
        """The user columns of a live session, plus its ``session_id`` and ``last_seen``."""
        return self._lookup(_SESSION_USER, {"sid_hash": sid_hash, "now": now})

    def touch_session(self, session_id: int, now: float) -> None:
        with self.db.begin() as conn:
            conn.execute(_TOUCH_SESSION, {"session_id": session_id, "now": now})

    def end_session(self, sid_hash: str) -> None:
        with self.db.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.sid_hash == sid_hash))

    def sessions(self, user_id: int, now: float) -> list[dict]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(
                    sessions.c.id,
                    sessions.c.created_at,
                    sessions.c.last_seen,
                    sessions.c.expires_at,
                )
                .where(sessions.c.user_id == user_id)
                .where(sessions.c.expires_at > now)
                .order_by(sessions.c.id)
            )
            return [dict(r._mapping) for r in rows]

    def end_all_sessions(self, user_id: int, audit: Mapping | None = None) -> int:
        """Delete every session of a user; returns how many (also added to the audit
        entry's detail as ``sessions``)."""
        with self.db.begin() as conn:
            n = conn.execute(delete(sessions).where(sessions.c.user_id == user_id)).rowcount
            if audit is not None:
                self._audit(conn, {**audit, "detail": {**audit.get("detail", {}), "sessions": n}})
            return n

    # -- API tokens ------------------------------------------------------------------

    def add_token(self, row: Mapping, audit: Mapping | None = None) -> int:
        with self.db.begin() as conn:
            token_id = conn.execute(insert(tokens).returning(tokens.c.id), dict(row)).scalar_one()
            self._audit(conn, audit)
            return token_id

    def tokens(self, user_id: int) -> list[dict]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(
                    tokens.c.id,
                    tokens.c.name,
                    tokens.c.created_at,
                    tokens.c.revoked_at,
                    tokens.c.last_used_at,
                )
                .where(tokens.c.user_id == user_id)
                .order_by(tokens.c.id)
            )
            return [dict(r._mapping) for r in rows]

    def revoke_token(
        self,
        now_iso: str,
        *,
        token_id: int | None = None,
        token_hash: str | None = None,
        audit: Mapping | None = None,
    ) -> int | None:
        """Mark one token (by id or by hash) revoked; its id, or None if there is none.
        The audit entry's target is the token's id."""
        where = tokens.c.id == token_id if token_hash is None else tokens.c.token_hash == token_hash
        with self.db.begin() as conn:
            found = conn.execute(
                update(tokens).where(where).values(revoked_at=now_iso).returning(tokens.c.id)
            ).scalar()
            if found is not None and audit is not None:
                self._audit(conn, {**audit, "target": str(found)})
            return found

    def token_user(self, token_hash: str) -> dict | None:
        """The user columns of the owner of a token that is not revoked."""
        return self._lookup(_TOKEN_USER, {"token_hash": token_hash})

    # -- audit log -------------------------------------------------------------------

    @staticmethod
    def _audit(conn, entry: Mapping | None) -> None:
        if entry is not None:
            conn.execute(insert(audit_log), _audit_row(entry))

    def append_audit(self, entry: Mapping) -> None:
        """One entry: keys at, actor, action, target, detail (a dict, stored as JSON)."""
        with self.db.begin() as conn:
            self._audit(conn, entry)

    def audit_count(self) -> int:
        with self.db.read() as conn:
            return conn.execute(select(func.count()).select_from(audit_log)).scalar_one()

    def audit_entries(self, limit: int, offset: int = 0) -> list[dict]:
        """Newest first."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(audit_log).order_by(audit_log.c.id.desc()).limit(limit).offset(offset)
            )
            return [dict(r._mapping) for r in rows]
