"""Task queue figures: no-op tasks completed per second, and enqueue -> start latency.

Needs the server started with REYNARD_TEST_HANDLERS=1 (for `test.noop`) and an admin; bench.run
does both.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import datetime

import aiohttp

from bench.report import Row

BATCH = 3000
LATENCY_SAMPLES = 100


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def _run(base: str, token: str) -> tuple[float, float, list[float]]:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        # Throughput: enqueue BATCH tasks due together a few seconds ahead, then time the drain,
        # so what is measured is the worker's claim -> run -> finish loop, not the enqueueing.
        due = time.time() + 4
        run_at = datetime.utcfromtimestamp(due).isoformat() + "Z"
        sem = asyncio.Semaphore(16)

        async def enqueue(i: int) -> None:
            async with (
                sem,
                http.post(
                    f"{base}/api/tasks",
                    json={"name": "test.noop", "payload": {"i": i}, "run_at": run_at},
                ) as resp,
            ):
                assert resp.status == 202, await resp.text()

        await asyncio.gather(*[enqueue(i) for i in range(BATCH)])
        while time.time() < due:
            await asyncio.sleep(0.05)
        while True:
            async with http.get(f"{base}/api/stats") as resp:
                stats = await resp.json()
            if stats["tasks"]["succeeded"] >= BATCH:
                break
            await asyncio.sleep(0.05)
        drained = time.time() - due
        # Latency: one task at a time, nothing else queued.
        waits = []
        for _ in range(LATENCY_SAMPLES):
            async with http.post(f"{base}/api/tasks", json={"name": "test.noop"}) as resp:
                task = await resp.json()
            while task["status"] in ("pending", "running"):
                await asyncio.sleep(0.005)
                async with http.get(f"{base}/api/tasks/{task['id']}") as resp:
                    task = await resp.json()
            waits.append((_ts(task["started_at"]) - _ts(task["created_at"])) * 1000)
        return BATCH / drained, drained, waits


def bench_tasks(base: str, token: str) -> list[Row]:
    rate, drained, waits = asyncio.run(_run(base, token))
    p50 = statistics.median(waits)
    p99 = statistics.quantiles(waits, n=100)[98]
    return [
        Row(
            "no-op tasks through the queue",
            rate,
            "tasks/s",
            None,
            None,
            None,
            ">= 1,000/s",
            rate >= 1000,
            f"{BATCH} tasks drained in {drained:.2f} s",
        ),
        Row(
            "task enqueue -> start",
            len(waits),
            "samples",
            p50,
            p99,
            None,
            "",
            None,
            "p50/p99 of started_at - created_at",
        ),
    ]
