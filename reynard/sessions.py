"""Sessions: opaque bearer tokens whose SHA-256 alone is stored; checked with one indexed read."""

from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
from typing import Any

from .db import Pool
from .errors import not_found
from .queries import q
from .readcache import ReadCache

log = logging.getLogger("reynard.sessions")

TOUCH_EVERY = 60.0  # seconds between last_seen_at writes for one session
CLEANUP_BATCH = 500
MAX_TOKEN_CHARS = 256


def new_token() -> tuple[str, bytes]:
    """A 256-bit random token and the digest the database keeps."""
    token = secrets.token_urlsafe(32)
    return token, token_digest(token)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def insert_session(
    conn: sqlite3.Connection,
    user_id: int,
    digest: bytes,
    now: float,
    ttl: int,
    user_agent: str | None,
    ip: str | None,
) -> int:
    """Writer thread: add a session row; returns its id."""
    return q.sessions.insert.run(
        conn,
        {
            "user_id": user_id,
            "token_hash": digest,
            "now": now,
            "expires_at": now + ttl,
            "user_agent": (user_agent or "")[:256] or None,
            "ip": ip,
        },
    )


class Sessions:
    """Token checks and the session list for one user; no HTTP here."""

    def __init__(self, pool: Pool, ttl: int, idle: int) -> None:
        self.pool = pool
        self.ttl = ttl
        self.idle = idle
        self._touching: set[int] = set()
        self.checks = ReadCache(pool)

    async def authenticate(self, token: str, now: float) -> sqlite3.Row | None:
        """The session + user row for a live token, or None. Refreshes last_seen_at sparingly."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        digest = token_digest(token)
        row = await self.checks.fetch(digest, q.sessions.authenticate, {"token_hash": digest})
        if row is None or row["expires_at"] <= now or row["last_seen_at"] <= now - self.idle:
            return None
        if now - row["last_seen_at"] >= TOUCH_EVERY:
            await self._touch(row["session_id"], now)
        return row

    async def _touch(self, session_id: int, now: float) -> None:
        if session_id in self._touching:  # a concurrent request is already writing it
            return
        self._touching.add(session_id)
        try:
            await self.pool.write(q.sessions.touch, {"id": session_id, "now": now})
        except sqlite3.Error as exc:
            # The token was valid; a failed bookkeeping write must not fail the read.
            log.warning("could not update last_seen_at of session %d: %s", session_id, exc)
        finally:
            self._touching.discard(session_id)

    async def live(self, user_id: int, now: float, limit: int, after: int) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            q.sessions.live_for_user,
            {
                "user_id": user_id,
                "now": now,
                "idle_cutoff": now - self.idle,
                "after": after,
                "limit": limit,
            },
        )
        return [dict(row) for row in rows]

    async def revoke(self, user_id: int, session_id: int, now: float) -> None:
        """End one of the user's live sessions; 404 when it is not theirs or already over."""
        done = await self.pool.write(
            q.sessions.revoke,
            {"id": session_id, "user_id": user_id, "now": now, "idle_cutoff": now - self.idle},
        )
        if not done:
            raise not_found("session")

    async def revoke_all(self, user_id: int, now: float, keep: int | None = None) -> int:
        return await self.pool.write(
            q.sessions.revoke_for_user, {"user_id": user_id, "now": now, "keep": keep}
        )

    async def count_live(self, now: float) -> int:
        return await self.pool.fetch(
            q.sessions.count_live, {"now": now, "idle_cutoff": now - self.idle}
        )


async def cleanup_sessions(
    pool: Pool, now: float, idle: int, batch: int = CLEANUP_BATCH, max_batches: int = 1000
) -> int:
    """Delete expired, revoked and idle sessions in bounded batches; returns how many went."""
    total = 0
    for _ in range(max_batches):
        deleted = await pool.write(
            q.sessions.cleanup, {"now": now, "idle_cutoff": now - idle, "batch": batch}
        )
        total += deleted
        if deleted < batch:
            break
    return total
