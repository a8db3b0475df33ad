from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

from tests.support import ROOT


def create_admin(db, username, email, password="admin password 1", extra_env=None):
    env = {**os.environ, "REYNARD_SCRYPT_N": "1024", "REYNARD_ADMIN_PASSWORD": password}
    env.update(extra_env or {})
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "server.py"),
            "create-admin",
            username,
            "--email",
            email,
            "--db",
            str(db),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def users(db):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT username, email, is_admin, is_active, password_hash FROM users"
        ).fetchall()
    finally:
        conn.close()


def test_create_admin_migrates_a_new_db_and_the_admin_can_sign_in(tmp_path, server_factory):
    db = tmp_path / "fresh.db"
    result = create_admin(db, "boss", "boss@example.com")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("created admin boss (id 1)")
    assert len(result.stdout.strip().splitlines()) == 1
    assert "admin password 1" not in result.stdout + result.stderr
    [(name, email, is_admin, is_active, hashed)] = users(db)
    assert (name, email, is_admin, is_active) == ("boss", "boss@example.com", 1, 1)
    assert hashed.startswith("scrypt$1024$")
    server = server_factory(db=db)
    status, body, _ = server.request(
        "POST", "/api/auth/login", {"username": "boss", "password": "admin password 1"}
    )
    assert status == 200 and body["user"]["is_admin"] is True
    status, _, _ = server.request("GET", "/api/users", token=body["access_token"])
    assert status == 200


def test_create_admin_promotes_an_existing_user_and_resets_the_password(tmp_path):
    db = tmp_path / "promote.db"
    assert create_admin(db, "boss", "boss@example.com").returncode == 0
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE users SET is_admin = 0, is_active = 0")
    conn.close()
    result = create_admin(db, "BOSS", "other@example.com", password="brand new password")
    assert result.returncode == 0, result.stderr
    assert "promoted existing user boss" in result.stdout
    [(name, email, is_admin, is_active, _)] = users(db)
    assert (name, email, is_admin, is_active) == ("boss", "boss@example.com", 1, 1)


def test_create_admin_refuses_bad_input_and_taken_emails(tmp_path):
    db = tmp_path / "bad.db"
    result = create_admin(db, "boss", "boss@example.com", password="short")
    assert result.returncode == 2 and "8-1024" in result.stderr
    result = create_admin(db, "no spaces", "boss@example.com")
    assert result.returncode == 2 and "username" in result.stderr
    assert create_admin(db, "boss", "boss@example.com").returncode == 0
    result = create_admin(db, "second", "BOSS@example.com")
    assert result.returncode == 1 and "email" in result.stderr
    assert len(users(db)) == 1
