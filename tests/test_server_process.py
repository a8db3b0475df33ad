"""The real `python server.py`: startup paths, configuration errors, signals, CLI commands."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time

import pytest

from tests.support import ROOT, run_cli


def test_cold_start_migrates_and_warm_start_does_not(server_factory, tmp_path):
    db = tmp_path / "warm.db"
    server = server_factory(db)
    status, body, _ = server.request("GET", "/api/system")
    assert status == 200 and body["migrations_applied"] >= 1
    assert server.stop() == 0
    server = server_factory(db)
    status, body, _ = server.request("GET", "/api/system")
    assert body["migrations_applied"] == 0
    assert 0 < body["startup_ms"] < 5000


@pytest.mark.parametrize(
    "name, value",
    [
        ("REYNARD_PORT", "abc"),
        ("REYNARD_SESSION_TTL", "-1"),
        ("REYNARD_SYNCHRONOUS", "sometimes"),
        ("REYNARD_READERS", "0"),
    ],
)
def test_a_bad_setting_stops_startup_with_one_clear_line_and_exit_2(tmp_path, name, value):
    result = run_cli("--db", str(tmp_path / "x.db"), env={name: value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and value in lines[0]
    assert not (tmp_path / "x.db").exists()


def test_a_bad_port_flag_is_exit_2(tmp_path):
    result = run_cli("--db", str(tmp_path / "x.db"), "--port", "99999")
    assert result.returncode == 2 and "REYNARD_PORT" in result.stderr


def test_a_tampered_migration_refuses_to_start(tmp_path):
    db = tmp_path / "t.db"
    assert run_cli("migrate", "--db", str(db)).returncode == 0
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
    conn.close()
    result = run_cli("--db", str(db), "--port", "0")
    assert result.returncode == 1
    assert "edited after it was applied" in result.stderr
    assert "Traceback" not in result.stderr


def test_sigterm_lets_an_in_flight_request_finish_then_exits_0(server_factory, tmp_path):
    db = tmp_path / "drain.db"
    server = server_factory(db, env={"REYNARD_LOG_LEVEL": "info"})
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # makes /ready's write probe wait ~2 s
    answers: list[int] = []
    worker = threading.Thread(
        target=lambda: answers.append(server.request("GET", "/api/health/ready")[0])
    )
    worker.start()
    time.sleep(0.5)
    server.signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(OSError):  # no longer accepting new connections
        server.request("GET", "/api/health/live", timeout=2)
    blocker.execute("ROLLBACK")
    blocker.close()
    worker.join(timeout=20)
    assert answers and answers[0] in (200, 503)
    assert server.wait(timeout=20) == 0
    assert "stopped cleanly" in server.output()


def test_check_backup_and_migrate_commands(tmp_path, server_factory):
    db = tmp_path / "c.db"
    result = run_cli("migrate", "--db", str(db))
    assert result.returncode == 0 and "applied" in result.stdout
    result = run_cli("check", "--db", str(db))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "integrity: ok" in result.stdout and "0 pending" in result.stdout
    server = server_factory(db)  # backup while the server runs
    server.request("GET", "/api/health/ready")
    copy = tmp_path / "copy.db"
    result = run_cli("backup", str(copy), "--db", str(db))
    assert result.returncode == 0, result.stderr
    conn = sqlite3.connect(copy)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] >= 1
    conn.close()
    assert run_cli("check", "--db", str(copy)).returncode == 0


def test_check_fails_on_a_damaged_or_missing_database(tmp_path):
    assert run_cli("check", "--db", str(tmp_path / "missing.db")).returncode == 1
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    result = run_cli("check", "--db", str(junk))
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_reload_restarts_on_a_code_change_and_takes_the_warm_path(server_factory, tmp_path):
    server = server_factory(tmp_path / "r.db", args=["--reload"])
    status, first, _ = server.request("GET", "/api/system")
    assert first["reload_mode"] is True
    os.utime(ROOT / "server.py")  # a code change, as far as the reloader can tell
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            status, body, _ = server.request("GET", "/api/system", timeout=2)
            if status == 200 and body["uptime"] < first["uptime"] + 0.2 and body != first:
                if body["migrations_applied"] == 0:
                    break
        except OSError:
            pass
        time.sleep(0.2)
    else:
        pytest.fail(f"server did not restart: {server.output()[-2000:]}")
    assert body["reload_mode"] is True
    assert server.stop() == 0


def test_each_request_is_logged_on_one_line_with_status_ms_and_request_id(server_factory, tmp_path):
    server = server_factory(tmp_path / "log.db", env={"REYNARD_LOG_LEVEL": "info"})
    server.request("GET", "/api/health/live", headers={"X-Request-ID": "trace-me-1"})
    server.request("GET", "/no/such/path", headers={"X-Request-ID": "trace-me-2"})
    assert server.stop() == 0  # the batched request log is flushed on shutdown
    lines = server.output().splitlines()
    live = [ln for ln in lines if "rid=trace-me-1" in ln]
    missing = [ln for ln in lines if "rid=trace-me-2" in ln]
    assert len(live) == 1 and " INFO reynard.http: GET /api/health/live 200 " in live[0]
    assert len(missing) == 1 and "GET /no/such/path 404 " in missing[0]
    assert live[0].split()[-2].endswith("ms")
