"""Request metrics in memory, and the stored snapshots of every figure (system_metrics).

The registry counts requests per (route template, method, status) and keeps a latency histogram
per (route template, method); the middleware feeds it through ``app[keys.request_observers]``.
Route labels are templates (``/api/cache/{key}``) and unmatched paths share the one label
``unmatched``, and unknown methods count as ``OTHER``, so clients cannot grow the label sets.

``snapshot`` and ``prune`` are task handlers (``metrics.snapshot``, ``metrics.prune``); they use
only ``ctx.pool``, ``ctx.clock`` and ``ctx.services``. The text exposition is in exposition.py.
No aiohttp import here.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from bisect import bisect_left
from typing import Any

from . import stats
from .clock import iso
from .db import Pool
from .errors import field_error
from .queries import q

# Upper bounds (seconds) of the latency buckets; +Inf is implied.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
QUANTILES = (0.5, 0.95, 0.99)
PRUNE_BATCH = 500
DEFAULT_RETENTION_DAYS = 7


class Histogram:
    __slots__ = ("buckets", "sum", "count")

    def __init__(self) -> None:
        self.buckets = [0] * (len(BUCKETS) + 1)  # per bucket, not cumulative; last is +Inf
        self.sum = 0.0
        self.count = 0


class Registry:
    """Counters and histograms since the process started, plus the last snapshot's marks."""

    def __init__(self, started_at: float) -> None:
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency: dict[tuple[str, str], Histogram] = {}
        self._mark = (started_at, 0, [0] * (len(BUCKETS) + 1))  # (time, total, buckets)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """The request observer: called once per request by the middleware."""
        method = method if method in METHODS else "OTHER"
        key = (route, method, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.latency.get((route, method))
        if hist is None:
            hist = self.latency[(route, method)] = Histogram()
        hist.buckets[bisect_left(BUCKETS, seconds)] += 1
        hist.sum += seconds
        hist.count += 1

    def totals(self) -> tuple[int, list[int]]:
        """Requests so far and the latency buckets summed over every route."""
        buckets = [0] * (len(BUCKETS) + 1)
        for hist in self.latency.values():
            for i, n in enumerate(hist.buckets):
                buckets[i] += n
        return sum(self.requests.values()), buckets

    def interval_rows(self, now: float) -> tuple[list[tuple[str, float, dict]], tuple]:
        """Figures since the last snapshot (rate, latency quantiles) and the mark to keep."""
        total, buckets = self.totals()
        at, last_total, last_buckets = self._mark
        rows: list[tuple[str, float, dict]] = [("http_requests_total", total, {})]
        elapsed = now - at
        if elapsed > 0:
            rows.append(("http_request_rate", (total - last_total) / elapsed, {}))
        delta = [n - m for n, m in zip(buckets, last_buckets, strict=True)]
        if sum(delta):
            for quantile in QUANTILES:
                value = bucket_quantile(quantile, delta)
                rows.append(("http_request_duration_seconds", value, {"quantile": str(quantile)}))
        return rows, (now, total, buckets)

    def set_mark(self, mark: tuple) -> None:
        self._mark = mark


def bucket_quantile(quantile: float, buckets: list[int]) -> float:
    """Estimate a quantile from per-bucket counts, interpolating linearly inside a bucket."""
    rank = quantile * sum(buckets)
    seen = 0
    for i, n in enumerate(buckets):
        if n and seen + n >= rank:
            if i == len(BUCKETS):
                return BUCKETS[-1]  # the +Inf bucket has no upper bound to interpolate to
            lower = BUCKETS[i - 1] if i else 0.0
            return lower + (BUCKETS[i] - lower) * (rank - seen) / n
        seen += n
    return BUCKETS[-1]


# ---- snapshots ----------------------------------------------------------------------------
def _rows(counts: stats.Counts, pool: dict[str, Any]) -> list[tuple[str, float, dict]]:
    return [
        ("users", counts.users, {}),
        ("active_sessions", counts.active_sessions, {}),
        ("cache_entries", counts.cache_entries, {}),
        *(("tasks", n, {"status": status}) for status, n in counts.tasks.items()),
        ("db_bytes", counts.db_bytes, {}),
        ("wal_bytes", counts.wal_bytes, {}),
        ("db_freelist_pages", counts.freelist_count, {}),
        ("pool_reader_waits", pool["reader_waits"], {}),
        ("pool_writer_waits", pool["writer_waits"], {}),
    ]


async def snapshot(ctx: Any) -> int:
    """Task ``metrics.snapshot``: store one row per current figure, atomically; return the count.

    With the app's registry in ``ctx.services["metrics"]`` it also stores the request total, the
    request rate and latency quantiles over the interval since the previous snapshot.
    """
    now = ctx.clock.now()
    counts = await stats.counts(ctx.pool, now)
    rows = _rows(counts, ctx.pool.figures())
    registry: Registry | None = ctx.services.get("metrics")
    mark = None
    if registry is not None:
        interval, mark = registry.interval_rows(now)
        rows += interval
    params = [
        {
            "name": name,
            "value": float(value),
            "labels": json.dumps(labels, sort_keys=True, separators=(",", ":")),
            "recorded_at": now,
        }
        for name, value, labels in rows
    ]
    await ctx.pool.write_fn(lambda conn: q.metrics.insert_many.run(conn, params))
    if mark is not None:
        registry.set_mark(mark)
    return len(params)


async def prune(ctx: Any, payload: Any) -> int:
    """Task ``metrics.prune``: delete samples older than ``retention_days`` (default 7)."""
    days = (payload or {}).get("retention_days", DEFAULT_RETENTION_DAYS)
    if isinstance(days, bool) or not isinstance(days, (int, float)) or not 0 < days < 100_000:
        raise ValueError(f"retention_days must be a positive number of days, got {days!r}")
    cutoff = ctx.clock.now() - days * 86400
    deleted = 0
    while True:  # one short write per batch, so other writers get their turn in between
        n = await ctx.pool.write(q.metrics.prune_batch, {"cutoff": cutoff, "batch": PRUNE_BATCH})
        deleted += n
        if n < PRUNE_BATCH:
            return deleted


# ---- reading samples ----------------------------------------------------------------------
def _cursor(recorded_at: float, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{recorded_at!r}:{row_id}".encode()).decode().rstrip("=")


def _uncursor(text: str) -> tuple[float, int]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        at, row_id = raw.split(":")
        before = (float(at), int(row_id))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise field_error("after", "is not a cursor from this list") from None
    if not math.isfinite(before[0]):
        raise field_error("after", "is not a cursor from this list")
    return before


async def samples(
    pool: Pool,
    *,
    name: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 100,
    after: str | None = None,
) -> dict[str, Any]:
    """Stored samples, newest first: ``{"items": [...], "next": cursor or None}``.

    ``since`` is inclusive and ``until`` exclusive (epoch seconds); ``after`` is the ``next``
    of the previous page.
    """
    before_at, before_id = _uncursor(after) if after else (math.inf, 0)
    params = {
        "name": name,
        "since": -math.inf if since is None else since,
        "until": math.inf if until is None else until,
        "before_at": before_at,
        "before_id": before_id,
        "limit": limit + 1,
    }
    query = q.metrics.list_by_name if name is not None else q.metrics.list_all
    rows = await pool.fetch(query, params)
    items = [
        {
            "name": row["name"],
            "value": row["value"],
            "labels": json.loads(row["labels"]),
            "recorded_at": iso(row["recorded_at"]),
        }
        for row in rows[:limit]
    ]
    last = rows[limit - 1] if len(rows) > limit else None
    return {"items": items, "next": _cursor(last["recorded_at"], last["id"]) if last else None}
