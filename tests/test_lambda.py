"""The Lambda entry point serves API Gateway events through Mangum.

Invoked in-process with real-shaped HTTP API (v2) and REST API (v1) events
and a Lambda context; responses are buffered, so a stream arrives as one
complete, valid SSE body.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
from moto.dynamodb.models import DynamoDBBackend

from handler import aws

from handler.app import app as module_app
from handler.lambda_function import lambda_handler, strip_stage
from tests.support.lambda_events import LambdaContext, http_api_event, rest_api_event
from tests.support.stack import Stack, providers_document

MESSAGES_PATH = "/v3/v1/messages"
BODY = {"model": "anthropic/claude-sonnet-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def lambda_stack(moto_endpoint, _fake_session):
    """Secrets under the names the module-level app (the one Lambda serves) reads."""
    stack = Stack(module_app.state.settings, _fake_session.url)
    stack.put_providers(providers_document(_fake_session.url))
    return stack


@pytest.fixture(scope="module")
def lambda_key(lambda_stack):
    return lambda_stack.add_key(name="lambda")


def invoke(event) -> dict:
    return lambda_handler(event, LambdaContext())


def body_of(response) -> bytes:
    body = response["body"]
    return base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()


@pytest.mark.parametrize("make_event", [http_api_event, rest_api_event])
@pytest.mark.parametrize("base64_body", [False, True])
def test_a_message_through_api_gateway_events(lambda_key, make_event, base64_body):
    response = invoke(make_event("POST", MESSAGES_PATH, body=BODY, base64_body=base64_body,
                                 headers={"x-api-key": lambda_key}))
    assert response["statusCode"] == 200, response
    message = json.loads(body_of(response))
    assert message["content"][0]["text"] == "Hello from claude-sonnet-4-5: hi"
    assert message["model"] == "anthropic/claude-sonnet-4-5"
    headers = {k.lower(): v for k, v in response["headers"].items()}
    assert headers["request-id"].startswith("req_")


def test_a_named_stage_in_an_http_api_path_is_stripped(lambda_key):
    event = http_api_event("POST", MESSAGES_PATH, body=BODY, stage="prod", headers={"authorization": f"Bearer {lambda_key}"})
    assert event["rawPath"] == "/prod/v3/v1/messages"
    assert invoke(event)["statusCode"] == 200


def test_strip_stage_leaves_stage_free_paths_alone():
    event = rest_api_event("GET", "/health", stage="prod")
    assert strip_stage(event)["path"] == "/health"
    prefixed = {**event, "path": "/prod/health"}
    assert strip_stage(prefixed)["path"] == "/health"
    assert strip_stage(http_api_event("GET", "/health"))["rawPath"] == "/health"


def test_a_stream_is_one_complete_valid_sse_body(lambda_key):
    response = invoke(http_api_event("POST", MESSAGES_PATH, body={**BODY, "stream": True},
                                     headers={"x-api-key": lambda_key}))
    assert response["statusCode"] == 200
    assert response["headers"]["content-type"].startswith("text/event-stream")
    blocks = body_of(response).decode().strip().split("\n\n")
    names = [block.split("\n")[0].removeprefix("event: ") for block in blocks]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    for block in blocks:
        json.loads(block.split("\n")[1].removeprefix("data: "))


def test_errors_keep_anthropics_envelope_through_lambda(lambda_key):
    unauthorized = invoke(rest_api_event("POST", MESSAGES_PATH, body=BODY))
    assert unauthorized["statusCode"] == 401
    assert json.loads(body_of(unauthorized))["error"]["type"] == "authentication_error"
    invalid = invoke(http_api_event("POST", MESSAGES_PATH, body={"model": "x"}, headers={"x-api-key": lambda_key}))
    assert invalid["statusCode"] == 422
    assert json.loads(body_of(invalid))["detail"][0]["loc"] == ["body", "messages"]


def test_health_and_unknown_routes(lambda_key):
    assert invoke(http_api_event("GET", "/health"))["statusCode"] == 200
    missing = invoke(rest_api_event("GET", "/nope"))
    assert missing["statusCode"] == 404
    assert json.loads(body_of(missing))["type"] == "error"


def test_many_warm_invocations_in_one_process(lambda_key):
    event = http_api_event("POST", MESSAGES_PATH, body=BODY, headers={"x-api-key": lambda_key})
    assert all(invoke(event)["statusCode"] == 200 for _ in range(10))


def test_invocations_survive_a_closed_event_loop(lambda_key):
    """Anything in the process that closes the current loop (asyncio.run does) must not break the handler."""
    import asyncio

    asyncio.run(asyncio.sleep(0))
    event = http_api_event("POST", MESSAGES_PATH, body=BODY, headers={"x-api-key": lambda_key})
    assert invoke(event)["statusCode"] == 200


@pytest.mark.parametrize("event, status", [
    ({}, 400),
    ({"requestContext": {"stage": "$default"}, "version": "2.0"}, 400),  # no http
    ({**http_api_event("GET", "/health"), "requestContext": {"stage": "$default"}}, 400),
    ({**http_api_event("GET", "/health"), "headers": None}, 200),  # a request without headers
    ({**rest_api_event("GET", "/health"), "headers": None, "multiValueHeaders": None}, 200),
    ({**http_api_event("POST", MESSAGES_PATH, body=BODY), "headers": None}, 401),
    ({**http_api_event("POST", MESSAGES_PATH, body=BODY), "isBase64Encoded": True, "body": "%%not base64%%"}, 400),
    ({k: v for k, v in rest_api_event("GET", "/health").items() if k != "requestContext"}, 400),
    ({**rest_api_event("GET", "/health"), "headers": "x-api-key: k"}, 400),
])
def test_malformed_events_are_answered_in_the_error_envelope(lambda_key, event, status):
    response = invoke(event)
    assert response["statusCode"] == status, response
    if status != 200:
        error = json.loads(body_of(response))
        assert error["type"] == "error" and error["error"]["type"] in (
            "invalid_request_error", "authentication_error"), error
        headers = {name.lower(): value for name, value in (response.get("headers") or {}).items()}
        assert headers.get("x-should-retry") == "false", "a refusal no retry can fix told the client to retry"


def test_a_refused_event_still_hands_its_invocation_over_so_the_extension_lets_it_end(monkeypatch):
    """The usage extension holds every invocation until its handover: a warm-up ping or a test
    event that gets a 400 must not be billed until the function's timeout."""
    from handler import lambda_function

    handed: list[tuple] = []
    monkeypatch.setattr(lambda_function._after_response, "hand_over", lambda *args: handed.append(args))
    response = lambda_handler({}, LambdaContext(aws_request_id="ping-1"))
    assert response["statusCode"] == 400
    assert handed == [("ping-1", [], handed[0][2])], "the refused invocation was never handed over"


