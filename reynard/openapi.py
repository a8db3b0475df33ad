"""An OpenAPI 3.1 document built from the route table, so it cannot drift from the routes."""

from __future__ import annotations

import re
from typing import Any

from .routing import Route

_PARAM = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)(?::[^}]*)?\}")
_ERROR = {"$ref": "#/components/schemas/Error"}


def _path_params(path: str) -> list[dict[str, Any]]:
    params = []
    for name in _PARAM.findall(path):
        schema = (
            {"type": "integer", "minimum": 1}
            if name == "id" or name.endswith("_id")
            else {"type": "string", "minLength": 1}
        )
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return params


def _operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": route.summary,
        "operationId": f"{route.method.lower()}_{route.handler.__module__.rsplit('.', 1)[-1]}"
        f"_{route.handler.__name__}",
        "responses": {
            str(route.status): {"description": "success"},
            "default": {
                "description": "error",
                "content": {"application/json": {"schema": _ERROR}},
            },
        },
    }
    if route.tags:
        op["tags"] = list(route.tags)
    params = _path_params(route.path)
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": route.body}},
        }
    if route.auth != "none":
        op["security"] = [{"bearer": []}]
        if route.auth == "admin":
            op["description"] = "Admin only."
    return op


def document(routes: list[Route], version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        template = _PARAM.sub(lambda m: "{" + m.group(1) + "}", route.path)
        paths.setdefault(template, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Reynard", "version": version},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["detail", "code"],
                    "properties": {
                        "detail": {"type": "string"},
                        "code": {"type": "string"},
                        "errors": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "field": {"type": "string"},
                                    "message": {"type": "string"},
                                },
                            },
                        },
                    },
                }
            },
        },
    }
