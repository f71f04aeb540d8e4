"""`fallbacks` in both dialects: the seed's model ids and Anthropic's server-side fallback objects.

Through the official SDK's own parameter (`client.beta.messages.create(...,
betas=["server-side-fallback-2026-07-01"], fallbacks=[...])`, typed
`BetaFallbacksParam`) and over plain HTTP; the fake provider records what each
attempt's call carried.
"""

from __future__ import annotations

import httpx
import pytest

CLAUDE = "anthropic/claude-sonnet-4-5"
HAIKU = "anthropic/claude-haiku-4-5"
GPT = "openai/gpt-4o-mini"
GPT4O = "openai/gpt-4o"
BETA = "server-side-fallback-2026-07-01"


def ask(text="hello"):
    return [{"role": "user", "content": text}]


def calls_for(fake, upstream_model):
    return [request for request in fake.snapshot() if request.model == upstream_model]


def test_an_objects_max_tokens_applies_to_its_attempt_only(client, fake):
    fake.fail("claude-sonnet-4-5", status=529)
    raw = client.beta.messages.with_raw_response.create(
        model=CLAUDE, max_tokens=50, messages=ask(), betas=[BETA],
        fallbacks=[{"model": HAIKU, "max_tokens": 77}])
    assert raw.parse().model == HAIKU
    [primary] = calls_for(fake, "claude-sonnet-4-5")
    [fallback] = calls_for(fake, "claude-haiku-4-5")
    assert primary.body["max_tokens"] == 50, "the primary's call took the fallback's override"
    assert fallback.body["max_tokens"] == 77, "the fallback's call did not carry its own max_tokens"
    assert "fallbacks" not in fallback.body


def test_an_objects_thinking_and_output_config_reach_its_model_only(client, fake):
    fake.fail("claude-sonnet-4-5", status=529)
    client.beta.messages.create(
        model=CLAUDE, max_tokens=3000, messages=ask(), betas=[BETA],
        output_config={"effort": "high"},
        fallbacks=[{"model": HAIKU, "thinking": {"type": "enabled", "budget_tokens": 1024},
                    "output_config": {"effort": None}}])
    [primary] = calls_for(fake, "claude-sonnet-4-5")
    [fallback] = calls_for(fake, "claude-haiku-4-5")
    assert "thinking" not in primary.body and primary.body["output_config"] == {"effort": "high"}
    assert fallback.body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert "output_config" not in fallback.body, "a null effort should leave the fallback at its default"


def test_an_override_is_clamped_to_its_own_models_limit(client, fake):
    """gpt-4o-mini writes at most 16,384 tokens: its override is clamped as any call to it is."""
    fake.fail("claude-sonnet-4-5", status=500)
    raw = client.beta.messages.with_raw_response.create(
        model=CLAUDE, max_tokens=50, messages=ask(), betas=[BETA],
        fallbacks=[{"model": GPT, "max_tokens": 50000}])
    assert raw.parse().model == GPT
    [fallback] = calls_for(fake, "gpt-4o-mini")
    sent = fallback.body.get("max_completion_tokens", fallback.body.get("max_tokens"))
    assert sent == 16384, f"gpt-4o-mini was asked {sent} tokens"
    assert raw.headers["x-edenai-max-tokens-clamped"] == "16384; requested=50000"


def test_strings_and_objects_mix_over_plain_http(server, api_key, fake):
    fake.fail("claude-sonnet-4-5", status=529)
    fake.fail("claude-haiku-4-5", status=529)
    response = httpx.post(f"{server.url}/v3/v1/messages", headers={"x-api-key": api_key}, json={
        "model": CLAUDE, "max_tokens": 40, "messages": ask(),
        "fallbacks": [HAIKU, {"model": GPT4O, "max_tokens": 33, "speed": None}]}, timeout=20)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == GPT4O
    [fallback] = calls_for(fake, "gpt-4o")
    assert fallback.body.get("max_completion_tokens", fallback.body.get("max_tokens")) == 33
    assert [a.split(";")[0] for a in response.headers["x-edenai-attempts"].split(", ")] == [CLAUDE, HAIKU, GPT4O]


@pytest.mark.parametrize("fallbacks, named", [
    ([{"model": HAIKU, "top_k": 5}], "top_k"),
    ([{"model": HAIKU, "temperature": 0.2}], "temperature"),
])
def test_any_other_key_in_an_object_is_a_422_naming_it(server, api_key, fake, fallbacks, named):
    response = httpx.post(f"{server.url}/v3/v1/messages", headers={"x-api-key": api_key}, json={
        "model": CLAUDE, "max_tokens": 10, "messages": ask(), "fallbacks": fallbacks}, timeout=20)
    assert response.status_code == 422, response.text
    locations = [error["loc"] for error in response.json()["detail"] if error["type"] == "extra_forbidden"]
    assert any(location[-1] == named for location in locations), response.text
    assert fake.count() == 0


def test_default_is_accepted_as_the_whole_list(client, fake):
    message = client.beta.messages.create(model=CLAUDE, max_tokens=20, messages=ask(), betas=[BETA],
                                          fallbacks="default")
    assert message.model == CLAUDE


def test_a_fallbacks_own_max_tokens_counts_in_the_keys_reservation(server, stack, fake):
    """A monthly token cap reserves what the request could bill: a fallback allowed 4,000 output
    tokens could bill them, though the primary was asked for 50."""
    import anthropic

    key = stack.add_key(limits={"monthly_tokens": 2000})
    client = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0, timeout=20)
    assert client.messages.create(model=CLAUDE, max_tokens=50, messages=ask(),
                                  extra_body={"fallbacks": [HAIKU]}).content
    fake.clear()
    with pytest.raises(anthropic.RateLimitError):
        client.beta.messages.create(model=CLAUDE, max_tokens=50, messages=ask(), betas=[BETA],
                                    fallbacks=[{"model": HAIKU, "max_tokens": 4000}])
    assert fake.count() == 0, "a request that could pass the key's cap reached a provider"
