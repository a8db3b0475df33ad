"""Helpers shared by the HTTP handlers."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from ..errors import ApiError
from ..validation import parse_json

MAX_BODY = 64 * 1024
_JSON_TYPES = ("application/json",)


# One encoder for every response: json.dumps with non-default options builds a new encoder on
# each call, which costs more than encoding a small body.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def dumps(data: Any) -> str:
    return _ENCODER.encode(data)


def json_response(
    data: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> web.Response:
    return web.Response(
        text=dumps(data), status=status, headers=headers, content_type=content_type, charset="utf-8"
    )


def no_content() -> web.Response:
    return web.Response(status=204)


def too_large() -> ApiError:
    return ApiError(413, "payload_too_large", f"the body is larger than {MAX_BODY} bytes")


async def read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise too_large()
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large() from None
    if len(raw) > MAX_BODY:
        raise too_large()
    return raw


def _is_json(content_type: str) -> bool:
    return content_type in _JSON_TYPES or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


async def read_json(request: web.Request, *, optional: bool = False) -> Any:
    """The JSON body; 415 for another content type, 400 for broken JSON, 413 when too large.

    With ``optional``, an absent body (no content, no content type) reads as ``{}``.
    """
    raw = await read_body(request)
    if optional and not raw.strip() and not request.headers.get("Content-Type"):
        return {}
    if not _is_json(request.content_type):
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        )
    return parse_json(raw)


async def read_json_or_form(request: web.Request) -> Any:
    """JSON, or an application/x-www-form-urlencoded body read as a flat object of strings."""
    if request.content_type == "application/x-www-form-urlencoded":
        raw = await read_body(request)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "invalid_form", "the form body is not UTF-8") from None
        try:
            pairs = parse_qsl(
                text, keep_blank_values=True, strict_parsing=False, max_num_fields=100
            )
        except ValueError:
            raise ApiError(400, "invalid_form", "the form body has too many fields") from None
        return dict(pairs)
    return await read_json(request)


def int_param(request: web.Request, name: str) -> int:
    """A path parameter that must be a positive 64-bit id; otherwise 404 (no such thing)."""
    raw = request.match_info.get(name, "")
    if not raw.isdigit() or len(raw) > 19 or int(raw) > 2**63 - 1 or int(raw) < 1:
        raise ApiError(404, "not_found", f"no such {name.removesuffix('_id') or 'item'}")
    return int(raw)
