"""Callers authenticate with keys kept (hashed) in the keys secret.

Both the seed's `Authorization: Bearer` and the Anthropic SDK's `x-api-key`
work; revoked and unknown keys are refused with 401, a model outside the
key's allow-list with 403, all in Anthropic's envelope.
"""

from __future__ import annotations

import anthropic
import httpx
import pytest

from handler.keys.store import hash_key, new_key
from tests.support.stack import new_stack, serve

MODEL = "anthropic/claude-sonnet-4-5"
HELLO = [{"role": "user", "content": "hello"}]


def sdk(server, **auth):
    return anthropic.Anthropic(base_url=server.url + "/v3", max_retries=0, timeout=20, **auth)


def test_keys_are_egw_prefixed_and_stored_only_as_a_sha256_of_the_whole_string():
    key = new_key()
    assert key.startswith("egw_") and len(key) >= 4 + 43
    assert hash_key(key) == "sha256:" + __import__("hashlib").sha256(key.encode()).hexdigest()


def test_the_sdk_authenticates_with_api_key(server, api_key):
    message = sdk(server, api_key=api_key).messages.create(model=MODEL, max_tokens=50, messages=HELLO)
    assert message.content[0].text.startswith("Hello from claude-sonnet-4-5")


def test_the_sdk_authenticates_with_a_bearer_token(server, api_key):
    message = sdk(server, auth_token=api_key).messages.create(model=MODEL, max_tokens=50, messages=HELLO)
    assert message.role == "assistant"


@pytest.mark.parametrize(
    "headers, needle",
    [
        ({}, "Missing API key"),
        ({"x-api-key": "egw_not-a-real-key"}, "Invalid API key"),
        ({"authorization": "Bearer egw_not-a-real-key"}, "Invalid API key"),
        ({"authorization": "Basic Zm9vOmJhcg=="}, "Missing API key"),
    ],
)
def test_missing_or_unknown_keys_get_401(server, fake, headers, needle):
    response = httpx.post(f"{server.url}/v3/v1/messages", json={"model": MODEL, "messages": HELLO},
                          headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == {"type": "authentication_error", "message": response.json()["error"]["message"]}
    assert needle in response.json()["error"]["message"]
    assert response.headers["request-id"]
    assert fake.count() == 0


def test_two_different_credentials_are_refused(server, api_key, fake):
    response = httpx.post(f"{server.url}/v3/v1/messages", json={"model": MODEL, "messages": HELLO},
                          headers={"x-api-key": api_key, "authorization": "Bearer egw_someone-else"})
    assert response.status_code == 401 and "Conflicting credentials" in response.json()["error"]["message"]
    same = httpx.post(f"{server.url}/v3/v1/messages", json={"model": MODEL, "max_tokens": 5, "messages": HELLO},
                      headers={"x-api-key": api_key, "authorization": f"Bearer {api_key}"})
    assert same.status_code == 200


def test_auth_is_checked_before_the_body(server):
    response = httpx.post(f"{server.url}/v3/v1/messages", content=b"not json",
                          headers={"content-type": "application/json"})
    assert response.status_code == 401


def test_a_revoked_key_is_refused_once_the_cache_expires(moto_endpoint, fake):
    stack = new_stack(fake.url, key_cache_ttl=0.2, secret_refresh_gap=0.0)
    key = stack.add_key()
    with serve(stack) as server:
        client = sdk(server, api_key=key)
        client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
        stack.revoke(key)
        __import__("time").sleep(0.3)
        with pytest.raises(anthropic.AuthenticationError, match="revoked"):
            client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)


def test_a_key_created_after_start_works_once_the_refresh_gap_has_passed(moto_endpoint, fake):
    stack = new_stack(fake.url, secret_refresh_gap=0.2)
    first = stack.add_key()
    with serve(stack) as server:
        sdk(server, api_key=first).messages.create(model=MODEL, max_tokens=10, messages=HELLO)
        later = stack.add_key(name="later")
        __import__("time").sleep(0.25)
        assert sdk(server, api_key=later).messages.create(model=MODEL, max_tokens=10, messages=HELLO)


