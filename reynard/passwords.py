"""Password hashing: scrypt with a per-hash salt, its parameters stored in the hash string.

Format: ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>``. Hashing is CPU work of tens to hundreds of
milliseconds, so the async ``Hasher`` runs it in a bounded thread pool (hashlib releases the GIL).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
from concurrent.futures import ThreadPoolExecutor

R, P, DKLEN, SALT_BYTES = 8, 1, 32, 16

# How many scrypt computations this process has run; tests use it to prove equal work.
computations = 0


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    global computations
    computations += 1
    maxmem = 128 * r * (n + p + 2) + (1 << 20)  # what OpenSSL needs for n, plus slack
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=dklen
    )


def hash_password(password: str, n: int) -> str:
    """A new hash string with a fresh salt at cost ``n``."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, n, R, P, DKLEN)
    return f"scrypt${n}${R}${P}${_b64(salt)}${_b64(digest)}"


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        return n, r, p, base64.b64decode(parts[4]), base64.b64decode(parts[5])
    except ValueError:
        return None


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; an unreadable hash never matches."""
    parsed = _parse(stored)
    if parsed is None:
        return False
    n, r, p, salt, expected = parsed
    return hmac.compare_digest(_scrypt(password, salt, n, r, p, len(expected)), expected)


def cost(stored: str) -> int | None:
    """The ``n`` a hash was made with (None when unreadable)."""
    parsed = _parse(stored)
    return None if parsed is None else parsed[0]


class Hasher:
    """Hash and verify off the event loop, at most ``workers`` at a time."""

    def __init__(self, n: int, workers: int | None = None) -> None:
        self.n = n
        self._pool = ThreadPoolExecutor(
            max_workers=workers or os.cpu_count() or 1, thread_name_prefix="reynard-scrypt"
        )
        self._dummy: asyncio.Future[str] | None = None

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def start(self) -> None:
        """Start making the dummy hash that unknown users are checked against (equal work).

        Not awaited here: one hash at the default cost takes ~260 ms, which would be most of a
        warm start; the first unknown-user login waits for it instead.
        """
        self._dummy = asyncio.get_running_loop().run_in_executor(
            self._pool, hash_password, secrets.token_urlsafe(16), self.n
        )

    async def hash(self, password: str) -> str:
        return await self._run(hash_password, password, self.n)

    async def verify(self, password: str, stored: str | None) -> bool:
        """Check against ``stored``, or against the dummy hash when there is no user."""
        if stored is None:
            assert self._dummy is not None, "Hasher.start() was not awaited"
            await self._run(verify_password, password, await self._dummy)
            return False
        return await self._run(verify_password, password, stored)

    def needs_rehash(self, stored: str) -> bool:
        return cost(stored) != self.n

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
