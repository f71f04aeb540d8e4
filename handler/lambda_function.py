"""AWS Lambda entry point: the ASGI app behind Mangum (buffered responses).

API Gateway includes a named stage in the path it hands over (HTTP API's
`rawPath` is `/prod/v3/...`); the routes are stage-free, so the prefix is
stripped per event rather than fixed at deploy time.
"""

from __future__ import annotations

from typing import Any

from mangum import Mangum

from .app import app
from . import snapstart  # noqa: F401  SnapStart: restore hooks registered at init

_mangum = Mangum(app, lifespan="off")


def strip_stage(event: dict[str, Any]) -> dict[str, Any]:
    """The event with `/<stage>` removed from its path, when the path carries it."""
    context = event.get("requestContext") or {}
    stage = context.get("stage")
    if not stage or stage == "$default":
        return event
    prefix = f"/{stage}"
    if event.get("version") == "2.0":
        http = context.get("http") or {}
        path = http.get("path", "")
        if path == prefix or path.startswith(prefix + "/"):
            stripped = path[len(prefix):] or "/"
            return {**event, "rawPath": stripped, "requestContext": {**context, "http": {**http, "path": stripped}}}
        return event
    path = event.get("path", "")
    if path == prefix or path.startswith(prefix + "/"):
        return {**event, "path": path[len(prefix):] or "/"}
    return event


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _mangum(strip_stage(event), context)
