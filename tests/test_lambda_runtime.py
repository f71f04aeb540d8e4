"""The handler under Lambda's real runtime interface client, against a stand-in Runtime API.

`python -m awslambdaric handler.lambda_function.lambda_handler` is how Lambda's
Python runtime runs the function; tests/support/lambda_runtime_api.py plays
Lambda's side (invocations, and when one is over). The usage write happens
after the response is posted, held by the gateway's internal extension, which
asks for its next event only once the write (or the spill to the fallback
queue) is done. DynamoDB here is the session's moto server with its
TransactWriteItems timed, and slowed where a test says so.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from moto.dynamodb.models import DynamoDBBackend

from handler import aws
from tests.support.lambda_events import http_api_event
from tests.support.lambda_runtime_api import LambdaRuntimeApi, function_process, runtime_client_argv
from tests.support.stack import new_stack

ROOT = Path(__file__).resolve().parents[1]
MESSAGES = "/v3/v1/messages"
BODY = {"model": "anthropic/claude-sonnet-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}


class TimedWrites:
    """moto's TransactWriteItems, time-stamped (monotonic, this process) and optionally slowed."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.first_delays: list[float] = []  # the first writes' delays, in turn, before `delay`
        self.finished: list[float] = []
        self.lock = threading.Lock()

    def wrap(self, original):
        def transact_write_items(backend, *args, **kwargs):
            with self.lock:
                delay = self.first_delays.pop(0) if self.first_delays else self.delay
            time.sleep(delay)
            result = original(backend, *args, **kwargs)
            with self.lock:
                self.finished.append(time.monotonic())
            return result
        return transact_write_items


@pytest.fixture
def writes(monkeypatch, moto_endpoint):
    timed = TimedWrites()
    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", timed.wrap(DynamoDBBackend.transact_write_items))
    return timed


@pytest.fixture
def gateway_stack(moto_endpoint, fake):
    stack = new_stack(fake.url)
    queue = aws.client("sqs").create_queue(QueueName=f"ledger-{stack.settings.usage_table}")["QueueUrl"]
    return stack, stack.add_key(name="runtime"), queue


def function_env(stack, queue: str, api: LambdaRuntimeApi, **extra) -> dict[str, str]:
    return {**os.environ, "AWS_LAMBDA_RUNTIME_API": api.address,
            "GATEWAY_KEYS_SECRET_ID": stack.settings.keys_secret_id,
            "GATEWAY_PROVIDERS_SECRET_ID": stack.settings.providers_secret_id,
            "GATEWAY_USAGE_TABLE": stack.settings.usage_table, "GATEWAY_LEDGER_QUEUE_URL": queue,
            "AWS_LAMBDA_FUNCTION_NAME": "edenai-gateway", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", **extra}


def body_of(response: dict) -> bytes:
    body = response["body"]
    return base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()


def queued(queue: str) -> list[dict]:
    answer = aws.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                               VisibilityTimeout=0)  # looked at, left for replay
    return [json.loads(message["Body"]) for message in answer.get("Messages", [])]


def message_event(key: str, **body) -> dict:
    return http_api_event("POST", MESSAGES, body={**BODY, **body}, headers={"x-api-key": key})


@pytest.mark.parametrize("stream", [False, True])
def test_the_response_is_posted_before_the_usage_write_and_the_invocation_ends_after_it(
        gateway_stack, writes, stream):
    stack, key, queue = gateway_stack
    writes.delay = 1.0  # a slow DynamoDB: the caller must not wait for it
    with LambdaRuntimeApi() as api, function_process(runtime_client_argv(sys.executable), function_env(stack, queue, api), ROOT) as output:
        invocation = api.invoke(message_event(key, stream=stream), timeout_s=30)
        api.completed(invocation)
    assert invocation.error is None, invocation.error
    assert invocation.response["statusCode"] == 200, invocation.response
    assert b"Hello from claude-sonnet-4-5" in body_of(invocation.response)
    assert len(writes.finished) == 1, f"one ledger write per invocation: {writes.finished}\n{''.join(output)}"
    (extension_next,) = invocation.extension_next_at.values()
    assert invocation.answered_at < writes.finished[0], "the caller waited for the usage write"
    assert writes.finished[0] <= extension_next, "the invocation ended before its usage was written"
    assert invocation.completed_at == extension_next
    assert len(stack.records(key, 1)) == 1 and queued(queue) == []
    assert list(api.extensions.values()) == ["edenai-gateway-ledger"], "".join(output)


