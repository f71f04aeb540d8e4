"""Providers (or proxies in front of them) that gzip their answers.

httpx asks for gzip by default, so a provider may compress answers, streams
and error bodies alike; the gateway must read each decoded, in both dialects.
"""

from __future__ import annotations

import anthropic
import httpx
import pytest

from tests.support.stack import ANTHROPIC_TEST_KEY

CLAUDE = "anthropic/claude-sonnet-4-5"
HAIKU = "anthropic/claude-haiku-4-5"
GPT = "openai/gpt-4o-mini"
HELLO = [{"role": "user", "content": "hello there"}]


def test_the_fake_really_compresses(fake):
    fake.gzip = True
    response = httpx.post(f"{fake.url}/v1/messages", json={"model": "claude-x", "max_tokens": 5, "messages": HELLO},
                          headers={"x-api-key": ANTHROPIC_TEST_KEY, "anthropic-version": "2023-06-01"})
    assert response.headers["content-encoding"] == "gzip" and response.json()["type"] == "message"


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_compressed_answers_and_streams_are_relayed_and_metered(client, stack, api_key, fake, model):
    fake.gzip = True
    created = client.messages.create(model=model, max_tokens=50, messages=HELLO)
    with client.messages.stream(model=model, max_tokens=50, messages=HELLO) as stream:
        streamed = stream.get_final_message()
    assert streamed.content[0].text == created.content[0].text == f"Hello from {model.split('/')[1]}: hello there"
    records = stack.records(api_key, 2)
    assert sorted(r["status"] for r in records) == ["ok", "ok"], "a compressed stream failed mid-way"
    assert {int(r["output_tokens"]) for r in records} == {created.usage.output_tokens}


TOO_LONG = {"type": "error", "error": {"type": "invalid_request_error",
                                       "message": "prompt is too long: 210000 tokens > 200000 maximum"}}


@pytest.mark.parametrize("stream", [False, True])
def test_a_compressed_prompt_too_long_error_still_falls_back(client, fake, stream):
    fake.gzip = True
    fake.fail("claude-sonnet-4-5", status=400, body=TOO_LONG)
    kwargs = dict(model=CLAUDE, max_tokens=20, messages=HELLO, extra_body={"fallbacks": [HAIKU]})
    if stream:
        with client.messages.stream(**kwargs) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**kwargs)
    assert message.model == HAIKU, "the compressed error was not recognised as 'prompt is too long'"
