"""A Redis-like TTL cache persisted in SQLite (table cache_entries); no aiohttp import.

Keys live in namespaces: ``u:<user id>`` for a user's own keyspace (the row carries user_id, so
deleting the user removes the keys) and ``sys:<purpose>`` for the server's own use. A row is
live until its ``expires_at``; every read and every write treats an expired row as absent, so
expiry is exact from the caller's view even before ``purge_expired`` deletes the row.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

from .clock import Clock
from .db import Pool
from .errors import ApiError, conflict, field_error, not_found
from .queries import q
from .readcache import ReadCache
from .validation import INT64_MAX, INT64_MIN

MAX_KEY_CHARS = 512
MAX_VALUE_BYTES = 64 * 1024
MAX_TTL = 10 * 365 * 24 * 3600  # ten years, in seconds
QUOTA = 10_000  # live keys per user
PURGE_BATCH = 500
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_JSON_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")  # how compact JSON writes an integer
_NO_UPPER_BOUND = b""  # an empty BLOB sorts after every TEXT key


def user_namespace(user_id: int) -> str:
    """The namespace of one user's keys."""
    return f"u:{user_id}"


def _owner(namespace: str) -> int | None:
    """The user id a namespace belongs to (for the FK and the quota), None for 'sys:' ones."""
    return int(namespace[2:]) if namespace.startswith("u:") else None


@dataclass(frozen=True, slots=True)
class Entry:
    """A live entry. ``raw`` is the stored compact JSON text (None where the value was not
    read); ``ttl`` is whole seconds left."""

    key: str
    raw: str | None
    expires_at: float | None
    ttl: int | None

    @property
    def value(self) -> Any:
        return json.loads(self.raw)


def remaining(expires_at: float | None, now: float) -> int | None:
    """Whole seconds left, rounded up: a live key with a TTL never shows 0."""
    return None if expires_at is None else math.ceil(expires_at - now)


def check_key(key: str, field: str = "key", *, allow_empty: bool = False) -> str:
    """A key (or a prefix) of at most 512 characters without control characters; else 422."""
    if not key and not allow_empty:
        raise field_error(field, "must not be empty")
    if len(key) > MAX_KEY_CHARS:
        raise field_error(field, f"must be at most {MAX_KEY_CHARS} characters")
    if _CONTROL.search(key):
        raise field_error(field, "must not contain control characters")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise field_error(field, "must be valid UTF-8 text") from None
    return key


def encode_value(value: Any) -> str:
    """Compact JSON text of a value; 413 when it is larger than 64 KiB."""
    try:
        raw = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise field_error("value", f"is not a JSON value: {exc}") from None
    if len(raw.encode("utf-8")) > MAX_VALUE_BYTES:
        raise ApiError(
            413, "payload_too_large", f"the value is larger than {MAX_VALUE_BYTES} bytes as JSON"
        )
    return raw


