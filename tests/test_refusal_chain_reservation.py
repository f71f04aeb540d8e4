"""A refusal chain reserves every attempt it can bill, so caps stay upper bounds.

With the server-side fallback beta (`server-side-fallback-2026-07-01`) a model
that declines hands over to the next `fallbacks` entry, and the declined
attempt is billed with the answering one (tests/test_fallback_refusals.py). So
the request reserves the sum of its attempts' bounds, not the largest: a key
whose cap fits one attempt but not the chain is refused up front, unbilled, as
any request over its cap is. Without the beta only one attempt is ever billed,
and the reservation stays the largest bound.
"""

from __future__ import annotations

import httpx

from handler.metering.bounds import request_bound
from handler.providers.price_map import load

CLAUDE = "anthropic/claude-sonnet-4-5"
HAIKU = "anthropic/claude-haiku-4-5"
GPT = "openai/gpt-4o-mini"
BETA = "server-side-fallback-2026-07-01"
MAX_TOKENS = 2000
# A declined answer as long as max_tokens allows: the fake reports one output token a word.
LONG_PARTIAL = " ".join(["word"] * MAX_TOKENS)
BODY = {"model": CLAUDE, "max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": "hello"}],
        "fallbacks": [HAIKU, GPT]}


def one_attempts_bound() -> int:
    prices = load()
    return max(request_bound(BODY, [(prices[name], anthropic)]).tokens for name, anthropic in
               (("claude-sonnet-4-5", True), ("claude-haiku-4-5", True), ("gpt-4o-mini", False)))


def send(server, key, beta: str | None):
    headers = {"x-api-key": key, **({"anthropic-beta": beta} if beta else {})}
    return httpx.post(f"{server.url}/v3/v1/messages", json=BODY, headers=headers, timeout=30)


def used_tokens(month) -> int:
    return sum(int(month.get(name, 0)) for name in
               ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))


def test_a_refusal_chain_never_settles_above_a_cap_that_fits_one_attempt(server, stack, fake):
    cap = one_attempts_bound() + 100
    key = stack.add_key(limits={"monthly_tokens": cap})
    fake.refuse("claude-sonnet-4-5", partial=LONG_PARTIAL)
    fake.refuse("claude-haiku-4-5", partial=LONG_PARTIAL)
    response = send(server, key, BETA)
    if response.status_code == 429:
        assert fake.count() == 0, "the chain reached a provider though its reservation was refused"
        return
    assert response.status_code == 200, response.text
    month = stack.month(key, requests=1)
    assert used_tokens(month) <= cap, \
        f"two long refusals and a fallback settled {used_tokens(month)} tokens against a cap of {cap}"


def test_a_refusal_chain_is_served_when_the_cap_fits_every_attempt(server, stack, fake):
    key = stack.add_key(limits={"monthly_tokens": 3 * one_attempts_bound() + 100})
    fake.refuse("claude-sonnet-4-5", partial=LONG_PARTIAL)
    fake.refuse("claude-haiku-4-5", partial=LONG_PARTIAL)
    response = send(server, key, BETA)
    assert response.status_code == 200, f"a chain whose three attempts fit the cap was refused: {response.text}"
    [record] = stack.records(key, 1)
    settled = sum(int(record[name]) for name in
                  ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
    month = stack.month(key, requests=1)
    assert settled > one_attempts_bound(), "the declined attempts were not long enough to test anything"
    assert month["budget_tokens"] == settled, "a reservation was left unsettled"
    assert settled <= 3 * one_attempts_bound(), f"{settled} tokens settled, more than three attempts can bill"


def test_a_refusal_chain_that_does_not_fit_the_cap_is_refused_before_any_call(server, stack, fake):
    key = stack.add_key(limits={"monthly_tokens": one_attempts_bound() + 100})
    response = send(server, key, BETA)
    assert response.status_code == 429, \
        f"a chain of three billable attempts was let through on room for one: {response.status_code}"
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert fake.count() == 0


def test_without_the_beta_a_cap_that_fits_one_attempt_serves_the_chain(server, stack, fake):
    """Only the answering attempt is billed when a failure moves on: one attempt's bound is enough."""
    key = stack.add_key(limits={"monthly_tokens": one_attempts_bound() + 100})
    fake.fail("claude-sonnet-4-5", status=529)
    response = send(server, key, None)
    assert response.status_code == 200, f"a request that fits its cap was refused: {response.text}"
    assert response.json()["model"] == HAIKU
