"""Every error the gateway sends says whether a retry can help: `x-should-retry`.

Claude Code's own gateway sets it, and the client obeys it before its status
rules: without it a wrong key was retried 11-12 times over about three
minutes. A refusal a retry cannot fix (a key, a model, a request, a monthly
cap) says false; overload, rate limits and provider faults say true. Checked
over HTTP with the official SDK (which reads the header too) and httpx.
"""

from __future__ import annotations

from decimal import Decimal

import anthropic
import httpx
import pytest

from handler.metering.items import LedgerEntry
from handler.protocol.usage import Usage
from tests.support.stack import new_stack, serve

CLAUDE = "anthropic/claude-sonnet-4-5"
GPT = "openai/gpt-4o-mini"
HELLO = [{"role": "user", "content": "hello"}]


def post(server, key: str | None, body=None, **options) -> httpx.Response:
    headers = {"x-api-key": key} if key else {}
    payload = {"model": CLAUDE, "max_tokens": 10, "messages": HELLO} if body is None else body
    return httpx.post(f"{server.url}/v3/v1/messages", json=payload, headers=headers, timeout=30, **options)


def advice(response: httpx.Response) -> str | None:
    return response.headers.get("x-should-retry")


def test_a_wrong_key_says_a_retry_cannot_help(server):
    sdk = anthropic.Anthropic(api_key="egw_wrong-key-000000000000", base_url=server.url + "/v3", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        sdk.messages.create(model=CLAUDE, max_tokens=10, messages=HELLO)
    assert caught.value.response.headers.get("x-should-retry") == "false", \
        "a 401 without x-should-retry: false keeps Claude Code retrying for three minutes"


def test_a_model_the_key_may_not_use_says_false(server, stack):
    key = stack.add_key(models=["openai/*"])
    response = post(server, key)
    assert response.status_code == 403 and advice(response) == "false", response.headers


def test_an_unknown_model_says_false(server, api_key):
    response = post(server, api_key, {"model": "no-such-model", "max_tokens": 10, "messages": HELLO})
    assert response.status_code == 404 and advice(response) == "false", response.headers


def test_an_unknown_route_says_false(server, api_key):
    response = httpx.get(f"{server.url}/v3/v1/nowhere", headers={"x-api-key": api_key})
    assert response.status_code == 404 and advice(response) == "false", response.headers


@pytest.mark.parametrize("body, status", [
    ({"model": CLAUDE, "messages": HELLO, "max_tokens": "ten"}, 422),  # the spec's schema
    ({"model": CLAUDE, "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "nope"}]}]}, 400),
])
def test_an_invalid_request_says_false(server, api_key, body, status):
    response = post(server, api_key, body)
    assert response.status_code == status and advice(response) == "false", (response.status_code, response.headers)


def test_malformed_json_says_false(server, api_key):
    response = httpx.post(f"{server.url}/v3/v1/messages", content=b"{not json",
                          headers={"x-api-key": api_key, "content-type": "application/json"})
    assert response.status_code == 400 and advice(response) == "false", response.headers


def test_a_body_over_the_size_limit_says_false(moto_endpoint, fake):
    stack = new_stack(fake.url, max_body_bytes=2_000)
    key = stack.add_key()
    with serve(stack) as server:
        response = post(server, key, {"model": CLAUDE, "max_tokens": 10,
                                      "messages": [{"role": "user", "content": "x" * 5_000}]})
    assert response.status_code == 413 and advice(response) == "false", response.headers


@pytest.mark.parametrize("model", [CLAUDE, GPT])
@pytest.mark.parametrize("upstream_status, status", [(429, 429), (529, 529), (500, 502), (503, 502)])
def test_overload_rate_limits_and_provider_faults_say_true(client, fake, model, upstream_status, status):
    fake.fail(model.split("/")[1], status=upstream_status)
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(model=model, max_tokens=10, messages=HELLO)
    assert caught.value.status_code == status
    assert caught.value.response.headers.get("x-should-retry") == "true", caught.value.response.headers


def test_a_provider_timeout_says_true(moto_endpoint, fake):
    stack = new_stack(fake.url, request_deadline=0.5)
    key = stack.add_key()
    fake.delay("claude-sonnet-4-5", 2, times=1)
    with serve(stack) as server:
        response = post(server, key)
    assert response.status_code == 504 and advice(response) == "true", response.headers


def test_a_fault_inside_the_gateway_says_true(server, api_key, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(server.app.state.gateway, "create_message", broken)
    response = post(server, api_key)
    assert response.status_code == 500 and advice(response) == "true", response.headers
    assert response.headers["request-id"].startswith("req_")


def test_the_rate_limit_of_a_key_says_true(server, stack):
    key = stack.add_key(limits={"rpm": 1})
    assert post(server, key).status_code == 200
    refused = post(server, key)
    assert refused.status_code == 429 and advice(refused) == "true", refused.headers


def test_a_monthly_cap_reached_says_a_retry_cannot_help_before_the_month_ends(server, stack):
    key = stack.add_key(limits={"monthly_usd": 0.002})
    assert post(server, key).status_code == 200
    [record] = stack.records(key, 1)
    stack.ledger().write(LedgerEntry(key_id=stack.key_id(key), request_id="req_earlier", at=record["at"],
                                     requested_model=CLAUDE, served_model=CLAUDE, attempts=[],
                                     usage=Usage(100, 100), cost_usd=Decimal("0.0019"), priced=True,
                                     stream=False, status="ok"))
    refused = post(server, key)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 60
    assert advice(refused) == "false", "a refusal pointing at the month's end told the client to retry"
