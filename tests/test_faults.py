"""Faults, each a test, and after each one the next normal request succeeds.

Upstream: malformed SSE, a 200 that carries an error body. Secrets Manager:
unavailable at cold start (a clear 503, then recovery without a restart) and
during a warm period (cached keys keep serving until the maximum staleness).
Stream resets, hangs past the deadline, malformed JSON and DynamoDB outages
are in test_streaming, test_fallbacks, test_upstream_errors and
test_ledger_faults.
"""

from __future__ import annotations

import json
import time

import anthropic
import boto3
import httpx
import pytest

from tests.support.stack import new_stack, serve

CLAUDE = "anthropic/claude-sonnet-4-5"
GPT = "openai/gpt-4o-mini"
HELLO = [{"role": "user", "content": "hello there"}]


def ok(client, model=CLAUDE):
    return client.messages.create(model=model, max_tokens=20, messages=HELLO)


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_a_malformed_sse_stream_ends_with_an_error_event_then_service_resumes(server, api_key, client, fake, model):
    fake.malformed(model.split("/")[1], kind="sse")
    payload = {"model": model, "max_tokens": 50, "messages": HELLO, "stream": True}
    response = httpx.post(f"{server.url}/v3/v1/messages", json=payload, headers={"x-api-key": api_key})
    assert response.status_code in (200, 502)
    if response.status_code == 200:
        assert "event: error" in response.text and "event: message_stop" not in response.text
    assert ok(client, model).content


@pytest.mark.parametrize("error_type, status", [("overloaded_error", 529), ("api_error", 502)])
def test_a_200_carrying_an_error_body_is_an_error_not_a_message(client, fake, error_type, status):
    fake.fail("claude-sonnet-4-5", status=200, body={"type": "error", "error": {"type": error_type, "message": "no"}})
    with pytest.raises(anthropic.APIStatusError) as caught:
        ok(client)
    assert caught.value.status_code == status
    assert ok(client).content


def test_a_200_carrying_an_error_body_falls_back(client, fake):
    fake.fail("claude-sonnet-4-5", status=200, body={"type": "error", "error": {"type": "api_error", "message": "x"}})
    message = client.messages.create(model=CLAUDE, max_tokens=20, messages=HELLO,
                                     extra_body={"fallbacks": ["anthropic/claude-haiku-4-5"]})
    assert message.model == "anthropic/claude-haiku-4-5"


def test_secrets_manager_unavailable_at_cold_start_is_a_clear_503_and_recovers(moto_endpoint, fake):
    stack = new_stack(fake.url, secret_refresh_gap=0.2)
    boto3.client("secretsmanager").delete_secret(SecretId=stack.settings.keys_secret_id, ForceDeleteWithoutRecovery=True)
    with serve(stack) as server:
        url = f"{server.url}/v3/v1/messages"
        payload = {"model": CLAUDE, "max_tokens": 10, "messages": HELLO}
        first = httpx.post(url, json=payload, headers={"x-api-key": "egw_anything"})
        assert first.status_code == 503
        assert first.json()["error"] == {"type": "api_error", "message": "The keys store is unavailable; try again shortly."}
        key = stack.add_key()  # the store comes back
        time.sleep(0.3)
        assert httpx.post(url, json=payload, headers={"x-api-key": key}).status_code == 200


def test_cached_keys_keep_serving_through_an_outage_until_the_maximum_staleness(moto_endpoint, fake):
    stack = new_stack(fake.url, key_cache_ttl=0.1, secret_refresh_gap=0.1, key_max_staleness=1.5)
    key = stack.add_key()
    with serve(stack) as server:
        client = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0)
        ok(client)
        loaded = time.monotonic()
        boto3.client("secretsmanager").delete_secret(SecretId=stack.settings.keys_secret_id,
                                                     ForceDeleteWithoutRecovery=True)
        time.sleep(0.3)
        assert ok(client).content  # stale but within the limit
        time.sleep(max(0.0, 1.7 - (time.monotonic() - loaded)))
        with pytest.raises(anthropic.APIStatusError) as caught:
            ok(client)
        assert caught.value.status_code == 503


def test_providers_secret_missing_is_a_503_not_a_crash(moto_endpoint, fake):
    stack = new_stack(fake.url)
    key = stack.add_key()
    boto3.client("secretsmanager").delete_secret(SecretId=stack.settings.providers_secret_id,
                                                 ForceDeleteWithoutRecovery=True)
    with serve(stack) as server:
        response = httpx.post(f"{server.url}/v3/v1/messages", headers={"x-api-key": key},
                              json={"model": CLAUDE, "max_tokens": 10, "messages": HELLO})
    assert response.status_code == 503
    assert json.loads(response.text)["type"] == "error"
