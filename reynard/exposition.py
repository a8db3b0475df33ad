"""The Prometheus text exposition format 0.0.4 for GET /metrics; no aiohttp import.

Label values are escaped (backslash, double quote, newline) and every family's HELP and TYPE
come before its samples; histogram buckets are cumulative and end in ``+Inf`` (= ``_count``).
"""

from __future__ import annotations

import math
import os
import platform
import resource
import sqlite3
import time
from typing import Any

from . import metrics, stats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return "NaN" if math.isnan(value) else repr(value)


class _Text:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        help_text = help_text.replace("\\", "\\\\").replace("\n", "\\n")
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]

    def sample(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        if labels:
            inner = ",".join(f'{k}="{_label(str(v))}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{inner}}} {_num(value)}")
        else:
            self.lines.append(f"{name} {_num(value)}")

    def one(self, name: str, kind: str, help_text: str, value: float) -> None:
        self.family(name, kind, help_text)
        self.sample(name, value)


def _process() -> dict[str, float]:
    """CPU time, resident memory and open descriptors of this process (Linux /proc if there)."""
    out: dict[str, float] = {"cpu": time.process_time()}
    try:
        with open("/proc/self/statm", "rb") as f:
            out["rss"] = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        out["fds"] = len(os.listdir("/proc/self/fd"))
    except OSError:
        out["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def render(
    registry: metrics.Registry,
    counts: stats.Counts,
    pool: dict[str, Any],
    *,
    uptime: float,
    started_at: float,
    version: str,
) -> str:
    """The Prometheus text format 0.0.4 for GET /metrics."""
    t = _Text()
    name = "reynard_http_requests_total"
    t.family(name, "counter", "HTTP requests by route template, method and status.")
    for (route, method, status), n in sorted(registry.requests.items()):
        t.sample(name, n, {"route": route, "method": method, "status": str(status)})
    name = "reynard_http_request_duration_seconds"
    t.family(name, "histogram", "Time from request start to handler return, by route and method.")
    for (route, method), hist in sorted(registry.latency.items()):
        cumulative = 0
        for bound, n in zip((*metrics.BUCKETS, math.inf), hist.buckets, strict=True):
            cumulative += n
            le = "+Inf" if math.isinf(bound) else repr(bound)
            t.sample(f"{name}_bucket", cumulative, {"route": route, "method": method, "le": le})
        t.sample(f"{name}_sum", hist.sum, {"route": route, "method": method})
        t.sample(f"{name}_count", hist.count, {"route": route, "method": method})

    pool_counters = {
        "reads": "Named-query reads (Pool.fetch), fast or on a reader thread.",
        "fast_reads": "Reads answered on the event loop without a thread hop.",
        "reader_waits": "Reads that waited because every reader connection was busy.",
        "writes": "Write jobs committed or failed by the writer.",
        "write_batches": "Group-commit transactions run by the writer.",
        "writer_waits": "Times the writer was busy when a batch or transaction wanted it.",
    }
    for key, help_text in pool_counters.items():
        t.one(f"reynard_db_pool_{key}_total", "counter", help_text, pool[key])
    t.one("reynard_db_pool_queued_writes", "gauge", "Write jobs waiting.", pool["queued_writes"])
    t.one("reynard_db_pool_readers", "gauge", "Reader connections.", pool["readers"])
    t.one("reynard_db_pool_readers_in_use", "gauge", "Readers busy.", pool["readers_in_use"])
    t.one("reynard_db_bytes", "gauge", "Size of the SQLite database file.", counts.db_bytes)
    t.one("reynard_db_wal_bytes", "gauge", "Size of the SQLite WAL file.", counts.wal_bytes)
    t.one("reynard_db_pages", "gauge", "SQLite page_count.", counts.page_count)
    t.one("reynard_db_freelist_pages", "gauge", "SQLite freelist_count.", counts.freelist_count)
    t.one("reynard_db_page_size_bytes", "gauge", "SQLite page_size.", counts.page_size)
    t.one("reynard_users", "gauge", "User accounts.", counts.users)
    t.one(
        "reynard_sessions_active",
        "gauge",
        "Sessions not revoked or expired.",
        counts.active_sessions,
    )
    t.one(
        "reynard_cache_entries",
        "gauge",
        "Unexpired entries in users' keyspaces.",
        counts.cache_entries,
    )
    t.family("reynard_tasks", "gauge", "Background tasks by status.")
    for status, n in counts.tasks.items():
        t.sample("reynard_tasks", n, {"status": status})
    t.one("reynard_uptime_seconds", "gauge", "Seconds since this process started.", uptime)

    t.family("reynard_build_info", "gauge", "Versions of this server, Python and SQLite.")
    t.sample(
        "reynard_build_info",
        1,
        {"version": version, "python": platform.python_version(), "sqlite": sqlite3.sqlite_version},
    )
    proc = _process()
    t.one("process_cpu_seconds_total", "counter", "User and system CPU time.", proc["cpu"])
    t.one("process_resident_memory_bytes", "gauge", "Resident memory size.", proc["rss"])
    if "fds" in proc:
        t.one("process_open_fds", "gauge", "Open file descriptors.", proc["fds"])
    t.one("process_start_time_seconds", "gauge", "Start time, Unix epoch seconds.", started_at)
    return "\n".join(t.lines) + "\n"
