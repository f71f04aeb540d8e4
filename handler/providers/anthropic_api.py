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
import logging
import weakref
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping

import httpx
from httpx._utils import get_environment_proxies  # what httpx.AsyncClient(trust_env=True) reads

from ..protocol.errors import GatewayError
from .answer import Answer
from .call_body import call_body
from .http11 import Http11Transport

ANTHROPIC_VERSION = "2023-06-01"
_PROXY_SCHEMES = ("http://", "https://")
log = logging.getLogger(__name__)
_MAX_ERROR_BODY = 64 * 1024

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()
_direct: weakref.WeakKeyDictionary[httpx.AsyncClient, "_Direct"] = weakref.WeakKeyDictionary()


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
    gateway's own HTTP/1.1 transport (http11.py says what httpx's default one cost), but for
    the URLs a proxy from the environment takes."""
    loop = asyncio.get_running_loop()
    existing = _clients.get(loop)
    if existing is None or existing.is_closed:
        existing = _clients[loop] = httpx.AsyncClient(transport=Http11Transport(max_idle=64), follow_redirects=False,
                                                      mounts=environment_proxies())
    return existing


def environment_proxies() -> dict[str, httpx.AsyncBaseTransport | None]:
    """The proxies httpx's client takes from the environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY
    and NO_PROXY, read by httpx's own function), each on httpx's own transport as its client
    mounts them: a client given a transport of its own reads none of them itself."""
    mounts: dict[str, httpx.AsyncBaseTransport | None] = {}
    for pattern, url in get_environment_proxies().items():
        if url is not None and not url.startswith(_PROXY_SCHEMES):
            # A SOCKS proxy needs socksio, which the package does not carry: httpx would refuse every
            # call; the calls go direct instead, as they do for a scheme no proxy variable names.
            log.warning("proxy %s for %s ignored: only http:// and https:// proxies are supported",
                        url.split("://", 1)[0] + "://...", pattern)
            continue
        mounts[pattern] = None if url is None else httpx.AsyncHTTPTransport(proxy=url)
    return mounts


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


async def fail_with(response: Answer | httpx.Response) -> None:
    raw = b""
    try:
        async for chunk in response.aiter_bytes():
            raw += chunk
            if len(raw) > _MAX_ERROR_BODY:
                break
    finally:  # a body cut short (or the request cancelled) still gives its connection back or closes it
        await response.aclose()
    text = raw[:_MAX_ERROR_BODY].decode("utf-8", "replace").strip() or f"HTTP {response.status_code}"
    raise UpstreamStatus(response.status_code, text, response.headers.get("retry-after"))


async def _chunks(response: Answer | httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_bytes():
            yield chunk
    finally:
        await response.aclose()


async def post(url: str, headers: Mapping[str, str], content: bytes, *, timeout: float | None,
               fail: Callable[[Answer | httpx.Response], Awaitable[None]] | None = None) -> Answer | httpx.Response:
    """One POST over this loop's client's transport, its body not yet read; a non-2xx answer
    is raised by `fail` (the family's reading of its errors; by default fail_with's UpstreamStatus).

    The request goes straight to the transport the client would pick for its URL, with the
    client's default headers: the client's own path around it (URL merging, header merging,
    redirects, auth, and a cookie jar that copied every answer's Set-Cookie) cost more CPU than
    the exchange itself. On the gateway's own transport it goes without httpx's Request and
    Response models too (answer.py): the headers are the ones httpx's Request would carry, in
    its order (Host first, Content-Length last), and the URL's parts are worked out once per
    URL. A proxy from the environment gets httpx's Request, as its transport needs. No cookie
    a provider sets is sent back: the gateway's calls carry their credentials in headers."""
    http = client()
    direct = _direct_of(http)
    merged = dict(direct.defaults)
    framed = False
    for name, value in headers.items():
        lowered = name.lower()
        merged.pop(lowered, None)  # a header the call sets replaces the default, whatever its case
        merged[name] = value
        framed = framed or lowered in _FRAMING
    route = direct.route(http, url)
    if route.origin is not None and content and not framed:
        raw = [(b"Host", route.host)]
        raw += [(name.encode("ascii"), value.encode("ascii")) for name, value in merged.items()]
        raw.append((b"Content-Length", str(len(content)).encode("ascii")))
        response: Answer | httpx.Response = await route.transport.exchange(
            b"POST", route.origin, route.target, raw, content,
            connect_timeout=timeout, write_timeout=timeout, read_timeout=timeout)
    else:
        request = httpx.Request("POST", url, headers=merged, content=content,
                                extensions={"timeout": dict.fromkeys(("connect", "read", "write", "pool"), timeout)})
        response = await route.transport.handle_async_request(request)
        response.request = request
    if response.status_code >= 300:
        await (fail or fail_with)(response)
    return response


# Headers that say where a request goes or how its body is framed: httpx's Request adds its own
# unless the call set them, so a call that does goes through httpx's Request.
_FRAMING = frozenset({"host", "content-length", "transfer-encoding"})
_MAX_ROUTES = 256


class _Route:
    """Where post() sends one URL: the gateway's transport with the URL's origin, request target
    and Host value (`origin` None: another transport, given httpx's Request)."""

    __slots__ = ("transport", "origin", "target", "host")

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        parsed = httpx.URL(url)
        self.transport = http._transport_for_url(parsed)  # noqa: SLF001 - the client's choice, proxies included
        self.origin = self.target = self.host = None
        scheme = parsed.raw_scheme
        if isinstance(self.transport, Http11Transport) and scheme in (b"http", b"https") and parsed.host:
            self.origin = (scheme, parsed.host, parsed.port or (443 if scheme == b"https" else 80))
            self.target, self.host = parsed.raw_path, parsed.netloc


class _Direct:
    """What post() keeps per client: its default headers (Accept, Accept-Encoding, User-Agent...)
    and each URL's route (the providers' URLs are few: the providers secret's)."""

    __slots__ = ("defaults", "routes")

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.defaults = dict(http.headers)
        self.routes: dict[str, _Route] = {}

    def route(self, http: httpx.AsyncClient, url: str) -> _Route:
        found = self.routes.get(url)
        if found is None:
            if len(self.routes) >= _MAX_ROUTES:
                self.routes.clear()
            found = self.routes[url] = _Route(http, url)
        return found


def _direct_of(http: httpx.AsyncClient) -> _Direct:
    found = _direct.get(http)
    if found is None:
        found = _direct[http] = _Direct(http)
    return found


async def send(call: Mapping[str, Any]) -> dict[str, Any] | AsyncIterator[bytes]:
    """The answer (a dict), or for a stream its raw SSE bytes; a stream request that got
    JSON instead (an error sent with a 200) gets the dict, for the caller to check.

    Failures are raised as httpx's exceptions or UpstreamStatus, for
    `upstream.map_exception` to put in Anthropic's terms.
    """
    url, headers, body = request_parts(call)
    response = await post(url, headers, call_body(body), timeout=call.get("timeout"))
    if body.get("stream") and response.headers.get("content-type", "").startswith("text/event-stream"):
        return _chunks(response)
    return await json_answer(response)


async def json_answer(response: Answer | httpx.Response) -> dict[str, Any]:
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
