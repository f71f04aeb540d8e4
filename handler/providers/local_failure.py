"""Failures decided before or without the provider: the caller's 400, or the gateway's own 500.

litellm builds a provider's request in the process and raises when it cannot
(a Gemini `tool_result` answering no `tool_use`: "Missing corresponding tool
call ..."); it reports that as an `APIConnectionError`, as it does a refused
connection. What tells them apart is the exception's chain: a failure to reach
the provider has a transport error in it (httpx's, a socket's, a timeout); a
local decision has none, and was raised by request-building code. Such an
error is not the provider's health: it moves no circuit breaker
(GatewayError.by_provider False) and is never a 502.

The gateway judges what it can before any call (tool calls and results that
do not pair up: pipeline/history.py), so this reading of litellm's traceback
is the backstop for what litellm refuses beyond that: a history Anthropic
takes but litellm will not build for Gemini (one assistant turn split over two
messages, say). tests/test_breaker_counts_providers_only.py runs litellm's own
refusal through the gateway, so a litellm upgrade that moves these frames
fails there rather than opening the breaker again.
"""

from __future__ import annotations

import asyncio
from typing import Iterator

import httpx

from ..protocol.errors import GatewayError

# Where litellm builds a provider's request from the Anthropic-shaped call.
_REQUEST_BUILDING = ("prompt_templates", "transform_request", "convert_messages", "_transform_messages")
# What the caller's content makes request-building code raise (a refusal in words), as against a bug.
_REFUSALS = (ValueError,)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _transport(exc: BaseException) -> bool:
    return isinstance(exc, (httpx.TransportError, OSError, asyncio.TimeoutError, TimeoutError)) \
        or type(exc).__module__.split(".", 1)[0] in ("aiohttp", "httpcore")


def _built_locally(exc: BaseException) -> bool:
    """Raised by the code that builds a provider's request (its traceback says where)."""
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if any(mark in code.co_filename or mark in code.co_name for mark in _REQUEST_BUILDING):
            return True
        tb = tb.tb_next
    return False


def local_failure(exc: BaseException, message: str) -> GatewayError | None:
    """The GatewayError for a failure no provider had a part in, or None when one may have."""
    chain = list(_chain(exc))
    if any(_transport(link) for link in chain):
        return None
    root = chain[-1]
    if any(isinstance(link, RecursionError) for link in chain):
        return GatewayError(500, "The gateway could not prepare the request for the provider (a gateway "
                                 "fault; no provider was called).", error_type="api_error", by_provider=False)
    if not _built_locally(root):
        return None
    if type(root) is Exception or isinstance(root, _REFUSALS):
        return GatewayError(400, f"The request cannot be sent to this model: {message}", by_provider=False)
    return GatewayError(500, "The gateway could not prepare the request for the provider (a gateway fault; "
                             f"no provider was called): {type(root).__name__}.", error_type="api_error",
                        by_provider=False)
