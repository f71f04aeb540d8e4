"""Anthropic's Messages API, called directly, for providers that speak it.

litellm's native Anthropic route sends the same JSON and relays the same SSE
bytes, but around each call it builds a logging object, prices the answer
and runs its success callbacks: about 1.5 ms of CPU per request, measured,
for work the gateway does itself (metering) or does not want (callbacks).
So calls to an `anthropic`-type provider go out here, over one pooled HTTP
client per event loop; the body is the caller's, as `build_call` prepared
it, and the connection comes from the providers secret, as for litellm.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from typing import Any, AsyncIterator, Mapping

import httpx

from ..protocol.errors import GatewayError
from .http11 import Http11Transport

ANTHROPIC_VERSION = "2023-06-01"
_MAX_ERROR_BODY = 64 * 1024

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()
_defaults: weakref.WeakKeyDictionary[httpx.AsyncClient, dict[str, str]] = weakref.WeakKeyDictionary()


def messages_url(api_base: str) -> str:
    """`api_base` + /v1/messages, unless it already ends there (as litellm does)."""
    base = api_base.rstrip("/")
    return base if base.endswith("/v1/messages") else base + "/v1/messages"


def request_parts(call: Mapping[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """URL, headers and JSON body of one call (pure): the body is the call's `body`, kept
    apart from the connection so no caller field can be mistaken for one."""
    body = {**call["body"], "model": str(call["model"]).partition("/")[2]}
    headers = {
        **(call.get("extra_headers") or {}),
        "x-api-key": call["api_key"],
        "anthropic-version": ANTHROPIC_VERSION,
        "content-type": "application/json",
        "accept": "text/event-stream" if body.get("stream") else "application/json",
    }
    return messages_url(call["api_base"]), headers, body


def client() -> httpx.AsyncClient:
    """This event loop's client: connections are kept alive between requests, over the
    gateway's own HTTP/1.1 transport (http11.py says what httpx's default one cost)."""
    loop = asyncio.get_running_loop()
    existing = _clients.get(loop)
    if existing is None or existing.is_closed:
        existing = _clients[loop] = httpx.AsyncClient(transport=Http11Transport(max_idle=64), follow_redirects=False)
    return existing


async def close_client() -> None:
    """Close this loop's client (a server shutting down)."""
    existing = _clients.pop(asyncio.get_running_loop(), None)
    if existing is not None:
        await existing.aclose()


def forget_clients() -> None:
    """Drop every client without awaiting (a SnapStart restore: their sockets are not ours)."""
    _clients.clear()


class UpstreamStatus(Exception):
    """A non-2xx answer: its status, its body (upstream.upstream_message reads the
    provider's words out of it) and its retry-after."""

    def __init__(self, status_code: int, message: str, retry_after: str | None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.retry_after = retry_after


# Bodies are read decoded (aiter_bytes): httpx asks for gzip by default, and a provider or
# a proxy in front of it that compresses would otherwise hand SSE parsing gzip bytes.


async def fail_with(response: httpx.Response) -> None:
    raw = b""
    async for chunk in response.aiter_bytes():
        raw += chunk
        if len(raw) > _MAX_ERROR_BODY:
            break
    await response.aclose()
    text = raw[:_MAX_ERROR_BODY].decode("utf-8", "replace").strip() or f"HTTP {response.status_code}"
    raise UpstreamStatus(response.status_code, text, response.headers.get("retry-after"))


async def _chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_bytes():
            yield chunk
    finally:
        await response.aclose()


async def post(url: str, headers: Mapping[str, str], content: bytes, *, timeout: float | None) -> httpx.Response:
    """One POST over this loop's client's transport, its body not yet read; a non-2xx answer
    is raised as UpstreamStatus.

    The request goes straight to the transport the client would pick for its URL (the gateway's
    own, or a proxy's from the environment), with the client's default headers: the client's
    own path around it (URL merging, header merging, redirects, auth, and a cookie jar that
    copied every answer's Set-Cookie) cost more CPU than the exchange itself. No cookie a
    provider sets is sent back: the gateway's calls carry their credentials in headers."""
    http = client()
    merged = dict(_default_headers(http))
    for name, value in headers.items():
        merged.pop(name.lower(), None)  # a header the call sets replaces the default, whatever its case
        merged[name] = value
    request = httpx.Request("POST", url, headers=merged, content=content,
                            extensions={"timeout": dict.fromkeys(("connect", "read", "write", "pool"), timeout)})
    response = await http._transport_for_url(request.url).handle_async_request(request)  # noqa: SLF001
    response.request = request
    if response.status_code >= 300:
        await fail_with(response)
    return response


def _default_headers(http: httpx.AsyncClient) -> dict[str, str]:
    """The headers httpx's client adds to every request (Accept, Accept-Encoding, User-Agent...)."""
    found = _defaults.get(http)
    if found is None:
        found = _defaults[http] = dict(http.headers)
    return found


async def send(call: Mapping[str, Any]) -> dict[str, Any] | AsyncIterator[bytes]:
    """The answer (a dict), or for a stream its raw SSE bytes; a stream request that got
    JSON instead (an error sent with a 200) gets the dict, for the caller to check.

    Failures are raised as httpx's exceptions or UpstreamStatus, for
    `upstream.map_exception` to put in Anthropic's terms.
    """
    url, headers, body = request_parts(call)
    response = await post(url, headers, json.dumps(body).encode(), timeout=call.get("timeout"))
    if body.get("stream") and response.headers.get("content-type", "").startswith("text/event-stream"):
        return _chunks(response)
    return await json_answer(response)


async def json_answer(response: httpx.Response) -> dict[str, Any]:
    """A non-streamed answer's JSON object, or a 502 saying what came instead."""
    try:
        raw = await response.aread()
    finally:
        await response.aclose()
    try:
        answer = json.loads(raw)
    except ValueError:
        raise GatewayError(502, "The upstream model's answer is not JSON.", error_type="api_error") from None
    if not isinstance(answer, dict):
        raise GatewayError(502, "The upstream model's answer is not an object.", error_type="api_error")
    return answer