def test_many_invocations_each_write_their_own_usage_once(gateway_stack, writes):
    stack, key, queue = gateway_stack
    with LambdaRuntimeApi() as api, function_process(runtime_client_argv(sys.executable), function_env(stack, queue, api), ROOT):
        invocations = [api.completed(api.invoke(message_event(key, stream=i % 2 == 1))) for i in range(6)]
    assert all(i.response["statusCode"] == 200 for i in invocations)
    assert len(writes.finished) == 6
    records = stack.records(key, 6)
    assert len(records) == 6
    assert stack.month(key, requests=6)["requests"] == 6


def test_a_slow_dynamodb_and_little_time_left_put_the_entry_in_the_queue_once(gateway_stack, writes):
    stack, key, queue = gateway_stack
    writes.delay = 8.0  # longer than the invocation has left
    with LambdaRuntimeApi() as api, function_process(runtime_client_argv(sys.executable), function_env(stack, queue, api), ROOT) as output:
        started = time.monotonic()
        invocation = api.completed(api.invoke(message_event(key), timeout_s=4.0))
        ended = time.monotonic() - started
        assert invocation.response["statusCode"] == 200, invocation.response
        # What the code did, not how fast a loaded machine ran it: the invocation ended without
        # waiting for the write (8 s), with the entry queued and the write still under way.
        assert ended < writes.delay, f"the invocation waited for the slow write ({ended:.1f} s)"
        spilled = queued(queue)
        assert [entry["key_id"] for entry in spilled] == [stack.key_id(key)], "".join(output)
        assert writes.finished == [], "the slow write was still under way when the invocation ended"
        # The slow write lands after all (the process was not frozen here): replaying the queued
        # copy finds the record and counts nothing twice.
        deadline = time.monotonic() + 30
        while not writes.finished and time.monotonic() < deadline:
            time.sleep(0.1)
    writes.delay = 0.0
    assert stack.ledger(queue_url=queue).replay(wait_seconds=0) == {"written": 0, "duplicate": 1, "failed": 0}
    assert stack.month(key, requests=1)["requests"] == 1


def test_a_write_hung_past_its_invocation_is_queued_and_the_next_invocations_write_is_on_time(
        gateway_stack, writes):
    """The extension writes on its own thread; a DynamoDB call that hangs past the invocation's
    time leaves the entry to the fallback queue, and the next invocation's usage is written in
    its own time, not after the hung call."""
    stack, key, queue = gateway_stack
    writes.first_delays = [12.0]  # the first write hangs past its invocation's time (4 s, less 2 s)
    with LambdaRuntimeApi() as api, function_process(runtime_client_argv(sys.executable), function_env(stack, queue, api), ROOT) as output:
        started = time.monotonic()
        first = api.completed(api.invoke(message_event(key), timeout_s=4.0))
        second = api.completed(api.invoke(message_event(key), timeout_s=30.0))
        ended = time.monotonic() - started
        assert [first.response["statusCode"], second.response["statusCode"]] == [200, 200], "".join(output)
        assert ended < 10, f"the second invocation ended {ended:.1f} s after the first began: behind the hung write"
        assert len(writes.finished) == 1 and writes.finished[0] <= second.completed_at, \
            "the second invocation's usage was not written before it ended"
        assert [entry["key_id"] for entry in queued(queue)] == [stack.key_id(key)], "".join(output)
        assert len(stack.records(key, 1)) == 1, "the second invocation's record is not in the table"


def test_malformed_events_are_answered_not_raised_under_the_runtime_client(gateway_stack, writes):
    stack, key, queue = gateway_stack
    with LambdaRuntimeApi() as api, function_process(runtime_client_argv(sys.executable), function_env(stack, queue, api), ROOT):
        answers = [api.completed(api.invoke(event)) for event in (
            {}, {**message_event(key), "headers": None}, {**message_event(key), "isBase64Encoded": True,
                                                           "body": "not base64!"})]
    assert [a.error for a in answers] == [None, None, None]
    assert [a.response["statusCode"] for a in answers] == [400, 401, 400]
    for answer in answers:
        assert json.loads(body_of(answer.response))["type"] == "error"
    assert writes.finished == []