def prefix_range(prefix: str) -> tuple[str, str | bytes]:
    """[lo, hi) holding exactly the keys that start with ``prefix`` (codepoint = UTF-8 order)."""
    stem = prefix.rstrip("\U0010ffff")
    if not stem:
        return prefix, _NO_UPPER_BOUND
    last = ord(stem[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # surrogates are not text; the next character is U+E000
        last = 0xE000
    return prefix, stem[:-1] + chr(last)


def _too_many(quota: int) -> ApiError:
    return conflict("quota_exceeded", f"a user may keep at most {quota} live keys")


class Cache:
    """get/set/delete/incr/expire/list/delete_prefix on one namespace at a time."""

    def __init__(self, pool: Pool, clock: Clock, *, quota: int = QUOTA) -> None:
        self.pool = pool
        self.clock = clock
        self.quota = quota
        self.reads = ReadCache(pool, size=lambda row: 0 if row is None else len(row["value"]))

    def _check_quota(self, conn: sqlite3.Connection, user_id: int | None, now: float) -> None:
        """Before inserting a new key: 409 when the user already holds ``quota`` live keys."""
        if user_id is None:
            return
        count = q.cache.count_live.run(conn, {"user_id": user_id, "now": now})
        if count >= self.quota:
            raise _too_many(self.quota)

    async def get(self, namespace: str, key: str) -> Entry | None:
        """The live entry, or None (absent or expired)."""
        now = self.clock.now()
        row = await self.reads.fetch(
            (namespace, key), q.cache.get_any, {"namespace": namespace, "key": key}
        )
        if row is None or (row["expires_at"] is not None and row["expires_at"] <= now):
            return None
        return Entry(key, row["value"], row["expires_at"], remaining(row["expires_at"], now))

    async def set(
        self,
        namespace: str,
        key: str,
        value: Any,
        *,
        ttl: int | None = None,
        nx: bool = False,
        xx: bool = False,
        keepttl: bool = False,
    ) -> Entry:
        """Store a value. nx: only if absent (409 key_exists); xx: only if present (404);
        keepttl: keep a present key's expiry; otherwise the expiry is now + ttl, or none."""
        check_key(key)
        if nx and xx:
            raise field_error("xx", "cannot be combined with nx")
        if keepttl and ttl is not None:
            raise field_error("keepttl", "cannot be combined with ttl")
        raw = encode_value(value)
        now = self.clock.now()
        user_id = _owner(namespace)
        params = {"namespace": namespace, "key": key, "now": now}

        def write(conn: sqlite3.Connection) -> float | None:
            if not (nx or xx or keepttl):
                # A plain PUT: one upsert; the quota is checked after it, only for a new key
                # (raising undoes the upsert: this runs inside its own savepoint).
                expires_at = None if ttl is None else now + ttl
                new_key = q.cache.put.run(
                    conn, {**params, "value": raw, "expires_at": expires_at, "user_id": user_id}
                )
                if new_key and user_id is not None:
                    count = q.cache.count_live.run(conn, {"user_id": user_id, "now": now})
                    if count > self.quota:
                        raise _too_many(self.quota)
                return expires_at
            row = q.cache.live.run(conn, params)
            if row is None:
                if xx:
                    raise not_found("key")
                self._check_quota(conn, user_id, now)
            elif nx:
                raise conflict("key_exists", "the key exists and nx was given")
            if keepttl and row is not None:
                expires_at = row["expires_at"]
            else:
                expires_at = None if ttl is None else now + ttl
            q.cache.put.run(
                conn, {**params, "value": raw, "expires_at": expires_at, "user_id": user_id}
            )
            return expires_at

        expires_at = await self.pool.write_fn(write)
        return Entry(key, raw, expires_at, remaining(expires_at, now))

    async def incr(self, namespace: str, key: str, by: int = 1) -> int:
        """Add ``by`` atomically; a missing key starts at 0 (without a TTL), a present one keeps
        its TTL. 409 not_an_integer / overflow (outside signed 64-bit)."""
        check_key(key)
        if isinstance(by, bool) or not isinstance(by, int) or not INT64_MIN <= by <= INT64_MAX:
            raise field_error("by", "must be a 64-bit integer")
        now = self.clock.now()
        user_id = _owner(namespace)
        params = {"namespace": namespace, "key": key, "now": now}

        def write(conn: sqlite3.Connection) -> int:
            row = q.cache.get.run(conn, params)
            if row is None:
                self._check_quota(conn, user_id, now)
                current, expires_at = 0, None
            else:
                # A regex, not json.loads: a 64 KiB non-integer fails at its first character.
                if not _JSON_INT.fullmatch(row["value"]):
                    raise conflict("not_an_integer", "the stored value is not an integer")
                current, expires_at = int(row["value"]), row["expires_at"]
            result = current + by
            if not INT64_MIN <= result <= INT64_MAX:
                raise conflict("overflow", "the result would leave the signed 64-bit range")
            q.cache.put.run(
                conn,
                {**params, "value": str(result), "expires_at": expires_at, "user_id": user_id},
            )
            return result

        return await self.pool.write_fn(write)

    async def expire(self, namespace: str, key: str, ttl: int | None) -> Entry:
        """Set a live key's TTL (None = keep forever); 404 when absent."""
        check_key(key)
        now = self.clock.now()
        expires_at = None if ttl is None else now + ttl
        found = await self.pool.write(
            q.cache.expire,
            {"namespace": namespace, "key": key, "now": now, "expires_at": expires_at},
        )
        if found is None:
            raise not_found("key")
        return Entry(key, None, expires_at, remaining(expires_at, now))

    async def delete(self, namespace: str, key: str) -> bool:
        """Remove a key; False when there was no live key."""
        check_key(key)
        live = await self.pool.write(
            q.cache.delete, {"namespace": namespace, "key": key, "now": self.clock.now()}
        )
        return bool(live)

    async def list(
        self, namespace: str, prefix: str = "", after: str | None = None, limit: int = 50
    ) -> tuple[list[Entry], str | None]:
        """Live keys in key order (values not read), and the last key when more follow."""
        check_key(prefix, "prefix", allow_empty=True)
        lo, hi = prefix_range(prefix)
        if after is not None and after >= lo:
            lo = after + "\x00"  # the smallest string sorting after ``after``
        now = self.clock.now()
        rows = await self.pool.fetch(
            q.cache.list,
            {"namespace": namespace, "lo": lo, "hi": hi, "now": now, "limit": limit + 1},
        )
        entries = [
            Entry(r["key"], None, r["expires_at"], remaining(r["expires_at"], now))
            for r in rows[:limit]
        ]
        return entries, entries[-1].key if len(rows) > limit else None

    async def delete_prefix(self, namespace: str, prefix: str) -> int:
        """Remove every key starting with ``prefix`` ('' = all); the number of live keys gone."""
        check_key(prefix, "prefix", allow_empty=True)
        lo, hi = prefix_range(prefix)
        rows = await self.pool.write(
            q.cache.delete_range,
            {"namespace": namespace, "lo": lo, "hi": hi, "now": self.clock.now()},
        )
        return sum(row[0] for row in rows)


async def purge_expired(pool: Pool, now: float, batch: int = PURGE_BATCH) -> int:
    """Delete expired rows, ``batch`` at a time, each batch its own short write; the count."""
    total = 0
    while True:
        deleted = await pool.write(q.cache.purge_batch, {"now": now, "batch": batch})
        total += deleted
        if deleted < batch:
            return total
