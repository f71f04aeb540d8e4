"""Hard limits: rpm, monthly tokens and monthly spend, enforced before the upstream call.

A request that would exceed a limit gets 429 rate_limit_error with
retry-after and never reaches the upstream; the caps hold under real
parallel HTTP requests because the check and the count are one conditional
DynamoDB update.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from decimal import Decimal

import time

import anthropic
import httpx
import pytest
from moto.dynamodb.models import DynamoDBBackend

from handler.metering.bounds import request_bound
from handler.metering.items import IN_FLIGHT_RETRY_S, Estimate, LedgerEntry, Limits, refusal_reason
from handler.protocol.usage import Usage

CLAUDE = "anthropic/claude-sonnet-4-5"
HELLO = [{"role": "user", "content": "hello"}]


def post(server, key, **body):
    payload = {"model": CLAUDE, "max_tokens": 10, "messages": HELLO, **body}
    return httpx.post(f"{server.url}/v3/v1/messages", json=payload, headers={"x-api-key": key}, timeout=30)


def parallel(server, key, count, **body) -> list[httpx.Response]:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: post(server, key, **body), range(count)))


def test_20_parallel_requests_with_5_left_in_the_rpm_window_let_exactly_5_through(server, stack, fake):
    key = stack.add_key(limits={"rpm": 5})
    responses = parallel(server, key, 20)
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 5 and statuses.count(429) == 15
    assert fake.count() == 5
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers.get("anthropic-ratelimit-requests-limit") == "5", "a 429 without Anthropic's headers"
    assert refused.headers["anthropic-ratelimit-requests-remaining"] == "0"


def test_responses_to_rpm_keys_carry_anthropic_rate_limit_headers(server, stack):
    key = stack.add_key(limits={"rpm": 3})
    first, second = post(server, key), post(server, key)
    assert first.headers["anthropic-ratelimit-requests-limit"] == "3"
    assert [first.headers["anthropic-ratelimit-requests-remaining"],
            second.headers["anthropic-ratelimit-requests-remaining"]] == ["2", "1"]
    reset = datetime.fromisoformat(first.headers["anthropic-ratelimit-requests-reset"].replace("Z", "+00:00"))
    assert reset.second == 0 and reset > datetime.now(timezone.utc)


def test_keys_without_limits_get_no_rate_limit_headers(server, api_key):
    assert "anthropic-ratelimit-requests-limit" not in post(server, api_key).headers


def test_the_sdk_sees_a_rate_limit_error(server, stack):
    key = stack.add_key(limits={"rpm": 1})
    client = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0)
    client.messages.create(model=CLAUDE, max_tokens=10, messages=HELLO)
    with pytest.raises(anthropic.RateLimitError, match="requests per minute"):
        client.messages.create(model=CLAUDE, max_tokens=10, messages=HELLO)


def test_a_monthly_token_cap_counts_requests_in_flight(server, stack, fake):
    # Each request reserves ~1 input token estimate + max_tokens=100: a 1,000 token cap admits
    # at most 9 at once however many arrive together, then settles to the real (small) usage.
    key = stack.add_key(limits={"monthly_tokens": 1000})
    fake.delay("claude-sonnet-4-5", 0.3, times=20)
    responses = parallel(server, key, 20, max_tokens=100)
    admitted = [r for r in responses if r.status_code == 200]
    assert 1 <= len(admitted) <= 9 and fake.count() == len(admitted)
    refused = next(r for r in responses if r.status_code == 429)
    assert "monthly token limit" in refused.json()["error"]["message"]
    stack.records(key, len(admitted))
    month = stack.month(key, requests=len(admitted))
    used = sum(month[n] for n in ("input_tokens", "output_tokens"))
    assert month["budget_tokens"] == used  # every reservation settled to the real figure
    assert post(server, key, max_tokens=100).status_code == 200  # room again after settlement


def test_a_monthly_spend_cap_refuses_before_the_upstream_call(server, stack, fake):
    key = stack.add_key(limits={"monthly_usd": 0.002})
    assert post(server, key).status_code == 200
    [record] = stack.records(key, 1)
    spent = LedgerEntry(key_id=stack.key_id(key), request_id="req_earlier", at=record["at"],
                        requested_model=CLAUDE, served_model=CLAUDE, attempts=[], usage=Usage(100, 100),
                        cost_usd=Decimal("0.0019"), priced=True, stream=False, status="ok")
    stack.ledger().write(spent)
    refused = post(server, key)  # ~$0.0002 reserved would pass $0.002
    assert refused.status_code == 429
    assert "monthly spend limit" in refused.json()["error"]["message"]
    assert int(refused.headers["retry-after"]) > 60
    assert fake.count() == 1


def test_a_request_bigger_than_the_whole_cap_is_refused(server, stack, fake):
    key = stack.add_key(limits={"monthly_tokens": 50})
    response = post(server, key, max_tokens=100)
    assert response.status_code == 429 and fake.count() == 0


def test_the_reservation_is_an_upper_bound_at_the_dearest_candidate():
    body = {"messages": [{"role": "user", "content": "x" * 300}], "max_tokens": 100}
    cheap = {"input_cost_per_token": 1e-7, "output_cost_per_token": 1e-7}
    dear = {"input_cost_per_token": 3e-6, "output_cost_per_token": 1.5e-5}
    bound = request_bound(body, [(cheap, True), (dear, True), ({}, False)])
    assert bound.tokens >= 100 + 300  # a token is at least one UTF-8 byte
    assert bound.usd >= Decimal(300) * Decimal("3e-6") + Decimal(100) * Decimal("1.5e-5")


def test_refusal_reasons_name_the_limit_and_when_to_retry():
    at = datetime(2026, 11, 30, 23, 59, 30, tzinfo=timezone.utc)
    limits = Limits.of({"rpm": 2, "monthly_tokens": 1000})
    small = Estimate(10, Decimal(0))
    rpm = refusal_reason({"rpm_window": "2026-11-30T23:59", "rpm_count": 2}, at, limits, small)
    assert (rpm.limit, rpm.retry_after) == ("rpm", 30)
    monthly = refusal_reason({"budget_tokens": 995, "input_tokens": 995}, at, limits, small)
    assert (monthly.limit, monthly.retry_after) == ("monthly_tokens", 30)
    held = refusal_reason({"budget_tokens": 995, "input_tokens": 100}, at, limits, small)
    assert (held.limit, held.retry_after) == ("monthly_tokens", IN_FLIGHT_RETRY_S)
    assert refusal_reason({"rpm_window": "2026-11-30T23:58", "rpm_count": 9}, at, limits, small) is None


def test_sequential_requests_near_a_cap_never_see_a_month_long_429_turn_into_a_200(server, stack, fake,
                                                                                   monkeypatch):
    """One caller, one request at a time, and a table that takes a moment to write: the previous
    request is settled before its response ends, so a refusal means the month's settled spend
    leaves no room, and it stays."""
    original = DynamoDBBackend.transact_write_items
    monkeypatch.setattr(DynamoDBBackend, "transact_write_items",
                        lambda backend, *a, **k: (time.sleep(0.2), original(backend, *a, **k))[1])
    key = stack.add_key(limits={"monthly_usd": 0.002})
    statuses, refused = [], None
    for _ in range(40):
        response = post(server, key)
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) > 3600, \
                f"a lone caller was refused for requests in flight: {response.json()['error']['message']}"
            refused = refused or response
            if statuses[-3:] == [429] * 3:
                break
        else:
            assert response.status_code == 200 and refused is None, \
                f"a 429 that said to wait for the month's end turned into a 200: {statuses}"
    assert refused is not None, f"the cap never refused: {statuses}"
    message = refused.json()["error"]["message"]
    assert "monthly spend limit ($0.002) would be exceeded" in message and "next month" in message, message


def test_a_refusal_because_requests_in_flight_hold_the_room_says_so_and_to_retry_soon(server, stack, fake):
    key = stack.add_key(limits={"monthly_usd": 0.002})
    fake.delay("claude-sonnet-4-5", 1.0, times=8)
    responses = parallel(server, key, 8)
    refused = [r for r in responses if r.status_code == 429]
    assert refused and len(refused) < 8
    for response in refused:
        assert "in flight" in response.json()["error"]["message"]
        assert int(response.headers["retry-after"]) <= IN_FLIGHT_RETRY_S, "told to wait for the month's end"
    assert post(server, key).status_code == 200, "the room the requests in flight held never came back"
