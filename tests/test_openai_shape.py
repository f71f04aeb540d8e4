"""Answers from OpenAI-compatible providers look like Anthropic's to the client.

litellm's translation keeps the provider's ids and leaves out parts of
Anthropic's stream; Claude Code and the SDKs rely on them: `msg_` message ids,
`toolu_` tool ids that still work when sent back in a tool_result, a `ping`
after `message_start`, `stop_sequence` present in `message_delta.delta`, and
error events that say what failed.
"""

from __future__ import annotations


import httpx
import pytest

from handler.translation.openai_shape import anthropic_tool_id, provider_tool_id
from tests.support.sse_grammar import check, parse

GPT = "openai/gpt-4o-mini"
CLAUDE = "anthropic/claude-sonnet-4-5"
WEATHER = {"name": "get_weather", "description": "Current weather for a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def ask(text="hello"):
    return [{"role": "user", "content": text}]


def stream_events(server, api_key, **body):
    response = httpx.post(f"{server.url}/v3/v1/messages", headers={"x-api-key": api_key}, timeout=60,
                          json={"model": GPT, "max_tokens": 100, "stream": True, "messages": ask(), **body})
    assert response.status_code == 200, response.text
    return parse(response.text)


@pytest.mark.parametrize("provider_id", ["call_abc123", "call_fake_1", "x/y+z=="])
def test_a_tool_id_carries_the_providers_own_id_and_gives_it_back(provider_id):
    ours = anthropic_tool_id(provider_id)
    assert ours.startswith("toolu_") and provider_tool_id(ours) == provider_id
    assert all(c.isalnum() or c in "_-" for c in ours), "Anthropic's tool ids are [A-Za-z0-9_-]"


def test_anthropic_tool_ids_are_left_alone():
    assert anthropic_tool_id("toolu_01A09q90qw90lq917835lq9") == "toolu_01A09q90qw90lq917835lq9"
    assert provider_tool_id("toolu_01A09q90qw90lq917835lq9") == "toolu_01A09q90qw90lq917835lq9"


def test_a_message_has_anthropic_ids_and_a_tool_round_trip_reaches_openai_with_its_own_id(client, fake):
    first = client.messages.create(model=GPT, max_tokens=200, tools=[WEATHER], messages=ask("weather in Paris"))
    assert first.id.startswith("msg_"), f"a client saw message id {first.id}"
    call = next(block for block in first.content if block.type == "tool_use")
    assert call.id.startswith("toolu_"), f"a client saw tool id {call.id}"
    provider_id = provider_tool_id(call.id)
    assert provider_id.startswith("call_")
    second = client.messages.create(
        model=GPT, max_tokens=200, tools=[WEATHER],
        messages=[*ask("weather in Paris"),
                  {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]}])
    assert second.content[0].text == "Tool said: sunny"
    sent = fake.last().body["messages"]
    assistant = next(m for m in sent if m["role"] == "assistant")
    tool = next(m for m in sent if m["role"] == "tool")
    assert assistant["tool_calls"][0]["id"] == provider_id and tool["tool_call_id"] == provider_id, \
        "OpenAI would reject a tool result whose id it never issued"


def test_a_stream_pings_after_message_start_and_states_stop_sequence(server, api_key):
    events = stream_events(server, api_key, tools=[WEATHER])
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "ping"] and names.count("ping") == 1, names
    assert events[0][1]["message"]["id"].startswith("msg_")
    delta = next(data for name, data in events if name == "message_delta")["delta"]
    assert "stop_sequence" in delta and delta["stop_sequence"] is None
    message = check(events)
    tool = next(block for block in message["content"] if block["type"] == "tool_use")
    assert tool["id"].startswith("toolu_")


@pytest.mark.parametrize("model", [GPT, CLAUDE])
def test_a_mid_stream_failure_says_what_failed(server, api_key, fake, model):
    fake.cut_stream(model.split("/")[1], after_events=4)
    events = stream_events(server, api_key, model=model, messages=ask("one two three four five six seven"))
    name, data = events[-1]
    assert name == "error"
    message = data["error"]["message"]
    assert not message.rstrip().endswith(":") and len(message.rsplit(": ", 1)[-1]) > 3, \
        f"a client was told only {message!r}"
