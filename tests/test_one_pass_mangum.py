"""The buffered handler's Mangum answers every event as stock Mangum does.

OnePassMangum (handler/runtime/one_pass_mangum.py) runs the gateway's drain in
the app's run of the event loop and reads each HTTP API event into a scope
once. Neither may change an answer: for each event shape API Gateway and ALB
send (HTTP API payloads 2.0 and 1.0, REST API, ALB; cookies, query strings,
base64 bodies, HEAD) and each response shape (duplicate headers, cookies,
binary and non-UTF-8 bodies, an empty body, a body in parts, an app that
fails), the proxy response and what the app was handed are stock Mangum's.
"""

from __future__ import annotations

import asyncio

import pytest
from mangum import Mangum

from handler.runtime.one_pass_mangum import OnePassMangum
from tests.support.lambda_events import LambdaContext, http_api_event, rest_api_event

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"


def _http_api_1_0(method: str, path: str, **options) -> dict:
    """An HTTP API event in payload format 1.0: REST API's shape, with a version."""
    return {**rest_api_event(method, path, **options), "version": "1.0"}


def _alb(method: str, path: str) -> dict:
    # docs.aws.amazon.com/elasticloadbalancing/latest/application/lambda-functions.html, "Receive events"
    return {"requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:"
                                                         "targetgroup/lambda/50dc6c495c0c9188"}},
            "httpMethod": method, "path": path, "queryStringParameters": {"q": "a b"},
            "headers": {"host": "lambda-alb-123578498.us-east-1.elb.amazonaws.com", "x-forwarded-proto": "https",
                        "x-forwarded-port": "443"},
            "body": "", "isBase64Encoded": False}


EVENTS = {
    "HTTP API 2.0": http_api_event("POST", "/v3/v1/messages", body={"model": "m"}, headers={"x-api-key": "egw_k"}),
    "HTTP API 2.0, cookies and a query": {**http_api_event("GET", "/v3/usage", query="month=2026-12&x=%20"),
                                          "cookies": ["a=1", "b=2"]},
    "HTTP API 2.0, base64 body": http_api_event("POST", "/v3/v1/messages", body=PNG, base64_body=True),
    "HTTP API 2.0, HEAD": http_api_event("HEAD", "/health"),
    "HTTP API 2.0, named stage": http_api_event("GET", "/health", stage="prod"),
    "HTTP API 1.0": _http_api_1_0("POST", "/v3/v1/messages", body={"model": "m"}),
    "REST API": rest_api_event("POST", "/v3/v1/messages", body={"model": "m"}, base64_body=True),
    "REST API, HEAD": rest_api_event("HEAD", "/health"),
    "ALB": _alb("GET", "/health"),
}


def _answer(status: int, headers: list[tuple[bytes, bytes]], *parts: bytes):
    async def app(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for index, part in enumerate(parts):
            await send({"type": "http.response.body", "body": part, "more_body": index < len(parts) - 1})
    return app


async def _fails_before_answering(scope, receive, send):
    await receive()
    raise RuntimeError("the app failed")


async def _fails_while_answering(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"half", "more_body": True})
    raise RuntimeError("the app failed mid-answer")


APPS = {
    "JSON, duplicate headers, cookies": _answer(200, [(b"content-type", b"application/json"), (b"vary", b"a"),
                                                      (b"Vary", b"b"), (b"set-cookie", b"s=1"),
                                                      (b"set-cookie", b"t=2")], b'{"ok":true}'),
    "binary": _answer(200, [(b"content-type", b"image/png")], PNG),
    "text, not UTF-8": _answer(200, [(b"content-type", b"text/plain")], b"caf\xe9"),
    "no content type": _answer(200, [], b"plain"),
    "empty": _answer(204, [], b""),
    "event stream in parts": _answer(200, [(b"content-type", b"text/event-stream")],
                                     b"event: a\ndata: {}\n\n", b"event: b\ndata: {}\n\n"),
    "fails before answering": _fails_before_answering,
    "fails while answering": _fails_while_answering,
}


def _recording(app, seen: list):
    async def recorded(scope, receive, send):
        async def receive_recorded():
            message = await receive()
            seen.append(message)
            return message
        seen.append({key: value for key, value in scope.items() if key != "aws.context"})
        await app(scope, receive_recorded, send)
    return recorded


async def _nothing() -> None:
    pass


@pytest.fixture(autouse=True)
def _current_loop():
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    asyncio.set_event_loop(None)
    loop.close()


@pytest.mark.parametrize("app", APPS.values(), ids=APPS.keys())
@pytest.mark.parametrize("event", EVENTS.values(), ids=EVENTS.keys())
def test_every_event_and_response_shape_is_answered_as_stock_mangum_answers_it(event, app):
    context = LambdaContext()
    seen_by_stock: list = []
    seen_by_one_pass: list = []
    stock = Mangum(_recording(app, seen_by_stock), lifespan="off")(event, context)
    one_pass = OnePassMangum(_recording(app, seen_by_one_pass), after=_nothing)(event, context)
    assert one_pass == stock, "the proxy response differs from stock Mangum's"
    assert seen_by_one_pass == seen_by_stock, "the app was handed another scope or body than stock Mangum's"


def test_after_runs_once_the_response_is_complete_and_what_it_raises_leaves_the_call():
    done: list[str] = []

    async def app(scope, receive, send):
        await _answer(200, [(b"content-type", b"application/json")], b"{}")(scope, receive, send)
        done.append("answered")

    async def after() -> None:
        done.append("after")
        raise LookupError("the drain failed")

    with pytest.raises(LookupError):
        OnePassMangum(app, after=after)(EVENTS["HTTP API 2.0"], LambdaContext())
    assert done == ["answered", "after"]


def test_a_response_is_logged_once_by_the_gateway_not_again_by_mangum(caplog):
    """With the function's logs in JSON, Lambda's default application log level is INFO
    (docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html: "the default
    application log level for log filtering is INFO"): Mangum's access line was a second line for
    every request. An app that fails is still logged, with its traceback."""
    import logging

    with caplog.at_level(logging.INFO):
        answered = OnePassMangum(_answer(200, [(b"content-type", b"application/json")], b"{}"), after=_nothing)(
            EVENTS["HTTP API 2.0"], LambdaContext())
    assert answered["statusCode"] == 200
    assert [r.getMessage() for r in caplog.records if r.name.startswith("mangum")] == [], \
        "each request wrote Mangum's access line beside the gateway's own"

    async def fails(scope, receive, send):
        raise RuntimeError("the app failed")

    caplog.clear()
    with caplog.at_level(logging.INFO):
        refused = OnePassMangum(fails, after=_nothing)(EVENTS["HTTP API 2.0"], LambdaContext())
    assert refused["statusCode"] == 500
    (record,) = [r for r in caplog.records if r.name.startswith("mangum")]
    assert (record.levelname, record.getMessage()) == ("ERROR", "An error occurred running the application.")
    assert record.exc_info and "the app failed" in str(record.exc_info[1]), "the failure's traceback was not logged"
