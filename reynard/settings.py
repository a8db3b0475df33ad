"""One frozen settings object, built from flags, then environment, then defaults."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping


class SettingsError(ValueError):
    """A configuration value is unusable; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    db: str = "reynard.db"
    host: str = "127.0.0.1"
    port: int = 8000
    session_ttl: int = 43200
    session_idle: int = 7200
    scrypt_n: int = 131072
    login_max_failures: int = 10
    login_window: int = 900
    auth_per_ip: int = 60
    metrics_interval: int = 60
    readers: int = 4
    synchronous: str = "NORMAL"
    log_level: str = "info"
    cors_origins: tuple[str, ...] = ("http://localhost:3000", "http://localhost:5173")
    reload_mode: bool = False
    # Not in the contract's table: knobs for tests and the worker.
    busy_timeout_ms: int = 5000
    task_workers: int = 2
    task_scheduler: bool = True
    task_lease: int = 30  # seconds a claimed task is owned before another worker may take it
    task_grace: int = 10  # seconds running tasks get to finish at shutdown


def _int(lo: int, hi: int | None = None) -> Callable[[str], int]:
    def cast(raw: str) -> int:
        value = int(raw.strip())
        if value < lo or (hi is not None and value > hi):
            raise ValueError
        return value

    return cast


def _choice(*options: str) -> Callable[[str], str]:
    def cast(raw: str) -> str:
        value = raw.strip().upper() if options[0].isupper() else raw.strip().lower()
        if value not in options:
            raise ValueError
        return value

    return cast


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("0", "1", "true", "false"):
        raise ValueError
    return value in ("1", "true")


def _origins(raw: str) -> tuple[str, ...]:
    return tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())


def _text(raw: str) -> str:
    if not raw.strip():
        raise ValueError
    return raw.strip()


# env name -> (field, cast, description of a good value)
_ENV: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "REYNARD_DB": ("db", _text, "a file path"),
    "REYNARD_HOST": ("host", _text, "a host name or address"),
    "REYNARD_PORT": ("port", _int(0, 65535), "an integer from 0 to 65535"),
    "REYNARD_SESSION_TTL": ("session_ttl", _int(1), "a positive number of seconds"),
    "REYNARD_SESSION_IDLE": ("session_idle", _int(1), "a positive number of seconds"),
    "REYNARD_SCRYPT_N": ("scrypt_n", _int(2, 2**24), "a power of two from 2 to 2^24"),
    "REYNARD_LOGIN_MAX_FAILURES": ("login_max_failures", _int(1), "a positive integer"),
    "REYNARD_LOGIN_WINDOW": ("login_window", _int(1), "a positive number of seconds"),
    "REYNARD_AUTH_PER_IP": ("auth_per_ip", _int(0), "a non-negative integer (0 = off)"),
    "REYNARD_METRICS_INTERVAL": ("metrics_interval", _int(1), "a positive number of seconds"),
    "REYNARD_READERS": ("readers", _int(1, 64), "an integer from 1 to 64"),
    "REYNARD_SYNCHRONOUS": ("synchronous", _choice("NORMAL", "FULL"), "NORMAL or FULL"),
    "REYNARD_LOG_LEVEL": (
        "log_level",
        _choice("debug", "info", "warning", "error", "critical"),
        "debug, info, warning, error or critical",
    ),
    "REYNARD_CORS_ORIGINS": ("cors_origins", _origins, "comma-separated origins"),
    "REYNARD_TASK_WORKERS": ("task_workers", _int(0, 64), "an integer from 0 to 64"),
    "REYNARD_TASK_SCHEDULER": ("task_scheduler", _flag, "1, 0, true or false"),
    "REYNARD_TASK_LEASE": ("task_lease", _int(1, 3600), "seconds from 1 to 3600"),
    "REYNARD_TASK_GRACE": ("task_grace", _int(0, 600), "seconds from 0 to 600"),
}


def _cast(name: str, raw: str) -> Any:
    attr, cast, wanted = _ENV[name]
    try:
        value = cast(raw)
    except ValueError:
        raise SettingsError(f"{name} must be {wanted}, got {raw!r}") from None
    if attr == "scrypt_n" and value & (value - 1):
        raise SettingsError(f"{name} must be {wanted}, got {raw!r}")
    return value


def load_settings(
    env: Mapping[str, str] | None = None, flags: Mapping[str, Any] | None = None, **overrides: Any
) -> Settings:
    """Build settings: explicit overrides and flags win over env, env over defaults."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for name, (attr, _, _) in _ENV.items():
        if name in env:
            values[attr] = _cast(name, env[name])
    for attr, raw in (flags or {}).items():
        if raw is None:
            continue
        name = next(n for n, spec in _ENV.items() if spec[0] == attr)
        values[attr] = _cast(name, str(raw))
    values.update(overrides)
    return Settings(**values)


def log_level(settings: Settings) -> int:
    return getattr(logging, settings.log_level.upper())
