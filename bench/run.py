"""One command for every benchmark: `python -m bench.run [--seconds 5] [--only NAME,...]`.

Starts an aiohttp hello-world and one Reynard server process on a temp DB, drives both with wrk
from this machine, and prints one table of ratios against the baseline measured in the same run
(paired, just before each scenario) — absolute figures on shared machines are noise, ratios are
not. The baseline runs on asyncio's default loop, as in PERF_NOTES; Reynard runs on uvloop when
it is installed, so a reference row shows what uvloop alone is worth to a hello-world.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench import wrk
from bench.report import Row, render

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    def __init__(self, argv: list[str], port: int, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        log = open(os.environ.get("BENCH_LOG", os.devnull), "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=log
        )
        log.close()

    def wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.base + path, timeout=1).read()
                return
            except OSError:
                time.sleep(0.005)
        raise RuntimeError(f"{self.base} did not come up")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def call(base: str, method: str, path: str, body=None, token: str | None = None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def _share_row(
    name: str, load: wrk.Load, base_rps: float, goal: float | None, note: str = ""
) -> Row:
    share = load.rps / base_rps
    met = None if goal is None else share >= goal
    if load.bad:
        note = f"{load.bad} bad responses! {note}"
        met = False
    return Row(
        name,
        load.rps,
        "req/s",
        load.p50_ms,
        load.p99_ms,
        share,
        f">= {goal:.0%} of hello" if goal is not None else "",
        met,
        note,
    )


PUT_LUA = """
counter = 0
request = function()
  counter = counter + 1
  local body = '{"value": {"n": ' .. counter .. ', "s": "some cached text"}, "ttl": 3600}'
  return wrk.format("PUT", "/api/cache/bench-" .. (counter % 1000), {
    ["Content-Type"] = "application/json", ["Authorization"] = "Bearer TOKEN"}, body)
end
"""


def bench_logins(base: str, seconds: float, username: str, password: str) -> tuple[Row, Row]:
    """Logins/s at the server's scrypt cost, and p99 of /live measured meanwhile."""
    import aiohttp

    n = int(os.environ.get("REYNARD_SCRYPT_N", "131072"))
    single = min(_time_scrypt(n) for _ in range(3))
    ceiling = (os.cpu_count() or 1) / single

    async def run() -> tuple[int, list[float]]:
        done, probes = 0, []
        stop_at = time.monotonic() + seconds
        async with aiohttp.ClientSession() as session:

            async def login() -> None:
                nonlocal done
                while time.monotonic() < stop_at:
                    async with session.post(
                        f"{base}/api/auth/login", json={"username": username, "password": password}
                    ) as resp:
                        await resp.read()
                        if resp.status == 200:
                            done += 1

            async def probe() -> None:
                while time.monotonic() < stop_at:
                    started = time.perf_counter()
                    async with session.get(f"{base}/api/health/live") as resp:
                        await resp.read()
                    probes.append((time.perf_counter() - started) * 1000)
                    await asyncio.sleep(0.01)

            await asyncio.gather(*[login() for _ in range(2 * (os.cpu_count() or 1))], probe())
        return done, probes

    done, probes = asyncio.run(run())
    rate = done / seconds
    share = rate / ceiling
    p99 = statistics.quantiles(probes, n=100)[98] if len(probes) > 2 else float("nan")
    return (
        Row(
            f"login (scrypt n={n})",
            rate,
            "logins/s",
            None,
            None,
            share,
            ">= 90% of cores/hash time",
            share >= 0.9,
            f"one hash {single * 1000:.0f} ms; ceiling {ceiling:.1f}/s",
        ),
        Row(
            "live while logins run",
            len(probes) / seconds,
            "probes/s",
            statistics.median(probes),
            p99,
            None,
            "p99 < 50 ms",
            p99 < 50,
        ),
    )


def _time_scrypt(n: int) -> float:
    started = time.perf_counter()
    hashlib.scrypt(
        b"password", salt=os.urandom(16), n=n, r=8, p=1, maxmem=n * 8 * 8 * 130, dklen=32
    )
    return time.perf_counter() - started


