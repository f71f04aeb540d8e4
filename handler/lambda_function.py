"""AWS Lambda entry point: the ASGI app behind Mangum (buffered responses).

API Gateway includes a named stage in the path it hands over (HTTP API's
`rawPath` is `/prod/v3/...`); the routes are stage-free, so the prefix is
stripped per event rather than fixed at deploy time.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mangum import Mangum

from .app import app
from . import snapstart  # noqa: F401  SnapStart: restore hooks registered at init

_mangum = Mangum(app, lifespan="off")
_loop = asyncio.new_event_loop()


def _current_loop() -> asyncio.AbstractEventLoop:
    """One event loop for every invocation of this process, set as current each time.

    Mangum runs the app on `asyncio.get_event_loop()`, which fails once anything
    has closed the current loop (asyncio.run does); the caches' locks and
    litellm's HTTP clients belong to the loop they were made on, so it must
    also be the same loop each time.
    """
    global _loop
    if _loop.is_closed():
        _loop = asyncio.new_event_loop()
    asyncio.set_event_loop(_loop)
    return _loop


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
    loop = _current_loop()
    response = _mangum(strip_stage(event), context)
    # Ledger writes run beside the response; Lambda freezes the process once this
    # returns, so they finish first.
    loop.run_until_complete(app.state.gateway.drain())
    app.state.telemetry.flush()  # a request line still waiting on a ledger entry is written now
    return response