def test_a_rest_api_stage_named_v3_keeps_the_v3_of_the_path(lambda_key):
    event = rest_api_event("POST", MESSAGES_PATH, body=BODY, stage="v3", headers={"x-api-key": lambda_key})
    assert strip_stage(event)["path"] == MESSAGES_PATH
    assert invoke(event)["statusCode"] == 200
    http_v3 = http_api_event("POST", MESSAGES_PATH, body=BODY, stage="v3", headers={"x-api-key": lambda_key})
    assert strip_stage(http_v3)["rawPath"] == MESSAGES_PATH  # /v3/v3/v1/messages: the stage is the first


def test_with_little_time_left_and_a_slow_dynamodb_the_entry_goes_to_the_queue(lambda_key, monkeypatch):
    """Without the Runtime API (no extension) the write happens before the return, within the
    invocation's remaining time less the queue's reserve."""
    queue = aws.client("sqs").create_queue(QueueName="lambda-ledger-fallback")["QueueUrl"]
    monkeypatch.setattr(module_app.state.ledger, "queue_url", queue)
    original = DynamoDBBackend.transact_write_items
    monkeypatch.setattr(DynamoDBBackend, "transact_write_items",
                        lambda backend, *a, **k: (time.sleep(6), original(backend, *a, **k))[1])
    started = time.monotonic()
    response = lambda_handler(http_api_event("POST", MESSAGES_PATH, body=BODY, headers={"x-api-key": lambda_key}),
                              LambdaContext(remaining_ms=3_500))
    elapsed = time.monotonic() - started
    assert response["statusCode"] == 200
    assert elapsed < 3.5, f"the handler outlived the invocation's time ({elapsed:.1f} s)"
    messages = aws.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    assert len(messages) == 1 and json.loads(messages[0]["Body"])["status"] == "ok"



def test_usage_writes_start_no_thread_per_invocation(lambda_stack, lambda_key, monkeypatch):
    """Each invocation's usage write is bounded by its time on a thread the handler can stop
    waiting for; that thread is kept, not started anew for each write (Thread.start and its
    bootstrap were a few percent of a streaming request's CPU)."""
    import sys
    import threading

    stack = lambda_stack
    module_app.state.ledger.create_table()  # the usage table, so that each write lands
    event = http_api_event("POST", MESSAGES_PATH, body=BODY, headers={"x-api-key": lambda_key})
    for _ in range(2):  # warm: the event loop's worker threads, the writer
        assert invoke(event)["statusCode"] == 200
    written_before = len(stack.records(lambda_key, 2))
    started: list[str] = []
    original_start = threading.Thread.start

    def counted_start(thread):
        if sys._getframe(1).f_globals.get("__name__") != "socketserver":  # moto's server: the test's side
            started.append(thread.name)
        return original_start(thread)

    monkeypatch.setattr(threading.Thread, "start", counted_start)
    for _ in range(5):
        assert invoke(event)["statusCode"] == 200
    assert len(stack.records(lambda_key, written_before + 5)) == written_before + 5, "a usage write was lost"
    assert started == [], f"5 invocations, each with its usage written, started threads: {started}"


