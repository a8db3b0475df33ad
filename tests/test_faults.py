"""Faults on real server processes: SIGKILL and SIGTERM under writes, a held write lock,
a full disk and a filesystem that turns read-only. Nothing acknowledged may be lost."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from tests.support import ServerProcess

pytestmark = pytest.mark.slow
PASSWORD = "fault tolerant pw"


def sign_in(server: ServerProcess, name: str = "ledger") -> str:
    status, _, _ = server.request(
        "POST",
        "/api/auth/register",
        {"username": name, "email": f"{name}@example.com", "password": PASSWORD},
    )
    assert status in (201, 409)
    status, body, _ = server.request(
        "POST", "/api/auth/login", {"username": name, "password": PASSWORD}
    )
    assert status == 200, body
    return body["access_token"]


async def write_until(
    server: ServerProcess, token: str, stop: asyncio.Event, clients: int = 16, value_size: int = 64
) -> tuple[dict[str, int], int]:
    """Concurrent cache PUTs until `stop`; returns the acknowledged {key: value} and the 5xx."""
    acked: dict[str, int] = {}
    server_errors = 0
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=10)

    async def client(cid: int) -> None:
        nonlocal server_errors
        async with aiohttp.ClientSession(timeout=timeout) as session:
            i = 0
            while not stop.is_set():
                key = f"c{cid}-{i}"
                try:
                    async with session.put(
                        f"{server.base}/api/cache/{key}",
                        headers=headers,
                        json={"value": {"i": i, "pad": "x" * value_size}},
                    ) as resp:
                        await resp.read()
                        if resp.status == 200:
                            acked[key] = i
                        elif resp.status >= 500 and resp.status != 503:
                            server_errors += 1
                except (TimeoutError, aiohttp.ClientError):
                    await asyncio.sleep(0.01)  # the server is gone or going
                i += 1

    tasks = [asyncio.create_task(client(c)) for c in range(clients)]
    await asyncio.gather(*tasks)
    return acked, server_errors


def assert_all_present(db: Path, acked: dict[str, int]) -> None:
    conn = sqlite3.connect(db)
    rows = dict(
        conn.execute(
            "SELECT key, json_extract(value, '$.i') FROM cache_entries WHERE namespace LIKE 'u:%'"
        ).fetchall()
    )
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    missing = [k for k, v in acked.items() if rows.get(k) != v]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"


async def test_sigkill_during_writes_loses_no_acknowledged_write(server_factory, tmp_path):
    db = tmp_path / "kill.db"
    server = server_factory(db)
    token = sign_in(server)
    stop = asyncio.Event()
    writer = asyncio.create_task(write_until(server, token, stop))
    await asyncio.sleep(1.5)
    server.signal(signal.SIGKILL)
    server.wait()
    await asyncio.sleep(0.2)
    stop.set()
    acked, server_errors = await writer
    assert len(acked) > 100 and server_errors == 0
    assert_all_present(db, acked)
    server = server_factory(db)  # and it serves them after restart
    key, value = next(iter(acked.items()))
    status, body, _ = server.request("GET", f"/api/cache/{key}", token=sign_in(server))
    assert status == 200 and body["value"]["i"] == value


async def test_sigterm_during_writes_drains_and_loses_nothing(server_factory, tmp_path):
    db = tmp_path / "term.db"
    server = server_factory(db)
    token = sign_in(server)
    stop = asyncio.Event()
    writer = asyncio.create_task(write_until(server, token, stop))
    await asyncio.sleep(1.0)
    server.signal(signal.SIGTERM)
    code = await asyncio.to_thread(server.wait, 30)
    stop.set()
    acked, server_errors = await writer
    assert code == 0 and server_errors == 0 and len(acked) > 50
    assert_all_present(db, acked)


def test_a_held_write_lock_is_503_with_retry_after_then_recovers(server_factory, tmp_path):
    db = tmp_path / "lock.db"
    server = server_factory(db)
    token = sign_in(server)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        status, body, headers = server.request(
            "PUT", "/api/cache/k", {"value": 1}, token=token, timeout=30
        )
        waited = time.monotonic() - started
        assert status == 503 and body["code"] == "unavailable", body
        assert int(headers["Retry-After"]) >= 1
        assert 4.0 <= waited < 9.0  # the busy timeout (5 s), not forever
        status, body, _ = server.request("GET", "/api/auth/me", token=token)
        assert status == 200  # reads carry on
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    status, body, _ = server.request("PUT", "/api/cache/k", {"value": 2}, token=token)
    assert status == 200 and body["value"] == 2


def _root_mount(args: list[str]) -> None:
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} failed ({result.stderr.strip()}); these fault tests need "
            "root and mount, as CI has"
        )


@pytest.fixture
def small_disk(tmp_path):
    where = tmp_path / "small"
    where.mkdir()
    _root_mount(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(where)])
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(where: Path) -> Path:
    filler = where / "filler"
    with open(filler, "wb") as out:
        chunk = b"\0" * 65536
        try:
            while True:
                out.write(chunk)
                out.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_is_503_without_corruption_and_recovers(small_disk):
    db = small_disk / "full.db"
    server = ServerProcess(db, log=small_disk.parent / "full.log").start()
    try:
        token = sign_in(server)
        filler = _fill(small_disk)
        statuses, acked = [], {}
        for i in range(3000):
            status, body, headers = server.request(
                "PUT", f"/api/cache/k{i}", {"value": {"i": i, "pad": "y" * 8000}}, token=token
            )
            statuses.append(status)
            if status == 200:
                acked[f"k{i}"] = i
            else:
                assert status == 503 and body["code"] == "unavailable", body
                assert "Retry-After" in headers
                break
        assert statuses[-1] == 503, "the disk never filled"
        status, body, _ = server.request("GET", "/api/health/ready")
        assert status == 503 and body["checks"]["disk:free"][0]["status"] == "fail"
        assert server.request("GET", "/api/auth/me", token=token)[0] == 200  # reads work
        filler.unlink()
        status, body, _ = server.request(
            "PUT", "/api/cache/after", {"value": {"i": -1}}, token=token
        )
        assert status == 200, body
        acked["after"] = -1
        assert server.request("GET", "/api/health/ready")[0] == 200
    finally:
        assert server.stop() == 0
    assert_all_present(db, acked)


@pytest.fixture
def ext4_disk(tmp_path):
    """A real ext4 filesystem on a loop device, mounted errors=remount-ro."""
    image = tmp_path / "fs.img"
    with open(image, "wb") as out:
        out.truncate(64 * 1024 * 1024)
    _root_mount(["mkfs.ext4", "-q", "-F", str(image)])
    loop = subprocess.run(
        ["losetup", "--find", "--show", str(image)], capture_output=True, text=True
    )
    if loop.returncode != 0:
        pytest.fail(f"losetup failed: {loop.stderr}")
    device = loop.stdout.strip()
    where = tmp_path / "ext4"
    where.mkdir()
    _root_mount(["mount", "-o", "errors=remount-ro", device, str(where)])
    yield where, Path(device).name
    subprocess.run(["umount", "-l", str(where)], check=False)
    subprocess.run(["losetup", "-d", device], check=False)


def test_a_filesystem_turned_read_only_fails_ready_and_writes_but_serves_reads(ext4_disk):
    where, device = ext4_disk
    db = where / "ro.db"
    server = ServerProcess(db, log=where.parent / "ro.log").start()
    try:
        token = sign_in(server)
        assert (
            server.request("PUT", "/api/cache/kept", {"value": "still here"}, token=token)[0] == 200
        )
        # The kernel's own switch: ext4 handles an error by remounting read-only (emergency_ro).
        Path(f"/sys/fs/ext4/{device}/trigger_fs_error").write_text("reynard fault test\n")
        status, body, _ = server.request("PUT", "/api/cache/new", {"value": 1}, token=token)
        assert status == 503 and body["code"] == "unavailable", body
        status, body, _ = server.request("GET", "/api/health/ready")
        assert status == 503 and body["status"] == "fail"
        assert body["checks"]["sqlite:write"][0]["status"] == "fail"
        status, body, _ = server.request("GET", "/api/cache/kept", token=token)
        assert status == 200 and body["value"] == "still here"
        assert server.request("GET", "/api/health/live")[0] == 200
    finally:
        server.stop()
    assert "Traceback" not in server.output()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
