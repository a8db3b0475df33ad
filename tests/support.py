"""Helpers for tests that run a real `python server.py` process."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FAST_ENV = {"REYNARD_SCRYPT_N": "1024", "REYNARD_LOG_LEVEL": "warning"}


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "server.py"), *args],
        cwd=ROOT,
        env={**os.environ, **FAST_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def create_admin(db: Path, username: str, password: str) -> None:
    """`python server.py create-admin`: creates, or resets one and ends its sessions."""
    result = run_cli(
        "create-admin",
        username,
        "--email",
        f"{username}@example.com",
        "--db",
        str(db),
        env={"REYNARD_ADMIN_PASSWORD": password},
    )
    assert result.returncode == 0, result.stderr


def task_row(db: Path | str, task_id: int) -> sqlite3.Row:
    """A background task's row, read straight from the database file."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM background_tasks WHERE id = ?", (task_id,)).fetchone()
    finally:
        conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`python server.py` on a free port and a given DB; stopped by stop() or the fixture."""

    def __init__(
        self,
        db: Path,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        log: Path | None = None,
    ) -> None:
        self.db = db
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **FAST_ENV, **(env or {})}
        self.args = args or []
        self.log_path = log or db.with_suffix(".log")
        self.proc: subprocess.Popen | None = None

    def start(self, wait: float = 20.0) -> ServerProcess:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "server.py"),
                "--db",
                str(self.db),
                "--port",
                str(self.port),
                *self.args,
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._log.close()
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.output()}")
            try:
                if self.request("GET", "/api/health/live")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not start: {self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, Any, dict[str, str]]:
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw, status, rh = resp.read(), resp.status, dict(resp.headers)
        except urllib.error.HTTPError as err:
            raw, status, rh = err.read(), err.code, dict(err.headers)
        return status, (json.loads(raw) if raw else None), rh

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        code = self.proc.returncode
        self.proc = None
        return code