def test_a_write_that_outlasts_its_invocation_does_not_make_the_next_ones_late(lambda_stack, lambda_key,
                                                                               monkeypatch):
    """The kept writer thread is still held by a DynamoDB call that ran out of time: the next
    invocation's write goes on another thread, in its own time, instead of queueing behind it."""
    queue = aws.client("sqs").create_queue(QueueName="lambda-ledger-fallback-after-a-hang")["QueueUrl"]
    monkeypatch.setattr(module_app.state.ledger, "queue_url", queue)
    module_app.state.ledger.create_table()
    original = DynamoDBBackend.transact_write_items
    hung = []

    def first_write_hangs(backend, *args, **kwargs):
        if not hung:
            hung.append(True)
            time.sleep(6)
        return original(backend, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", first_write_hangs)
    event = http_api_event("POST", MESSAGES_PATH, body=BODY, headers={"x-api-key": lambda_key})
    written_before = len(lambda_stack.items(lambda_key, "REQ#"))
    for _ in range(2):
        assert lambda_handler(event, LambdaContext(remaining_ms=3_500))["statusCode"] == 200
    messages = aws.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    assert len(messages) == 1, f"only the hung write's entry belongs in the queue: {len(messages)} queued"
    assert len(lambda_stack.items(lambda_key, "REQ#")) == written_before + 1, \
        "the second invocation's usage was not written in its own time"


def test_an_invocation_runs_the_event_loop_once_its_stream_drained_in_that_run(lambda_key, monkeypatch):
    """Each start and stop of the event loop costs CPU on every invocation: the app and the
    gateway's drain (a stream's reader, the writes it leads to) share one run, and the stream's
    usage is still handed over by the invocation that served it."""
    import asyncio

    from handler import lambda_function

    event = http_api_event("POST", MESSAGES_PATH, body={**BODY, "stream": True}, headers={"x-api-key": lambda_key})
    assert invoke(event)["statusCode"] == 200  # warm
    runs: list[bool] = []
    original_run = asyncio.BaseEventLoop.run_forever
    monkeypatch.setattr(asyncio.BaseEventLoop, "run_forever", lambda loop: (runs.append(True), original_run(loop))[1])
    handed: list[tuple] = []
    original_hand_over = lambda_function._after_response.hand_over
    monkeypatch.setattr(lambda_function._after_response, "hand_over",
                        lambda *args: (handed.append(args), original_hand_over(*args))[1])
    response = lambda_handler(event, LambdaContext(aws_request_id="one-run"))
    assert response["statusCode"] == 200 and "event: message_stop" in body_of(response).decode()
    assert len(runs) == 1, f"one invocation ran the event loop {len(runs)} times"
    assert [(request_id, len(entries)) for request_id, entries, _ in handed] == [("one-run", 1)], \
        "the stream's usage was not handed over by the invocation that served it"


def test_an_http_api_event_is_read_into_an_asgi_scope_once(lambda_key, monkeypatch):
    """Mangum's HTTP API handler built the scope a second time only to read the event's version
    when it assembled the response: the adapter reads each event once."""
    from mangum.handlers import HTTPGateway

    built: list[bool] = []
    original_scope = HTTPGateway.scope
    monkeypatch.setattr(HTTPGateway, "scope", property(lambda handler: (built.append(True),
                                                                         original_scope.fget(handler))[1]))
    response = invoke(http_api_event("POST", MESSAGES_PATH, body=BODY, headers={"x-api-key": lambda_key}))
    assert response["statusCode"] == 200
    assert len(built) == 1, f"one HTTP API event was read into an ASGI scope {len(built)} times"


def test_metering_still_under_way_when_the_response_is_complete_is_handed_over_by_its_invocation(
        lambda_key, monkeypatch):
    """The usage entry is recorded after the answer (Gateway.spawn): the handler waits for it
    before the handover, or it would be written with the next invocation, or never."""
    import asyncio

    from handler import lambda_function

    original_record = lambda_function._outbox.record

    async def slow_record(entry):
        await asyncio.sleep(0.05)
        return await original_record(entry)

    monkeypatch.setattr(lambda_function._outbox, "record", slow_record)
    handed: list[tuple] = []
    monkeypatch.setattr(lambda_function._after_response, "hand_over", lambda *args: handed.append(args))
    response = lambda_handler(http_api_event("POST", MESSAGES_PATH, body=BODY, headers={"x-api-key": lambda_key}),
                              LambdaContext(aws_request_id="late-entry"))
    assert response["statusCode"] == 200
    assert [(request_id, len(entries)) for request_id, entries, _ in handed] == [("late-entry", 1)], \
        "the invocation handed over before its usage was recorded"
