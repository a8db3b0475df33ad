"""Property-based fuzzing of every documented operation with schemathesis: no 5xx, ever."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import create_admin

pytestmark = pytest.mark.slow
# Operations that would end the fuzzer's own session are left out so the rest stay authorized.
KEEP_SESSION = r"/api/auth/(logout|logout-all|refresh|password|sessions/.*)$"


def test_fuzzing_the_openapi_document_finds_no_server_error(server_factory, tmp_path, capsys):
    cli = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    db = tmp_path / "fuzz.db"
    create_admin(db, "root", "fuzzing admin pw")
    server = server_factory(db, env={"REYNARD_AUTH_PER_IP": "0"})
    status, body, _ = server.request(
        "POST", "/api/auth/login", {"username": "root", "password": "fuzzing admin pw"}
    )
    assert status == 200
    result = subprocess.run(
        [
            cli,
            "run",
            f"{server.base}/api/openapi.json",
            "--checks",
            "not_a_server_error",
            "-H",
            f"Authorization: Bearer {body['access_token']}",
            "-n",
            os.environ.get("REYNARD_FUZZ_EXAMPLES", "15"),
            "--seed",
            os.environ.get("REYNARD_FUZZ_SEED", "20261204"),
            "--exclude-path-regex",
            KEEP_SESSION,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    summary = [line for line in result.stdout.splitlines() if "generated" in line]
    assert summary and "passed" in summary[-1], result.stdout[-2000:]
    assert "Traceback" not in server.output()
    with capsys.disabled():
        print(f"\nschemathesis: {summary[-1].strip()}")
