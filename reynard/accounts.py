"""Accounts: registration, login, password changes and admin user management. No HTTP here."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from . import sessions as sessions_mod
from .clock import iso
from .db import Pool
from .errors import ApiError, conflict, field_error, not_found
from .passwords import Hasher
from .queries import q
from .sessions import Sessions, insert_session, new_token
from .settings import Settings
from .throttle import IpLimiter, LoginThrottle

USER_FIELDS = (
    "id",
    "username",
    "email",
    "full_name",
    "is_active",
    "is_admin",
    "created_at",
    "updated_at",
    "last_login_at",
)


def user_json(row: Any) -> dict[str, Any]:
    """The public shape of a user (never the hash)."""
    return {
        "id": row["id"],
        "username": row["username"],
        "email": row["email"],
        "full_name": row["full_name"],
        "is_active": bool(row["is_active"]),
        "is_admin": bool(row["is_admin"]),
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "last_login_at": iso(row["last_login_at"]),
    }


def taken(exc: sqlite3.IntegrityError) -> ApiError:
    """Map a unique-index violation to the contract's 409."""
    if "email" in str(exc):
        return conflict("email_taken", "that email is already registered")
    return conflict("username_taken", "that username is already taken")


def insert_user(conn: sqlite3.Connection, fields: dict[str, Any]) -> sqlite3.Row:
    """Writer thread (or CLI): add a user; 409 when the username or email is taken."""
    try:
        return q.users.insert.run(conn, fields)[0]
    except sqlite3.IntegrityError as exc:
        raise taken(exc) from None


def _guard_last_admin(conn: sqlite3.Connection, user: sqlite3.Row) -> None:
    if user["is_admin"] and user["is_active"] and q.users.active_admins.run(conn) <= 1:
        raise conflict("last_admin", "this is the last active admin; make another admin first")


@dataclass
class Login:
    token: str
    session_id: int
    expires_at: float
    user: sqlite3.Row


