from __future__ import annotations

from pathlib import Path

import pytest

from reynard.app import create_app
from reynard.clock import FakeClock
from reynard.settings import load_settings
from tests.support import ServerProcess


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "test.db"


@pytest.fixture
def settings(db_path: Path):
    """Settings for an in-process app on a fresh file; cheap scrypt, no background scheduler."""
    return load_settings(
        env={}, db=str(db_path), scrypt_n=1024, readers=2, task_scheduler=False, auth_per_ip=0
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(aiohttp_client, settings, clock):
    """A test client on a real app with a real SQLite file and a controllable clock."""
    return await aiohttp_client(create_app(settings, clock=clock))


@pytest.fixture
def server_factory(tmp_path: Path):
    """Start real `python server.py` processes; every one is stopped at the end."""
    started: list[ServerProcess] = []

    def start(
        db: Path | None = None, env: dict[str, str] | None = None, args: list[str] | None = None
    ) -> ServerProcess:
        proc = ServerProcess(db or tmp_path / "server.db", env=env, args=args).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


PASSWORD = "correct horse battery staple"


@pytest.fixture
def make_user(client, db_path):
    """Register a user through the API (optionally made admin in the DB) and sign in.

    Returns (token, user_json). Needs the accounts routes (issue 3).
    """
    counter = {"n": 0}

    async def make(
        username: str | None = None, *, admin: bool = False, password: str = PASSWORD
    ) -> tuple[str, dict]:
        counter["n"] += 1
        username = username or f"user{counter['n']}"
        resp = await client.post(
            "/api/auth/register",
            json={"username": username, "email": f"{username}@example.com", "password": password},
        )
        assert resp.status == 201, await resp.text()
        user = await resp.json()
        if admin:
            import sqlite3

            conn = sqlite3.connect(db_path)
            with conn:
                conn.execute("UPDATE users SET is_admin = 1 WHERE id = ?", (user["id"],))
            conn.close()
            user["is_admin"] = True
        resp = await client.post(
            "/api/auth/login", json={"username": username, "password": password}
        )
        assert resp.status == 200, await resp.text()
        return (await resp.json())["access_token"], user

    return make
