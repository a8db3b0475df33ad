"""Errors that become the contract's JSON error shape; no aiohttp imports, services raise these."""

from __future__ import annotations

import sqlite3
from typing import Any

# SQLite failures that mean "the database cannot serve right now", not "your request is bad".
UNAVAILABLE = {
    "SQLITE_BUSY": "the database is busy",
    "SQLITE_LOCKED": "the database is busy",
    "SQLITE_FULL": "the database or disk is full",
    "SQLITE_READONLY": "the database is read-only",
    "SQLITE_CANTOPEN": "the database file cannot be opened",
    "SQLITE_IOERR": "the database had an I/O error",
    "SQLITE_NOTADB": "the database file is not a database",
    "SQLITE_CORRUPT": "the database file is damaged",
}


class ApiError(Exception):
    """An error with an HTTP status, a stable code, and a sentence for humans."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"detail": self.detail, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def not_found(what: str = "resource") -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def conflict(code: str, detail: str) -> ApiError:
    return ApiError(409, code, detail)


def forbidden(detail: str = "you are not allowed to do this") -> ApiError:
    return ApiError(403, "forbidden", detail)


def validation(errors: list[dict[str, str]]) -> ApiError:
    return ApiError(422, "validation_error", "the request has invalid fields", errors=errors)


def field_error(field: str, message: str) -> ApiError:
    return validation([{"field": field, "message": message}])


def rate_limited(
    retry_after: float, detail: str = "too many requests; try again later"
) -> ApiError:
    seconds = max(1, int(retry_after + 0.999))
    return ApiError(429, "rate_limited", detail, headers={"Retry-After": str(seconds)})


def unavailable(reason: str, retry_after: int = 1) -> ApiError:
    return ApiError(
        503,
        "unavailable",
        f"service unavailable: {reason}; retry shortly",
        headers={"Retry-After": str(retry_after)},
    )


def sqlite_unavailable(exc: BaseException) -> ApiError | None:
    """Translate a SQLite error that means the DB cannot serve into a 503, else None."""
    if not isinstance(exc, sqlite3.Error):
        return None
    name = getattr(exc, "sqlite_errorname", "") or ""
    for prefix, reason in UNAVAILABLE.items():
        if name.startswith(prefix):
            return unavailable(reason)
    text = str(exc).lower()
    if "locked" in text or "readonly" in text or "read-only" in text or "disk" in text:
        return unavailable(text)
    return None