def free_port() -> int:
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def web_adapter(api: LambdaRuntimeApi, app_url: str, ends: list[float]) -> None:
    """The Lambda Web Adapter's part, reduced: per invocation, take the event from the Runtime API,
    forward it to the app with `x-amzn-lambda-context`, read the streamed response to its end
    (the time is when the caller has all of it), post it back."""
    runtime = f"http://{api.address}/2018-06-01/runtime"
    with httpx.Client(timeout=None) as http:
        while True:
            invocation = http.get(f"{runtime}/invocation/next")
            request_id = invocation.headers["Lambda-Runtime-Aws-Request-Id"]
            event = invocation.json()
            context = {"request_id": request_id, "deadline": int(invocation.headers["Lambda-Runtime-Deadline-Ms"]),
                       "invoked_function_arn": invocation.headers["Lambda-Runtime-Invoked-Function-Arn"]}
            headers = {**event["headers"], "x-amzn-lambda-context": json.dumps(context)}
            with http.stream(event["requestContext"]["http"]["method"], app_url + event["rawPath"],
                             content=event["body"], headers=headers) as response:
                body = response.read()
            ends.append(time.monotonic())
            http.post(f"{runtime}/invocation/{request_id}/response",
                      json={"statusCode": response.status_code, "body": body.decode()})


