"""Strict JSON parsing and a small field validator; no dependency, no aiohttp import."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from .errors import ApiError, validation

MAX_DEPTH = 32
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MISSING = object()


def invalid_json(reason: str) -> ApiError:
    return ApiError(400, "invalid_json", f"the body is not valid JSON: {reason}")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _int64(text: str) -> int:
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError("integer outside signed 64-bit range")
    return value


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400 overflows to Infinity, which the contract rejects
        raise ValueError("number too large")
    return value


def _check(value: Any, depth: int = 1) -> None:
    """Reject nesting deeper than MAX_DEPTH and strings that are not valid Unicode text."""
    stack = [(value, depth)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, str):
            _text(item)
        elif isinstance(item, (list, dict)):
            if level > MAX_DEPTH:
                raise ValueError(f"nesting deeper than {MAX_DEPTH}")
            if isinstance(item, dict):
                for key, val in item.items():
                    _text(key)
                    stack.append((val, level + 1))
            else:
                stack.extend((val, level + 1) for val in item)


def _text(s: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a string holds a lone surrogate") from None


def parse_json(raw: bytes) -> Any:
    """Parse a request body; every way it can be broken is a 400 invalid_json."""
    if not raw.strip():
        raise invalid_json("the body is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid_json("the body is not UTF-8") from None
    try:
        value = json.loads(
            text, parse_constant=_no_constants, parse_int=_int64, parse_float=_finite
        )
        _check(value)
    except RecursionError:
        raise invalid_json(f"nesting deeper than {MAX_DEPTH}") from None
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise invalid_json(str(exc).split(":")[0]) from None
    return value


# ---- fields -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """One body field: a type check plus an optional extra check returning an error or None."""

    kind: type | tuple[type, ...] | None  # None = any JSON value
    required: bool = False
    nullable: bool = False
    min_len: int | None = None
    max_len: int | None = None
    lo: int | float | None = None
    hi: int | float | None = None
    pattern: str | None = None
    check: Callable[[Any], str | None] | None = None


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    float: "a number",
    dict: "an object",
    list: "an array",
}


def _type_name(kind: Any) -> str:
    if isinstance(kind, tuple):
        return " or ".join(_type_name(k) for k in kind)
    return _TYPE_NAMES.get(kind, kind.__name__)


def _field_error(spec: Field, value: Any) -> str | None:
    if value is None:
        return None if spec.nullable else "must not be null"
    if spec.kind is not None:
        kinds = spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            return f"must be {_type_name(spec.kind)}"
    if isinstance(value, str):
        if spec.min_len is not None and len(value) < spec.min_len:
            return f"must be at least {spec.min_len} characters"
        if spec.max_len is not None and len(value) > spec.max_len:
            return f"must be at most {spec.max_len} characters"
        if "\x00" in value:
            return "must not contain NUL characters"
        if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
            return "has characters or a form that is not allowed"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if spec.lo is not None and value < spec.lo:
            return f"must be at least {spec.lo}"
        if spec.hi is not None and value > spec.hi:
            return f"must be at most {spec.hi}"
    return spec.check(value) if spec.check else None


def validate(body: Any, fields: dict[str, Field]) -> dict[str, Any]:
    """Return the known fields that are present; 422 listing every bad, missing or unknown one."""
    if not isinstance(body, dict):
        raise validation([{"field": "body", "message": "must be a JSON object"}])
    errors, out = [], {}
    for name in body:
        if name not in fields:
            errors.append({"field": name, "message": "is not a known field"})
    for name, spec in fields.items():
        value = body.get(name, MISSING)
        if value is MISSING:
            if spec.required:
                errors.append({"field": name, "message": "is required"})
            continue
        problem = _field_error(spec, value)
        if problem:
            errors.append({"field": name, "message": problem})
        else:
            out[name] = value
    if errors:
        raise validation(errors)
    return out


def query_int(params: Any, name: str, default: int, lo: int, hi: int) -> int:
    """An integer query parameter within [lo, hi]; 422 otherwise."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise validation([{"field": name, "message": "must be an integer"}]) from None
    if not lo <= value <= hi:
        raise validation([{"field": name, "message": f"must be from {lo} to {hi}"}])
    return value
