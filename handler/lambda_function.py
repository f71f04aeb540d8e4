"""AWS Lambda entry point: the ASGI app behind Mangum (buffered responses).

API Gateway includes a named stage in the path it hands over (HTTP API's
`rawPath` is `/prod/v3/...`); the routes are stage-free, so the prefix is
stripped per event rather than fixed at deploy time.

Every request of an invocation ends, streams included, its remaining time less
LEDGER_WRITE_MARGIN_S after it began (Gateway.finish_by): a stream longer than
that ends with an `error` event, metered as far as it went.

Usage is written after the response: the gateway's ledger entries collect in
an outbox while Mangum runs the app, and after_response's internal extension
writes them once the runtime has posted the response (registered here, during
init, as Lambda requires).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
from typing import Any

from .app import app
from .protocol.errors import error_body, should_retry_headers
from .runtime import snapstart  # noqa: F401  SnapStart: restore hooks registered at init
from .runtime.after_response import LEDGER_WRITE_MARGIN_S, AfterResponse, Outbox
from .runtime.one_pass_mangum import OnePassMangum

# A stream's reader and the writes it leads to end after the response: the gateway's drain waits
# for them, in the same run of the event loop as the app.
_mangum = OnePassMangum(app, after=lambda: app.state.gateway.drain())
_loop = asyncio.new_event_loop()
_outbox = Outbox()
app.state.gateway.write_ledger_with(_outbox)
_after_response = AfterResponse.start(app.state.metered_ledger, os.environ.get("AWS_LAMBDA_RUNTIME_API"),
                                     on_settled=app.state.telemetry.flush)


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


def _stage_prefix_matches(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def strip_stage(event: dict[str, Any]) -> dict[str, Any]:
    """The event with `/<stage>` removed from its path, when the path carries it.

    HTTP API (2.0) puts the stage in `rawPath`. REST API (1.0) leaves it out of
    `path` (`requestContext.path` is `/<stage>` + `path`), so a v1 path is
    stripped only when it is the whole path: a stage named `v3` must not turn
    `/v3/v1/messages` into `/v1/messages`.
    """
    context = event.get("requestContext") or {}
    stage = context.get("stage")
    if not stage or stage == "$default":
        return event
    prefix = f"/{stage}"
    if event.get("version") == "2.0":
        http = context.get("http") or {}
        path = http.get("path", "")
        if _stage_prefix_matches(path, prefix):
            stripped = path[len(prefix):] or "/"
            return {**event, "rawPath": stripped, "requestContext": {**context, "http": {**http, "path": stripped}}}
        return event
    path = event.get("path", "")
    if _stage_prefix_matches(path, prefix) and context.get("path") in (None, path):
        return {**event, "path": path[len(prefix):] or "/"}
    return event


def malformed(event: Any) -> str | None:
    """Why Mangum cannot read this event as an API Gateway request, or None."""
    if not isinstance(event, dict):
        return "the event is not a JSON object"
    if not isinstance(event.get("requestContext"), dict):
        return "no requestContext object"
    if event.get("version") == "2.0":
        http = (event.get("requestContext") or {}).get("http")
        if not isinstance(http, dict) or not isinstance(http.get("method"), str):
            return "an HTTP API event without requestContext.http.method"
    elif not isinstance(event.get("httpMethod"), str) or not isinstance(event.get("path"), str):
        return "neither an HTTP API (2.0) nor a REST API (1.0) request event"
    for field in ("headers", "multiValueHeaders", "queryStringParameters", "multiValueQueryStringParameters"):
        if field in event and event[field] is not None and not isinstance(event[field], dict):
            return f"{field} is not an object"
    if event.get("isBase64Encoded") and event.get("body") is not None:
        try:
            base64.b64decode(event["body"], validate=True)
        except (binascii.Error, ValueError, TypeError):
            return "isBase64Encoded but the body is not base64"
    return None


def _with_empty_headers(event: dict[str, Any]) -> dict[str, Any]:
    """`headers: null` (a request with none, as API Gateway may send it) as `{}`, which Mangum can read."""
    missing = [name for name in ("headers", "multiValueHeaders") if name in event and event[name] is None]
    return {**event, **{name: {} for name in missing}} if missing else event


def _refusal(reason: str) -> dict[str, Any]:
    """Anthropic's error envelope, as API Gateway expects a proxy response."""
    return {"statusCode": 400, "headers": {"content-type": "application/json", **should_retry_headers(400)},
            "body": json.dumps(error_body("invalid_request_error", f"Malformed Lambda event: {reason}.")),
            "isBase64Encoded": False}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    reason = malformed(event)
    if reason is not None:
        # Nothing to write, but the extension waits for every invocation's handover.
        _after_response.hand_over(getattr(context, "aws_request_id", None), [],
                                  context.get_remaining_time_in_millis() / 1000)
        return _refusal(reason)
    _current_loop()
    # Responses are buffered: a stream ends, and its usage is handed over, before the function's deadline.
    app.state.gateway.finish_by(context.get_remaining_time_in_millis() / 1000 - LEDGER_WRITE_MARGIN_S)
    try:
        response = _mangum(strip_stage(_with_empty_headers(event)), context)
    finally:
        app.state.gateway.finish_by(None)
        _after_response.hand_over(getattr(context, "aws_request_id", None), _outbox.take(),
                                  context.get_remaining_time_in_millis() / 1000)
    return response
