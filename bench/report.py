"""The benchmark table: one row per scenario, ratios against the baseline."""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass


@dataclass
class Row:
    name: str
    rate: float
    unit: str
    p50_ms: float | None
    p99_ms: float | None
    share: float | None  # of the hello-world baseline, when comparable
    goal: str
    met: bool | None
    note: str = ""


def render(rows: list[Row], args: argparse.Namespace) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    command = f"python -m bench.run --seconds {args.seconds:g} --rounds {args.rounds}"
    if args.only:
        command += f" --only {args.only}"
    lines = [
        f"### {when} — `{command}` ({os.cpu_count()} cores)",
        "",
        "| scenario | rate | p50 ms | p99 ms | share of hello | goal | met | note |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    for r in rows:

        def f(x: float | None) -> str:
            return "" if x is None else f"{x:.2f}"

        met = "" if r.met is None else ("yes" if r.met else "NO")
        share = "" if r.share is None else f"{r.share:.0%}"
        lines.append(
            f"| {r.name} | {r.rate:,.0f} {r.unit} | {f(r.p50_ms)} | {f(r.p99_ms)} | "
            f"{share} | {r.goal} | {met} | {r.note} |"
        )
    return "\n".join(lines)
