"""The circuit breaker is shared by every key: only the provider's failures may move it.

A caller who sends what the provider (or the gateway) refuses must not take
a model out of anyone else's @edenai routing, and a request the gateway
refuses itself uses no rpm and is not metered.
"""

from __future__ import annotations

import anthropic
import httpx
import pytest

CLAUDE = "anthropic/claude-sonnet-4-5"
GPT = "openai/gpt-4o-mini"
HAIKU = "anthropic/claude-haiku-4-5"
HELLO = [{"role": "user", "content": "hello"}]


def post(server, key, **body):
    payload = {"max_tokens": 10, "messages": HELLO, **body}
    return httpx.post(f"{server.url}/v3/v1/messages", json=payload, headers={"x-api-key": key}, timeout=30)


def routed_to(server, key, model, other):
    """The model another key's @edenai request is served by, with `model` the cheaper candidate."""
    response = post(server, key, model="@edenai", router_candidates=[model, other])
    assert response.status_code == 200, response.text
    return response.json()["model"]


@pytest.mark.parametrize("model", [GPT, HAIKU])
def test_a_non_ascii_extra_header_is_a_400_before_any_upstream_call_and_opens_no_breaker(server, stack, fake, model):
    attacker, victim = stack.add_key(name="attacker"), stack.add_key(name="victim")
    for _ in range(4):
        response = post(server, attacker, model=model, extra_headers={"x": "é"})
        assert response.status_code == 400, f"a caller's bad header answered {response.status_code}: {response.text}"
        assert "ASCII" in response.json()["error"]["message"]
    assert fake.count() == 0
    assert routed_to(server, victim, model, CLAUDE) == model, "another caller's bad header opened the breaker"


@pytest.mark.parametrize("message", ["prompt is too long: 250000 tokens > 200000 maximum",
                                     "messages.0: unexpected field"])
def test_a_provider_400_never_counts_against_the_models_health(server, stack, fake, message):
    attacker, victim = stack.add_key(name="attacker"), stack.add_key(name="victim")
    fake.fail("gpt-4o-mini", status=400, times=4,
              body={"error": {"message": message, "type": "invalid_request_error", "code": None}})
    for _ in range(4):
        assert post(server, attacker, model=GPT).status_code == 400
    assert routed_to(server, victim, GPT, CLAUDE) == GPT, "a caller's 400s took the model out of routing"


def test_provider_failures_still_open_the_breaker(server, stack, fake):
    key = stack.add_key()
    fake.fail("gpt-4o-mini", status=503, times=3)
    for _ in range(3):
        assert post(server, key, model=GPT).status_code == 502
    assert routed_to(server, key, GPT, CLAUDE) == CLAUDE
    assert fake.count("gpt-4o-mini") == 3, "the open circuit was tried anyway"


def test_a_request_the_gateway_refuses_uses_no_rpm_and_is_not_metered(server, stack, fake):
    key = stack.add_key(limits={"rpm": 1})
    for _ in range(3):
        refused = post(server, key, model=CLAUDE, extra_headers={"x-api-key": "sk-other"})
        assert refused.status_code == 400
    assert post(server, key, model=CLAUDE).status_code == 200, "refused requests spent the key's rpm"
    assert [r["status"] for r in stack.records(key, 1)] == ["ok"]
    assert stack.month(key, requests=1)["requests"] == 1


def test_a_whole_answer_that_outlasts_the_deadline_never_opens_the_shared_breaker(moto_endpoint, fake):
    """A non-streamed answer takes as long as the caller asked for (max_tokens): a caller who
    makes it outlast the deadline must not take the model away from every other key."""
    from tests.support.stack import new_stack, serve

    stack = new_stack(fake.url, request_deadline=1.5)
    attacker, victim = stack.add_key(name="attacker"), stack.add_key(name="victim")
    fake.delay("gpt-4o-mini", 2.0, times=4)
    with serve(stack) as server:
        for _ in range(4):
            assert post(server, attacker, model=GPT).status_code == 504
        fake.clear_faults()
        assert routed_to(server, victim, GPT, CLAUDE) == GPT, "one caller's slow answers opened the breaker"