class Accounts:
    """The accounts service; the views, the CLI and the task worker share it."""

    def __init__(self, pool: Pool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings
        self.hasher = Hasher(settings.scrypt_n)
        self.sessions = Sessions(pool, settings.session_ttl, settings.session_idle)
        self.throttle = LoginThrottle(pool, settings.login_max_failures, settings.login_window)
        self.ip_limiter = IpLimiter(settings.auth_per_ip)

    async def start(self) -> None:
        await self.hasher.start()

    def close(self) -> None:
        self.hasher.close()

    # ---- registration and login ----------------------------------------------------------
    async def register(
        self, username: str, email: str, password: str, full_name: str | None, now: float
    ) -> sqlite3.Row:
        fields = {
            "username": username,
            "email": email,
            "full_name": full_name,
            "password_hash": await self.hasher.hash(password),
            "is_admin": 0,
            "now": now,
        }
        return await self.pool.write_fn(lambda conn: insert_user(conn, fields))

    async def login(
        self, login: str, password: str, now: float, user_agent: str | None, ip: str | None
    ) -> Login:
        """Check the password (equal work for unknown users) under the per-username throttle."""
        user = await self.pool.fetch(q.users.by_login, {"login": login})
        key = (user["username"] if user is not None else login).lower()
        await self.throttle.check(key, now)
        ok = await self.hasher.verify(password, user["password_hash"] if user else None)
        if not ok:
            await self.throttle.failed(key, now)
            raise ApiError(401, "invalid_credentials", "wrong username or password")
        if not user["is_active"]:
            raise ApiError(403, "inactive", "this account is deactivated")
        rehash = None
        if self.hasher.needs_rehash(user["password_hash"]):
            rehash = await self.hasher.hash(password)
        token, digest = new_token()
        ttl = self.settings.session_ttl

        def write(conn: sqlite3.Connection) -> Login:
            q.throttle.clear.run(conn, {"key": key})
            row = q.users.after_login.run(
                conn, {"id": user["id"], "now": now, "password_hash": rehash}
            )[0]
            session_id = insert_session(conn, row["id"], digest, now, ttl, user_agent, ip)
            return Login(token, session_id, now + ttl, row)

        return await self.pool.write_fn(write)

    async def refresh(
        self, user_id: int, session_id: int, now: float, user_agent: str | None, ip: str | None
    ) -> Login:
        """A new session for the same user; the old one ends in the same transaction."""
        token, digest = new_token()
        ttl = self.settings.session_ttl

        def write(conn: sqlite3.Connection) -> Login:
            ended = q.sessions.revoke.run(
                conn,
                {
                    "id": session_id,
                    "user_id": user_id,
                    "now": now,
                    "idle_cutoff": now - self.settings.session_idle,
                },
            )
            row = q.users.by_id.run(conn, {"id": user_id})
            if not ended or row is None or not row["is_active"]:
                raise ApiError(401, "invalid_token", "the token is invalid or has expired")
            new_id = insert_session(conn, user_id, digest, now, ttl, user_agent, ip)
            return Login(token, new_id, now + ttl, row)

        return await self.pool.write_fn(write)

    async def change_password(
        self, user_id: int, session_id: int, current: str, new: str, now: float
    ) -> None:
        """Set a new password and end every other session of the user."""
        user = await self.pool.fetch(q.users.by_id, {"id": user_id})
        if user is None:
            raise not_found("user")
        key = user["username"].lower()
        await self.throttle.check(key, now)
        if not await self.hasher.verify(current, user["password_hash"]):
            await self.throttle.failed(key, now)
            raise field_error("current_password", "is not correct")
        new_hash = await self.hasher.hash(new)

        def write(conn: sqlite3.Connection) -> None:
            q.users.set_password.run(conn, {"id": user_id, "password_hash": new_hash, "now": now})
            q.sessions.revoke_for_user.run(
                conn, {"user_id": user_id, "now": now, "keep": session_id}
            )

        await self.pool.write_fn(write)

    # ---- users ---------------------------------------------------------------------------
    async def get(self, user_id: int) -> sqlite3.Row:
        row = await self.pool.fetch(q.users.by_id, {"id": user_id})
        if row is None:
            raise not_found("user")
        return row

    async def page(self, limit: int, after: int, prefix: str | None) -> list[sqlite3.Row]:
        return await self.pool.fetch(q.users.page, {"limit": limit, "after": after, "q": prefix})

    async def update(self, user_id: int, changes: dict[str, Any], now: float) -> sqlite3.Row:
        """Change a user; demoting or deactivating the last active admin is 409 last_admin.

        Deactivation ends the user's sessions in the same transaction.
        """
        params = {
            "id": user_id,
            "now": now,
            "email": changes.get("email"),
            "set_full_name": "full_name" in changes,
            "full_name": changes.get("full_name"),
            "is_active": _flag(changes.get("is_active")),
            "is_admin": _flag(changes.get("is_admin")),
        }

        def write(conn: sqlite3.Connection) -> sqlite3.Row:
            user = q.users.by_id.run(conn, {"id": user_id})
            if user is None:
                raise not_found("user")
            if changes.get("is_active") is False or changes.get("is_admin") is False:
                _guard_last_admin(conn, user)
            try:
                row = q.users.update.run(conn, params)[0]
            except sqlite3.IntegrityError as exc:
                raise taken(exc) from None
            if not row["is_active"]:
                q.sessions.revoke_for_user.run(conn, {"user_id": user_id, "now": now, "keep": None})
            return row

        return await self.pool.write_fn(write)

    async def delete(self, user_id: int) -> None:
        """Remove a user; their sessions and cache rows go with them (ON DELETE CASCADE)."""

        def write(conn: sqlite3.Connection) -> None:
            user = q.users.by_id.run(conn, {"id": user_id})
            if user is None:
                raise not_found("user")
            _guard_last_admin(conn, user)
            q.users.delete.run(conn, {"id": user_id})

        await self.pool.write_fn(write)


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


async def cleanup_sessions(pool: Pool, now: float, idle: int) -> int:
    """The ``sessions.cleanup`` job: delete expired, revoked and idle sessions in batches."""
    return await sessions_mod.cleanup_sessions(pool, now, idle)
