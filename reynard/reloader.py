"""`--reload`: run the server as a child process and restart it when code changes (stdlib only)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.5
log = logging.getLogger("reynard.reload")


def _snapshot() -> dict[str, float]:
    files = [ROOT / "server.py", *(ROOT / "reynard").rglob("*.py"), *(ROOT / "sql").rglob("*.sql")]
    stamps = {}
    for path in files:
        try:
            stamps[str(path)] = path.stat().st_mtime
        except OSError:
            continue
    return stamps


def run_with_reload(argv: list[str]) -> int:
    child_argv = [sys.executable, str(ROOT / "server.py"), *(a for a in argv if a != "--reload")]
    env = {**os.environ, "REYNARD_RELOAD_CHILD": "1"}
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        before = _snapshot()
        child = subprocess.Popen(child_argv, env=env)
        while not stopping and child.poll() is None and _snapshot() == before:
            time.sleep(POLL_SECONDS)
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if stopping:
            return 0
        if child.returncode not in (0, -signal.SIGTERM) and _snapshot() == before:
            log.error("server exited with %s; waiting for a code change", child.returncode)
            while not stopping and _snapshot() == before:
                time.sleep(POLL_SECONDS)
            if stopping:
                return 0
        log.info("code changed; restarting")
