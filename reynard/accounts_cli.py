"""`python server.py create-admin USERNAME --email EMAIL`.

The password comes from REYNARD_ADMIN_PASSWORD or is asked twice with getpass. A new username
becomes an active admin. An existing username (ignoring case) is promoted to an active admin and
given this password, and its sessions end: the command doubles as admin-access recovery. Its email
is left as it is.
"""

from __future__ import annotations

import getpass
import os
import re
import sqlite3
import sys
import time

from .accounts import insert_user
from .connections import configure
from .errors import ApiError
from .migrate import open_and_migrate
from .passwords import hash_password
from .queries import q
from .settings import Settings

USERNAME = re.compile(r"[A-Za-z0-9_.-]{3,32}")
EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+")


def _password() -> str | None:
    env = os.environ.get("REYNARD_ADMIN_PASSWORD")
    if env is not None:
        return env
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password (again): ") != first:
        print("error: the passwords do not match", file=sys.stderr)
        return None
    return first


def create_admin(settings: Settings, username: str, email: str) -> int:
    """Create (or promote) an admin; prints one line; 0 on success, 1 on a conflict, 2 on input."""
    if not USERNAME.fullmatch(username):
        print("error: the username must be 3-32 of A-Z a-z 0-9 _ . -", file=sys.stderr)
        return 2
    if not (3 <= len(email) <= 254 and EMAIL.fullmatch(email)):
        print("error: the email must look like name@example.com", file=sys.stderr)
        return 2
    password = _password()
    if password is None:
        return 2
    if not 8 <= len(password) <= 1024:
        print("error: the password must be 8-1024 characters", file=sys.stderr)
        return 2
    open_and_migrate(settings.db)
    password_hash = hash_password(password, settings.scrypt_n)
    now = time.time()
    conn = sqlite3.connect(settings.db, isolation_level=None)
    configure(conn, settings.synchronous, settings.busy_timeout_ms, read_only=False)
    try:
        conn.execute("BEGIN IMMEDIATE")
        existing = q.users.by_username.run(conn, {"username": username})
        if existing is None:
            row = insert_user(
                conn,
                {
                    "username": username,
                    "email": email,
                    "full_name": None,
                    "password_hash": password_hash,
                    "is_admin": 1,
                    "now": now,
                },
            )
            message = f"created admin {row['username']} (id {row['id']})"
        else:
            row = q.users.promote.run(
                conn, {"id": existing["id"], "password_hash": password_hash, "now": now}
            )[0]
            q.sessions.revoke_for_user.run(conn, {"user_id": row["id"], "now": now, "keep": None})
            message = (
                f"promoted existing user {row['username']} (id {row['id']}) to admin with the "
                f"new password; email unchanged ({row['email']})"
            )
        conn.execute("COMMIT")
    except ApiError as exc:
        conn.execute("ROLLBACK")
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    print(message)
    return 0
