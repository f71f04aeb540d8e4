"""The FastAPI application: routes, error handlers and the request id.

`create_app()` wires the pieces from settings; `app` is the module-level
instance that uvicorn (`handler.app:app`) and Mangum serve. Nothing here
touches the network at import: secrets are read on the first request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from contextlib import asynccontextmanager
from datetime import datetime, timezone

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import aws
from .cache import RefreshingValue
from .config import Settings
from .exact_routes import ExactRoutesApp
from .keys.store import KeyStore, presented_key
from .metering import hot_keys
from .metering.ledger import Ledger
from .observe import telemetry
from .pipeline.breaker import ModelHealth
from .pipeline.gateway import OFF_LOOP_BODY_BYTES, Gateway
from .pipeline.model_list import find, page, visible_models
from .protocol.answer_bytes import encoded
from .protocol.body import check_content_type, parse_json, read_limited, validate
from .protocol.content import check_body
from .protocol.errors import (SHOULD_RETRY_HEADER, GatewayError, error_body, is_body_validation,
                              should_retry_headers, validation_message)
from .protocol.openapi import install as install_openapi
from .protocol.schemas import (
    AnthropicMessagesBody,
    AnthropicMessagesResponse,
    CountTokensBody,
    CountTokensResponse,
    ModelInfo,
    ModelList,
)
from .protocol.shape import check_shape
from .providers import anthropic_api, price_map
from .providers.catalogue import Catalogue, build_catalogue

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "request-id"
TOKEN_COUNT_METHOD_HEADER = "x-edenai-token-count-method"
MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_REQUEST_ID_NAME, _SHOULD_RETRY_NAME = REQUEST_ID_HEADER.encode(), SHOULD_RETRY_HEADER.encode()


def new_request_id() -> str:
    """Drawn from the OS at each call, never from state a snapshot could duplicate (what
    secrets.token_hex reads, without its two calls around it)."""
    return "req_" + os.urandom(12).hex()


class ResponseHeadersMiddleware:
    """What every response carries, errors and 404s included: `request-id`, and on an error
    whether a retry can help (`x-should-retry`, by its status unless the error said otherwise;
    protocol/errors.py says why). One wrapper for the handlers' errors, FastAPI's 422s and
    Starlette's 404s and 405s alike."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        header = (_REQUEST_ID_NAME, request_id.encode())

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), header]
                if message["status"] >= 400 and not any(
                        name.lower() == _SHOULD_RETRY_NAME for name, _ in headers):
                    headers += [(name.encode(), value.encode())
                                for name, value in should_retry_headers(message["status"]).items()]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RefuseAmbiguousFraming:
    """A request with both Content-Length and Transfer-Encoding is refused (RFC 9112 6.3):
    servers and proxies that disagree on which one wins are how requests get smuggled."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            names = {name for name, _ in scope["headers"]}
            if b"content-length" in names and b"transfer-encoding" in names:
                error = GatewayError(400, "A request may not carry both Content-Length and Transfer-Encoding.")
                response = _error_response(error)
                response.headers["connection"] = "close"
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _while_connected(stream, request: Request):
    """A stream's events, none of them for a client that left before the first.

    uvicorn drops, without a word, what is sent to a client that has gone; a stream
    read whole by then would count as delivered. Leaving the relay after its first
    event tells it the response lost its client (it meters the stream as such)."""
    events = stream.__aiter__()
    try:
        async for event in events:
            if await request.is_disconnected():
                return
            yield event
            break
        async for event in events:
            yield event
    finally:
        await events.aclose()


def _parsed_and_bounded(raw: bytes):
    document = parse_json(raw)
    check_shape(document)
    return document


def _judged(model, document) -> None:
    """The spec's schema, then what the gateway must not forward: before any rpm is counted."""
    validate(model, document)
    check_body(document)


async def _off_the_loop_if_large(size: int, work, *args):
    """A large body's walks in a worker thread, so other requests are not kept waiting; a
    small one's on the loop, where the thread hop would cost more than the walk (gateway.py)."""
    return await asyncio.to_thread(work, *args) if size >= OFF_LOOP_BODY_BYTES else work(*args)


