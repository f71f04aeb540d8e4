"""A request the gateway gave up on is billed by the provider all the same, so it is metered.

When the deadline passes after a provider took the request, the caller gets a
504 but the provider goes on and bills the whole answer. The ledger settles
such a request at its bound (the most the model can bill for it), flagged as
an estimate with the reason, for keys with limits and without; caps stay
upper bounds because the bound never exceeds the reservation.
"""

from __future__ import annotations

import time
from decimal import Decimal

import httpx
import pytest

from handler.metering.pricing import cost_of, price_of
from handler.protocol.usage import Usage
from handler.providers.price_map import load
from tests.support.stack import new_stack, serve

CLAUDE = "anthropic/claude-sonnet-4-5"
GPT = "openai/gpt-4o-mini"
HAIKU = "anthropic/claude-haiku-4-5"
LIMITS = {"none": {}, "monthly cap": {"monthly_usd": 5}}


def provider_bill(fake, model: str, timeout: float = 10.0) -> Decimal:
    """What the fake provider billed for its one answer (it reports usage even to a caller that left)."""
    deadline = time.monotonic() + timeout
    while not fake.reported and time.monotonic() < deadline:
        time.sleep(0.05)
    [(_, reported)] = fake.reported
    assert reported["output_tokens"] > 0, "the provider did not produce its answer"
    return cost_of(Usage(**reported), price_of(load()[model.split("/", 1)[1]]))


def post(server, key, model, **body):
    payload = {"model": model, "max_tokens": 200, "messages": [{"role": "user", "content": "tell me more"}], **body}
    return httpx.post(f"{server.url}/v3/v1/messages", json=payload, headers={"x-api-key": key}, timeout=30)


@pytest.mark.parametrize("limits", LIMITS.values(), ids=LIMITS.keys())
def test_a_504_after_the_provider_took_the_request_charges_at_least_what_the_provider_bills(
        moto_endpoint, fake, limits):
    stack = new_stack(fake.url, request_deadline=1.5)
    key = stack.add_key(limits=limits)
    fake.delay("claude-sonnet-4-5", 2.5, times=1)  # answers (and bills) after the gateway's deadline
    with serve(stack) as server:
        response = post(server, key, CLAUDE)
        assert response.status_code == 504
        billed = provider_bill(fake, CLAUDE)
        [record] = stack.records(key, 1)
    assert record["cost_usd"] >= billed, f"the ledger charged ${record['cost_usd']}, the provider billed ${billed}"
    assert record["usage_estimated"] is True and record["estimate_reason"] == "deadline"
    assert record["status"] == "error" and record["served_model"] == CLAUDE
    month = stack.month(key, requests=1)
    assert month["cost_usd"] == record["cost_usd"]
    if limits:
        assert month["budget_usd"] == record["cost_usd"], "the reservation was not settled at the estimate"


@pytest.mark.parametrize("model", [CLAUDE, GPT])
@pytest.mark.parametrize("limits", LIMITS.values(), ids=LIMITS.keys())
def test_a_stream_that_times_out_before_its_first_content_charges_at_least_what_the_provider_bills(
        moto_endpoint, fake, model, limits):
    stack = new_stack(fake.url, request_deadline=1.5)
    key = stack.add_key(limits=limits)
    fake.pace_stream(model.split("/", 1)[1], seconds=2.0)  # its first content comes after the deadline
    with serve(stack) as server:
        response = post(server, key, model, stream=True)
        assert response.status_code == 504
        billed = provider_bill(fake, model)
        [record] = stack.records(key, 1)
    assert record["cost_usd"] >= billed, f"the ledger charged ${record['cost_usd']}, the provider billed ${billed}"
    assert record["usage_estimated"] is True and record["estimate_reason"] == "deadline"


def test_a_provider_that_refuses_the_request_is_not_charged(server, stack, api_key, fake):
    fake.fail("claude-sonnet-4-5", status=400)
    assert post(server, api_key, CLAUDE).status_code == 400
    [record] = stack.records(api_key, 1)
    assert record["cost_usd"] == 0 and "usage_estimated" not in record


def billed(fake, model: str) -> Decimal:
    """What the fake provider billed for one model's requests (what it reported, at its prices)."""
    usage = [Usage(**reported) for name, reported in fake.reported if name == model.split("/", 1)[1]]
    price = price_of(load()[model.split("/", 1)[1]])
    return sum((cost_of(one, price) for one in usage), Decimal(0))


@pytest.mark.parametrize("fallback", [True, False], ids=["fallback", "alone"])
def test_a_stream_cut_after_message_start_before_its_content_is_charged_for_that_attempt(
        server, stack, api_key, fake, fallback):
    """The provider had begun (message_start, with its input usage): it bills the attempt,
    whether a fallback then serves the stream or the caller gets an error."""
    fake.cut_stream("claude-sonnet-4-5", after_events=3)  # message_start, ping, content_block_start
    payload = {"model": CLAUDE, "max_tokens": 100, "stream": True, "messages": [{"role": "user", "content": "hi"}],
               **({"fallbacks": [HAIKU]} if fallback else {})}
    response = httpx.post(f"{server.url}/v3/v1/messages", json=payload, headers={"x-api-key": api_key}, timeout=30)
    assert response.status_code == (200 if fallback else 502)
    [record] = stack.records(api_key, 1)
    owed = billed(fake, CLAUDE) + billed(fake, HAIKU)
    assert billed(fake, CLAUDE) > 0
    assert record["cost_usd"] >= owed, f"the ledger charged ${record['cost_usd']}, the providers billed ${owed}"
    assert record["usage_estimated"] is True and record["estimate_reason"] == "stream_cut"