@contextlib.contextmanager
def streaming_function(stack, queue: str, api: LambdaRuntimeApi):
    """uvicorn as the template's streaming mode runs it (run.sh), ready: (its URL, its output)."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "handler.runtime.snapstart:streaming_app", "--host", "127.0.0.1",
            "--port", str(port), "--lifespan", "off", "--log-level", "warning",
            "--http", "handler.runtime.serving:GuardedHTTPProtocol"]
    with function_process(argv, function_env(stack, queue, api, GATEWAY_METER_BEFORE_RESPONSE_END="true"),
                          ROOT) as output:
        ready_by = time.monotonic() + 60
        while not ready(f"http://127.0.0.1:{port}/health"):  # the adapter's readiness check
            assert time.monotonic() < ready_by, "".join(output)
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", output


def refused_forwarding(api: LambdaRuntimeApi, port: int, answers: list[bytes]) -> None:
    """The adapter's part for one invocation whose request uvicorn refuses before the app sees it
    (a header line with no colon: a 400 from httptools, or h11's "illegal header line"), with the
    invocation's context."""
    runtime = f"http://{api.address}/2018-06-01/runtime"
    with httpx.Client(timeout=None) as http:
        invocation = http.get(f"{runtime}/invocation/next")
        request_id = invocation.headers["Lambda-Runtime-Aws-Request-Id"]
        context = json.dumps({"request_id": request_id,
                              "deadline": int(invocation.headers["Lambda-Runtime-Deadline-Ms"])})
        with socket.create_connection(("127.0.0.1", port)) as connection:
            connection.sendall(f"POST {MESSAGES} HTTP/1.1\r\nHost: localhost\r\n"
                               f"x-amzn-lambda-context: {context}\r\nno colon here\r\n\r\n".encode())
            answers.append(connection.recv(65536))
        http.post(f"{runtime}/invocation/{request_id}/response", json={"statusCode": 400, "body": ""})


def test_a_streaming_mode_request_refused_before_the_app_ends_its_invocation_long_before_the_deadline(
        gateway_stack, writes):
    """Nothing in the app hands such an invocation over; the extension must not hold it until 2 s
    before its 900 s deadline (billed, and a concurrency slot taken, all that time)."""
    stack, key, queue = gateway_stack
    answers: list[bytes] = []
    with LambdaRuntimeApi() as api, streaming_function(stack, queue, api) as (app_url, output):
        port = int(app_url.rsplit(":", 1)[1])
        threading.Thread(target=refused_forwarding, args=(api, port, answers), daemon=True).start()
        invocation = api.invoke(message_event(key), timeout_s=900.0)
        assert answers and answers[0].startswith(b"HTTP/1.1 400"), f"uvicorn did not refuse it: {answers}"
        api.completed(invocation)
    assert invocation.completed_at is not None and invocation.extension_next_at, \
        "the extension still held an invocation whose request never reached the app"
    assert writes.finished == [] and queued(queue) == [], "a refused request wrote usage"


def test_a_streaming_mode_request_that_outlasts_the_arrival_window_still_has_its_usage_written_first(
        gateway_stack, writes, fake):
    """The window bounds only a request's arrival: one that reached the app is waited for to its end."""
    from handler.runtime.after_response import ARRIVAL_WINDOW_S

    stack, key, queue = gateway_stack
    fake.delay("claude-sonnet-4-5", ARRIVAL_WINDOW_S + 2)
    ends: list[float] = []
    with LambdaRuntimeApi() as api, streaming_function(stack, queue, api) as (app_url, output):
        threading.Thread(target=web_adapter, args=(api, app_url, ends), daemon=True).start()
        invocation = api.completed(api.invoke(message_event(key, stream=True), timeout_s=60))
    assert invocation.response["statusCode"] == 200, invocation.response
    assert len(writes.finished) == 1, "".join(output)
    (extension_next,) = invocation.extension_next_at.values()
    assert writes.finished[0] <= extension_next, "the invocation ended before its usage was written"
    assert len(stack.records(key, 1)) == 1 and queued(queue) == []


@pytest.mark.parametrize("stream", [True, False])
def test_streaming_mode_ends_the_response_before_the_usage_write_and_the_invocation_after_it(
        gateway_stack, writes, stream):
    """uvicorn behind the (stand-in) Web Adapter, with the template's streaming-mode settings."""
    stack, key, queue = gateway_stack
    writes.delay = 1.0
    ends: list[float] = []
    with LambdaRuntimeApi() as api, streaming_function(stack, queue, api) as (app_url, output):
        threading.Thread(target=web_adapter, args=(api, app_url, ends), daemon=True).start()
        invocation = api.completed(api.invoke(message_event(key, stream=stream)))
    assert invocation.response["statusCode"] == 200, invocation.response
    assert len(writes.finished) == 1, "".join(output)
    assert ends[0] < writes.finished[0], "the caller's response waited for the usage write"
    assert list(api.extensions.values()) == ["edenai-gateway-ledger"], "".join(output)
    (extension_next,) = invocation.extension_next_at.values()
    assert writes.finished[0] <= extension_next, "the invocation ended before its usage was written"
    assert len(stack.records(key, 1)) == 1 and queued(queue) == []


def test_a_streaming_mode_shutdown_that_outlasts_its_grace_cancels_cleanly():
    """Streaming mode writes through the extension's outbox: a server stopped while a request
    still meters must cut it short, not fail on the outbox (each invocation hands its entries
    over itself as its response ends)."""
    import asyncio

    from handler.runtime.after_response import Outbox
    from handler.pipeline.gateway import Gateway

    async def stopped_server() -> bool:
        gateway = Gateway(catalogue=None, ledger=None, deadline=27.0)
        gateway.write_ledger_with(Outbox())
        still_metering = asyncio.Event()
        gateway.spawn(still_metering.wait())
        await gateway.drain(timeout=0.05)
        return not gateway._pending

    assert asyncio.run(stopped_server()), "pending work outlived the shutdown"


def _two_invocations_then_gone() -> tuple[object, threading.Event]:
    """The Extensions API's side: invocations r1 and r2, then the API goes away; the event is
    set once the extension has asked past both (it settled them)."""
    events = [{"eventType": "INVOKE", "requestId": rid, "deadlineMs": (time.time() + 60) * 1000}
              for rid in ("r1", "r2")]
    both_settled = threading.Event()

    class Extension:
        def next_event(self) -> dict:
            if events:
                return events.pop(0)
            both_settled.set()
            raise OSError("no more invocations in this test")

    return Extension(), both_settled


def test_a_request_that_begins_before_the_last_invocation_is_settled_is_still_waited_for(caplog):
    """Streaming mode: the next invocation's request can reach the app before the extension has
    settled the last one (invocations that overlap, as the benchmark's stand-in runtime sends
    them). Its arrival must not be forgotten: forgotten, its usage waited for the next event
    and the extension took it as a request refused on the way."""
    import logging

    from handler.runtime.after_response import AfterResponse

    extension, both_settled = _two_invocations_then_gone()
    with caplog.at_level(logging.WARNING, logger="handler.runtime.after_response"):
        after = AfterResponse(ledger=None, extension=extension, arrival_window=30.0)
        for request_id in ("r1", "r2"):  # r2 begins while r1 is still being settled
            after.begin(request_id)
        for request_id in ("r1", "r2"):
            after.hand_over(request_id, [], remaining_s=30)
        assert both_settled.wait(20), "the extension was still waiting for a request that had begun"
    assert "never reached the app" not in caplog.text


def test_a_handover_that_comes_before_the_last_invocations_is_not_waited_for_again():
    """Invocations that overlap (the benchmark's stand-in runtime): r2's response can end and
    hand its usage over while r1's stream still drains. Written on the way while the extension
    waited for r1, r2's handover must not be waited for again in r2's turn: waited for, r2 ended
    only 2 s before its deadline (the benchmark's AWS-calls count timed out on it)."""
    from handler.runtime.after_response import AfterResponse

    extension, both_settled = _two_invocations_then_gone()
    after = AfterResponse(ledger=None, extension=extension, arrival_window=30.0)
    for request_id in ("r1", "r2"):
        after.begin(request_id)
    for request_id in ("r2", "r1"):  # r2's handover first
        after.hand_over(request_id, [], remaining_s=30)
    assert both_settled.wait(20), "the extension waited for r2's handover, which it had already written"
