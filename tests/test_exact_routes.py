"""`POST /v3/v1/messages` and its count_tokens are answered ahead of FastAPI's router (exact_routes.py).

What a caller sees must not change: the same answers, errors in the same shapes
with the same headers, the same 405 and 404 around the routes, the same
/openapi.json. Only the per-request layers the request no longer passes are gone.
"""

from __future__ import annotations

import json
from pathlib import Path

import anthropic
import httpx
import pytest
from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRouter

from handler.exact_routes import ExactRoutesApp

CLAUDE = "anthropic/claude-sonnet-4-5"
HELLO = [{"role": "user", "content": "hello there"}]
ROUTES = ("/v3/v1/messages", "/v3/v1/messages/count_tokens")
DOCUMENTED = json.loads((Path(__file__).parent / "data" / "openapi-messages-routes.json").read_text())


def test_messages_and_count_tokens_are_answered_without_fastapis_router(client, monkeypatch):
    """The router matches every route and FastAPI's request handler solves dependencies the
    endpoints do not have: about a tenth of a request's CPU. Other routes still go through it."""
    routed: list[str] = []
    real = APIRouter.__call__

    async def spied(self, scope, receive, send):
        routed.append(scope["path"])
        await real(self, scope, receive, send)

    monkeypatch.setattr(APIRouter, "__call__", spied)
    assert client.messages.create(model=CLAUDE, max_tokens=20, messages=HELLO).content[0].text
    with client.messages.stream(model=CLAUDE, max_tokens=20, messages=HELLO) as stream:
        assert stream.get_final_message().content[0].text
    client.beta.messages.create(model=CLAUDE, max_tokens=20, messages=HELLO)  # ?beta=true on the path
    assert client.messages.count_tokens(model=CLAUDE, messages=HELLO).input_tokens > 0
    assert [model.id for model in client.models.list()]
    assert routed == ["/v3/v1/models"], f"these requests went through FastAPI's router: {routed}"


@pytest.mark.parametrize("route, method", [("messages", "create_message"), ("count_tokens", "count_tokens")])
def test_an_exception_inside_the_endpoint_answers_anthropics_500_with_its_request_id(
        server, api_key, monkeypatch, route, method):
    """A bug in the endpoint: Anthropic's api_error envelope, the request's id to quote in a support
    ticket, and the advice to retry (the SDKs do), as every other route's 500."""
    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the gateway")

    monkeypatch.setattr(server.app.state.gateway, method, broken)
    client = anthropic.Anthropic(api_key=api_key, base_url=server.url + "/v3", max_retries=0, timeout=20)
    with pytest.raises(anthropic.InternalServerError) as raised:
        if route == "messages":
            client.messages.create(model=CLAUDE, max_tokens=20, messages=HELLO)
        else:
            client.messages.count_tokens(model=CLAUDE, messages=HELLO)
    response = raised.value.response
    assert response.status_code == 500
    assert response.json() == {"type": "error", "error": {"type": "api_error", "message": "Internal error."}}, (
        f"the caller read {response.text!r}")
    assert response.headers.get("request-id", "").startswith("req_"), "the 500 carried no request-id"
    assert response.headers.get("x-should-retry") == "true"
    assert "a bug in the gateway" not in response.text, "the exception's text reached the caller"


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_another_method_on_the_routes_is_still_405_in_anthropics_envelope(server, api_key, path, method):
    response = httpx.request(method, server.url + path, headers={"x-api-key": api_key}, timeout=20)
    assert response.status_code == 405, f"{method} {path} answered {response.status_code} {response.text!r}"
    assert response.headers.get("allow") == "POST"
    assert response.headers.get("request-id", "").startswith("req_")
    assert response.headers.get("x-should-retry") == "false"
    if method != "HEAD":
        assert response.json() == {"type": "error", "error": {"type": "invalid_request_error",
                                                              "message": "Method not allowed."}}


@pytest.mark.parametrize("path", ["/v3/v1/messages/", "/v3/v1/messages/count_tokens/", "/v3/v1/Messages",
                                  "/v3/v1/messages/count_tokens/x"])
def test_a_path_beside_the_routes_is_still_404_never_a_redirect(server, api_key, path):
    response = httpx.post(server.url + path, headers={"x-api-key": api_key},
                          json={"model": CLAUDE, "max_tokens": 20, "messages": HELLO}, timeout=20)
    assert response.status_code == 404, f"POST {path} answered {response.status_code} {response.text!r}"
    assert response.json() == {"type": "error", "error": {"type": "not_found_error", "message": "Not found."}}
    assert response.headers.get("request-id", "").startswith("req_")


def test_openapi_documents_the_routes_exactly_as_before(server):
    """The routes' path items as /openapi.json described them when FastAPI's router answered them
    (tests/data/openapi-messages-routes.json, taken from that document)."""
    document = httpx.get(server.url + "/openapi.json", timeout=20).json()
    for path in ROUTES:
        assert document["paths"][path] == DOCUMENTED[path], f"/openapi.json now describes {path} otherwise"


def test_only_an_endpoint_that_takes_just_the_request_is_answered_first():
    """Query, path or body parameters and dependencies are FastAPI's request handler's work: a route
    that has any stays with the router, or its endpoint would be called without them."""
    app = ExactRoutesApp()

    @app.post("/plain")
    async def plain(request: Request) -> JSONResponse:
        return JSONResponse({})

    @app.get("/v3/usage")
    async def with_query(request: Request, month: str | None = None) -> dict:
        return {}

    @app.get("/v3/v1/models/{model_id:path}")
    async def with_path(request: Request, model_id: str) -> dict:
        return {}

    @app.post("/depends")
    async def with_dependency(request: Request, value: str = Depends(lambda: "x")) -> dict:
        return {}

    app.answer_first(plain)
    for endpoint in (with_query, with_path, with_dependency):
        with pytest.raises(ValueError):
            app.answer_first(endpoint)

    async def never_added(request: Request) -> JSONResponse:
        return JSONResponse({})

    with pytest.raises(ValueError):
        app.answer_first(never_added)
