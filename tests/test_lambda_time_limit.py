"""Under Lambda (buffered responses), no request outlives the function: each ends, metered,
before the invocation's deadline.

A stream longer than the invocation can afford ends with an Anthropic `error`
event that says why; what it produced is metered and the entry written (or
queued) before the handler returns. A non-streamed call's deadline is cut the
same way. Driven in-process like Lambda does: an API Gateway event and a
context whose remaining time runs down.
"""

from __future__ import annotations

import base64
import json
import time

import pytest

from handler.app import app as module_app
from handler.lambda_function import lambda_handler
from tests.support.lambda_events import LambdaContext, http_api_event
from tests.support.stack import Stack, providers_document

MESSAGES_PATH = "/v3/v1/messages"
FUNCTION_TIMEOUT_MS = 8_000
LONG_PROMPT = " ".join(f"word{n}" for n in range(40))  # the fake echoes it: about 40 events


@pytest.fixture(scope="module")
def lambda_stack(moto_endpoint, _fake_session):
    """Secrets and table under the names the module-level app (the one Lambda serves) reads,
    with both keys in place before its key cache first loads."""
    stack = Stack(module_app.state.settings, _fake_session.url)
    stack.put_providers(providers_document(_fake_session.url))
    stack.ledger().create_table()
    stack.capped = stack.add_key(name="capped", limits={"monthly_usd": 5})
    stack.plain = stack.add_key(name="plain")
    return stack


def invoke(key: str, **body) -> tuple[dict, float]:
    payload = {"model": "anthropic/claude-sonnet-4-5", "max_tokens": 400,
               "messages": [{"role": "user", "content": LONG_PROMPT}], **body}
    started = time.monotonic()
    response = lambda_handler(http_api_event("POST", MESSAGES_PATH, body=payload, headers={"x-api-key": key}),
                              LambdaContext(remaining_ms=FUNCTION_TIMEOUT_MS))
    return response, time.monotonic() - started


def events_of(response) -> list[tuple[str, dict]]:
    body = response["body"]
    text = (base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()).decode()
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_a_stream_longer_than_the_function_ends_with_an_error_event_and_is_metered_in_time(
        lambda_stack, fake):
    stack, key = lambda_stack, lambda_stack.capped
    fake.pace_stream("claude-sonnet-4-5", seconds=0.4)  # the whole stream would take about 18 s
    response, elapsed = invoke(key, stream=True)
    assert elapsed < FUNCTION_TIMEOUT_MS / 1000, f"the handler ran {elapsed:.1f} s in an 8 s function"
    assert response["statusCode"] == 200
    events = events_of(response)
    names = [name for name, _ in events]
    assert "content_block_delta" in names, "nothing of the stream was relayed"
    assert names[-1] == "error", f"the stream did not end with an error event: {names[-3:]}"
    message = events[-1][1]["error"]["message"]
    assert "no time left" in message, f"the error event does not say why the stream ended: {message!r}"
    [record] = stack.records(key, 1, timeout=0.5)  # written before the handler returned
    assert record["status"] == "stream_error" and record["output_tokens"] > 1
    assert record["usage_estimated"] is True and record["estimate_reason"] == "time_limit"
    month = stack.month(key, requests=1)
    assert month["budget_usd"] == record["cost_usd"], "the reservation was left held"


def test_a_non_streamed_call_never_waits_longer_than_the_function_can_afford(lambda_stack, fake):
    stack, key = lambda_stack, lambda_stack.plain
    fake.delay("claude-sonnet-4-5", 10.0, times=1)
    response, elapsed = invoke(key)
    assert elapsed < FUNCTION_TIMEOUT_MS / 1000, f"the handler ran {elapsed:.1f} s in an 8 s function"
    assert response["statusCode"] == 504
    [record] = stack.records(key, 1, timeout=0.5)
    assert record["cost_usd"] > 0 and record["estimate_reason"] == "deadline"