def bench_redis(seconds: float) -> dict[str, float] | None:
    if not (shutil.which("redis-server") and shutil.which("redis-benchmark")):
        return None
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        requests = str(int(30000 * seconds))
        out = subprocess.run(
            ["redis-benchmark", "-p", str(port), "-c", "32", "-n", requests, "-t", "set,get", "-q"],
            capture_output=True,
            text=True,
        ).stdout
        rates = {
            m.group(1): float(m.group(2))
            for m in re.finditer(r"(SET|GET): ([\d.]+) requests per second", out)
        }
        return rates or None
    finally:
        server.terminate()
        server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="per wrk run (one round)")
    parser.add_argument("--rounds", type=int, default=7, help="baseline/scenario rounds per row")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--write", action="store_true", help="append the table to RESULTS.md")
    args = parser.parse_args()
    only = {s for s in args.only.split(",") if s}
    if not wrk.available():
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    rows: list[Row] = []
    hello_port = free_port()
    hello = Process([sys.executable, "-m", "bench.hello", str(hello_port)], hello_port)
    hello.wait_ready("/")
    baselines: list[float] = []

    def paired(name: str, url: str, goal: float | None, note: str = "", **kw) -> Row:
        """Baseline and scenario alternate in short rounds, so drift hits both alike; the row
        is the round with the median share, and the note gives the spread."""
        rounds = []
        for _ in range(args.rounds):
            base = wrk.run(hello.base + "/", args.seconds)
            baselines.append(base.rps)
            rounds.append((wrk.run(url, args.seconds, **kw), base.rps))
        rounds.sort(key=lambda r: r[0].rps / r[1])
        load, base_rps = rounds[len(rounds) // 2]
        if len(rounds) > 1:
            low, high = rounds[0][0].rps / rounds[0][1], rounds[-1][0].rps / rounds[-1][1]
            note = f"{note} {len(rounds)} rounds: {low:.0%}-{high:.0%}".strip()
        return _share_row(name, load, base_rps, goal, note)

    tmp = tempfile.mkdtemp(prefix="reynard-bench-")
    port = free_port()
    env = {
        "REYNARD_DB": f"{tmp}/bench.db",
        "REYNARD_PORT": str(port),
        "REYNARD_AUTH_PER_IP": "0",
        "REYNARD_TEST_HANDLERS": "1",  # test.noop for the task queue figures
        "REYNARD_ADMIN_PASSWORD": "bench admin password",
    }
    subprocess.run(
        [sys.executable, "server.py", "create-admin", "root", "--email", "root@example.com"],
        cwd=ROOT, env={**os.environ, **env}, check=True, capture_output=True,
    )  # fmt: skip
    started = time.perf_counter()
    server = Process([sys.executable, "server.py"], port, env)
    server.wait_ready("/api/health/live")
    cold_ms = (time.perf_counter() - started) * 1000
    try:
        url = server.base

        def want(name: str) -> bool:
            return not only or name in only

        if want("uvloop"):
            fast_port = free_port()
            fast_hello = Process(
                [sys.executable, "-m", "bench.hello", str(fast_port), "--uvloop"], fast_port
            )
            fast_hello.wait_ready("/")
            rows.append(paired("hello-world on uvloop (reference)", fast_hello.base + "/", None))
            fast_hello.stop()
        if want("live"):
            rows.append(paired("GET /api/health/live", url + "/api/health/live", 0.8))
        if want("ready"):
            rows.append(paired("GET /api/health/ready", url + "/api/health/ready", None))
        password = "bench password 123"
        token = None
        if want("me") or want("cache") or want("login") or want("full"):
            user = {"username": "bench", "password": password, "email": "bench@example.com"}
            call(url, "POST", "/api/auth/register", user)
            status, body = call(
                url, "POST", "/api/auth/login", {"username": "bench", "password": password}
            )
            token = body["access_token"] if status == 200 else None
        bearer = {"Authorization": f"Bearer {token}"}
        if want("me") and token:
            rows.append(paired("GET /api/auth/me", url + "/api/auth/me", 0.6, headers=bearer))
        if want("cache") and token:
            redis = bench_redis(max(args.seconds * 5, 3))
            call(url, "PUT", "/api/cache/bench", {"value": {"hello": "world", "n": 42}}, token)
            get = paired("GET /api/cache/{key}", url + "/api/cache/bench", 0.6, headers=bearer)
            put = paired("PUT /api/cache/{key}", url + "/api/cache/x", 0.3,
                         lua=PUT_LUA.replace("TOKEN", token))  # fmt: skip
            if redis:
                get.note += f" redis GET {redis['GET']:,.0f}/s; ours {get.rate / redis['GET']:.2f}x"
                put.note += f" redis SET {redis['SET']:,.0f}/s; ours {put.rate / redis['SET']:.2f}x"
            rows += [get, put]
        if want("full") and token:
            # The same PUT load on a server with synchronous=FULL (an fsync per commit batch).
            server.stop()
            server = Process(
                [sys.executable, "server.py"], port, {**env, "REYNARD_SYNCHRONOUS": "FULL"}
            )
            server.wait_ready("/api/health/live")
            rows.append(paired("PUT /api/cache/{key}, synchronous=FULL", url + "/api/cache/x",
                               None, lua=PUT_LUA.replace("TOKEN", token)))  # fmt: skip
            server.stop()
            server = Process([sys.executable, "server.py"], port, env)
            server.wait_ready("/api/health/live")
        if want("login") and token:
            rows.extend(bench_logins(url, max(args.seconds, 5), "bench", password))
        if want("tasks"):
            from bench.tasks import bench_tasks

            status, body = call(
                url,
                "POST",
                "/api/auth/login",
                {"username": "root", "password": "bench admin password"},
            )
            rows.extend(bench_tasks(url, body["access_token"]))
        if want("startup"):
            server.stop()
            warm, reported = [], []
            for _ in range(5):
                t0 = time.perf_counter()
                again = Process([sys.executable, "server.py"], port, env)
                again.wait_ready("/api/health/live")
                warm.append((time.perf_counter() - t0) * 1000)
                reported.append(call(again.base, "GET", "/api/system")[1]["startup_ms"])
                again.stop()
            server = Process([sys.executable, "server.py"], port, env)
            server.wait_ready("/api/health/live")
            rows.append(
                Row(
                    "warm start to first answer",
                    statistics.median(warm),
                    "ms",
                    None,
                    None,
                    None,
                    "< 300 ms",
                    statistics.median(warm) < 300,
                    f"process spawn to first 200, interpreter start included; the server's own "
                    f"startup_ms {statistics.median(reported):.0f} ms; cold start {cold_ms:.0f} ms",
                )
            )
    finally:
        server.stop()
        hello.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if baselines:
        rows.insert(
            0,
            Row(
                "hello-world baseline (median of rounds)",
                statistics.median(baselines),
                "req/s",
                None,
                None,
                1.0,
                "",
                None,
                f"{len(baselines)} runs: {min(baselines):,.0f}-{max(baselines):,.0f}",
            ),
        )

    table = render(rows, args)
    print(table)
    if args.write:
        with open(ROOT / "bench" / "RESULTS.md", "a") as out:
            out.write("\n" + table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