def _error_response(error: GatewayError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def gateway_error(_: Request, error: GatewayError) -> JSONResponse:
        return _error_response(error)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # A body that breaks the spec: the seed's 422 HTTPValidationError. A query or path
        # parameter (the models list's `limit`): Anthropic's 400, as the route's other refusals.
        if is_body_validation(exc.errors()):
            return await request_validation_exception_handler(request, exc)
        return _error_response(GatewayError(400, validation_message(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = {404: "Not found.", 405: "Method not allowed."}.get(exc.status_code, str(exc.detail))
        return _error_response(GatewayError(exc.status_code, message, headers=exc.headers))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        # Starlette answers this outside every middleware: the id and the retry advice are added here.
        request_id = getattr(request.state, "request_id", None)
        return JSONResponse(error_body("api_error", "Internal error."), status_code=500,
                            headers={**should_retry_headers(500),
                                     **({REQUEST_ID_HEADER: request_id} if request_id else {})})


def _key_store(settings: Settings) -> KeyStore:
    return KeyStore(aws.read_json_secret, secret_id=settings.keys_secret_id, shards=settings.key_shards,
                    ttl=settings.key_cache_ttl, min_gap=settings.secret_refresh_gap,
                    max_staleness=settings.key_max_staleness)


def _catalogue_cache(settings: Settings) -> RefreshingValue[Catalogue]:
    return RefreshingValue(
        lambda: build_catalogue(aws.read_json_secret(settings.providers_secret_id), price_map.load()),
        name="providers",
        ttl=settings.providers_cache_ttl,
        min_gap=settings.secret_refresh_gap,
        max_staleness=settings.key_max_staleness,
    )


def create_app(settings: Settings | None = None, *, ledger: Ledger | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    keys = _key_store(settings)
    ledger = ledger or Ledger(settings.usage_table, ttl_days=settings.usage_ttl_days,
                              queue_url=settings.ledger_queue_url)
    observer = telemetry.Telemetry.from_settings(settings)
    metered_ledger = telemetry.ObservedLedger(ledger, observer)
    gateway = Gateway(_catalogue_cache(settings), metered_ledger,
                      deadline=settings.request_deadline,
                      stream_timeout=settings.stream_timeout, policy=settings.router_policy,
                      meter_before_response_end=settings.meter_before_response_end,
                      max_ledger_backlog=settings.ledger_max_backlog,
                      health=ModelHealth(threshold=settings.breaker_threshold, cooldown=settings.breaker_cooldown,
                                         on_open=telemetry.breaker_opened))

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        await gateway.drain(settings.shutdown_grace)  # ledger writes still under way when the server stops
        await anthropic_api.close_client()

    app = ExactRoutesApp(
        lifespan=lifespan,
        title="Eden AI Anthropic Messages gateway",
        version="3.0.0",
        docs_url=None,
        redoc_url=None,
        # No 307 to `/v3/v1/messages` on a trailing slash: the redirect is built from the
        # request's Host, before authentication, and clients that follow it resend their key.
        redirect_slashes=False,
    )
    install_openapi(app, [AnthropicMessagesBody, CountTokensBody])
    app.state.settings = settings
    app.state.keys = keys
    app.state.gateway = gateway
    app.state.ledger = ledger
    app.state.metered_ledger = metered_ledger  # the ledger that tells telemetry what became of each entry
    app.state.telemetry = observer
    app.add_middleware(telemetry.Middleware, telemetry=observer)  # inside ResponseHeadersMiddleware
    app.add_middleware(RefuseAmbiguousFraming)
    app.add_middleware(ResponseHeadersMiddleware)
    _install_error_handlers(app)

    async def read_body(request: Request):
        """The body parsed and its shape bounded (shape.py), a large one in a worker thread:
        the event loop serves other requests while it is read."""
        check_content_type(request.headers.get("content-type"))
        raw = await read_limited(request.headers, request.stream(), settings.max_body_bytes)
        request.state.body_bytes = len(raw)
        return await _off_the_loop_if_large(len(raw), _parsed_and_bounded, raw)

    async def authenticate(request: Request):
        key = await keys.authenticate(
            presented_key(request.headers.getlist("authorization"), request.headers.getlist("x-api-key"))
        )
        telemetry.note(key_id=key.key_id)
        return key

    @app.get("/health", include_in_schema=False)
    async def health() -> dict:
        return {"status": "ok"}

    @app.post(
        "/v3/v1/messages",
        summary="Create Anthropic Message",
        description="Anthropic Messages API — native pass-through via litellm.",
        operation_id="create_anthropic_message_v3_v1_messages_post",
        tags=["Anthropic Messages"],
        response_model=AnthropicMessagesResponse,
        openapi_extra={
            "requestBody": {
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AnthropicMessagesBody"}}},
                "required": True,
            }
        },
    )
    async def create_message(request: Request) -> Response:
        key = await authenticate(request)
        document = await read_body(request)
        telemetry.request_body(document)
        await _off_the_loop_if_large(request.state.body_bytes, _judged, AnthropicMessagesBody, document)
        outcome = await gateway.create_message(
            key, document, anthropic_beta=request.headers.get("anthropic-beta"),
            request_id=request.state.request_id, body_bytes=request.state.body_bytes,
        )
        telemetry.served(outcome.model, outcome.adaptation.dropped if outcome.adaptation else ())
        if settings.log_prompts:
            log.info("prompt %s %s", request.state.request_id, json.dumps(
                {"model": document["model"], "system": document.get("system"), "messages": document["messages"],
                 "completion": outcome.message["content"] if outcome.message else "(streamed)"}))
        if outcome.stream is not None:
            return StreamingResponse(
                _while_connected(outcome.stream, request),
                media_type="text/event-stream",
                headers={**outcome.headers(), "cache-control": "no-cache", "x-accel-buffering": "no"},
            )
        if settings.meter_before_response_end:
            await outcome.finish()
        else:
            gateway.spawn(outcome.finish())
        # JSONResponse's bytes, by a faster encoder where it writes the same (protocol/answer_bytes.py).
        return Response(encoded(outcome.message), headers=outcome.headers(), media_type="application/json")

    @app.post("/v3/v1/messages/count_tokens", response_model=CountTokensResponse,
              summary="Count the input tokens of a message request",
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": {"$ref": "#/components/schemas/CountTokensBody"}}}}})
    async def count_message_tokens(request: Request) -> Response:
        key = await authenticate(request)
        document = await read_body(request)
        await _off_the_loop_if_large(request.state.body_bytes, _judged, CountTokensBody, document)
        tokens, method, rate = await gateway.count_tokens(key, document)
        headers = {TOKEN_COUNT_METHOD_HEADER: method, **(rate.headers() if rate else {})}
        return JSONResponse({"input_tokens": tokens}, headers=headers)

    # The two hot routes skip FastAPI's router and request handler (exact_routes.py); the router
    # still documents them and answers their other methods.
    app.answer_first(create_message, count_message_tokens)

    @app.get("/v3/v1/models", response_model=ModelList, summary="The models this key may use")
    async def list_models(request: Request, before_id: str | None = None, after_id: str | None = None,
                          limit: int = 20) -> dict:
        key = await authenticate(request)
        for name in ("before_id", "after_id", "limit"):
            if len(request.query_params.getlist(name)) > 1:
                raise GatewayError(400, f"{name}: given more than once; send it once.")
        entries = visible_models(await gateway.catalogue(), key)
        return page(entries, before_id=before_id, after_id=after_id, limit=limit)

    @app.get("/v3/v1/models/{model_id:path}", response_model=ModelInfo, summary="One model")
    async def get_model(request: Request, model_id: str) -> dict:
        key = await authenticate(request)
        return find(await gateway.catalogue(), key, model_id)

    @app.get("/v3/usage", summary="This key's metered usage for a month, with per-day rows")
    async def usage(request: Request, month: str | None = None) -> dict:
        key = await authenticate(request)
        month = month or datetime.now(timezone.utc).strftime("%Y-%m")
        if not MONTH.fullmatch(month):
            raise GatewayError(400, "month must look like YYYY-MM.")
        try:
            return await asyncio.to_thread(hot_keys.month_report, ledger, key, month)
        except (BotoCoreError, ClientError):
            raise GatewayError(503, "Usage cannot be read right now; try again shortly.") from None

    return app


app = create_app()