def test_the_allow_list_refuses_other_models_with_403(server, stack, fake):
    key = stack.add_key(models=["openai/*"])
    client = sdk(server, api_key=key)
    assert client.messages.create(model="openai/gpt-4o-mini", max_tokens=10, messages=HELLO)
    with pytest.raises(anthropic.PermissionDeniedError, match="may not use model 'anthropic/claude-sonnet-4-5'"):
        client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert fake.count() == 1


def test_a_403_for_a_bare_model_name_does_not_reveal_the_catalogue_id(server, stack):
    key = stack.add_key(models=["openai/*"])
    response = httpx.post(f"{server.url}/v3/v1/messages", headers={"x-api-key": key},
                          json={"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": HELLO})
    assert response.status_code == 403
    assert "anthropic/" not in response.text, "the refusal named a catalogue id /models hides from this key"


def test_a_403_for_a_bare_router_candidate_does_not_reveal_the_catalogue_id(server, stack):
    key = stack.add_key(models=["openai/*"])
    response = httpx.post(f"{server.url}/v3/v1/messages", headers={"x-api-key": key},
                          json={"model": "@edenai", "router_candidates": ["claude-sonnet-4-5"], "max_tokens": 10,
                                "messages": HELLO})
    assert response.status_code == 403
    assert "anthropic/" not in response.text, "the refusal named a catalogue id /models hides from this key"


def test_the_allow_list_covers_fallbacks_too(server, stack, fake):
    key = stack.add_key(models=["openai/*"])
    with pytest.raises(anthropic.PermissionDeniedError):
        sdk(server, api_key=key).messages.create(
            model="openai/gpt-4o-mini", max_tokens=10, messages=HELLO, extra_body={"fallbacks": [MODEL]})
    assert fake.count() == 0


def test_warm_requests_make_no_secrets_manager_call(server, api_key):
    client = sdk(server, api_key=api_key)
    client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    cache = server.app.state.keys
    loads = cache.loads
    for _ in range(5):
        client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert cache.loads == loads


def test_a_burst_of_unknown_keys_is_at_most_one_secrets_manager_call(server, api_key):
    sdk(server, api_key=api_key).messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    cache = server.app.state.keys
    loads = cache.loads
    with httpx.Client() as http:
        statuses = {http.post(f"{server.url}/v3/v1/messages", headers={"x-api-key": new_key()},
                              json={"model": MODEL, "messages": HELLO}).status_code for _ in range(50)}
    assert statuses == {401}
    assert cache.loads - loads <= 1


@pytest.mark.parametrize("models", ["anthropic/*", [1], {"anthropic/*": True}])
def test_a_keys_secret_entry_whose_models_are_not_a_list_of_globs_allows_nothing(server, stack, fake, models):
    key = stack.add_key(models=models)
    good = stack.add_key(models=["openai/*"])
    response = httpx.post(f"{server.url}/v3/v1/messages", headers={"x-api-key": key},
                          json={"model": "openai/gpt-4o", "max_tokens": 5, "messages": HELLO})
    assert response.status_code == 401, f"a malformed allow-list {models!r} let the key in: {response.text}"
    assert fake.count() == 0
    assert sdk(server, api_key=good).messages.create(model="openai/gpt-4o-mini", max_tokens=5, messages=HELLO)


def test_a_revoked_key_stops_within_the_maximum_staleness_even_while_secrets_manager_fails(moto_endpoint, fake):
    """The refresh gap (6 s) outlasts the staleness bound (3 s): the bound still wins."""
    import boto3
    import time

    stack = new_stack(fake.url, key_cache_ttl=0.2, secret_refresh_gap=6.0, key_max_staleness=3.0)
    key = stack.add_key()
    with serve(stack) as server:
        client = sdk(server, api_key=key)
        client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
        loaded = time.monotonic()  # the keys were read before this
        stack.revoke(key)  # the operator revokes, then Secrets Manager fails before the gateway reads it
        boto3.client("secretsmanager").delete_secret(SecretId=stack.settings.keys_secret_id,
                                                     ForceDeleteWithoutRecovery=True)
        time.sleep(0.3)
        client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)  # stale, within the bound
        time.sleep(max(0.0, 3.1 - (time.monotonic() - loaded)))
        with pytest.raises(anthropic.APIStatusError) as refused:
            client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
        assert refused.value.status_code == 503, "a revoked key kept working past GATEWAY_KEY_MAX_STALENESS"
