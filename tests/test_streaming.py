"""stream: true relays Anthropic's event sequence, for both provider dialects.

Under uvicorn the events arrive as the upstream produces them; a failure
before the first event is a real HTTP error; a failure after it ends the
stream with an Anthropic `error` event.
"""

from __future__ import annotations

import json
import time

import anthropic
import httpx
import pytest

CLAUDE = "anthropic/claude-sonnet-4-5"
GPT = "openai/gpt-4o-mini"
TOOL = {"name": "lookup", "description": "Look a thing up.",
        "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}}}


def ask(text="hello there"):
    return [{"role": "user", "content": text}]


def raw_events(server, api_key, **body):
    """The SSE stream as (event, data) pairs, parsed by hand rather than by the SDK."""
    payload = {"max_tokens": 200, "messages": ask(), "stream": True, **body}
    with httpx.stream("POST", f"{server.url}/v3/v1/messages", json=payload,
                      headers={"x-api-key": api_key}, timeout=20) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_a_text_stream_follows_anthropics_event_sequence(server, api_key, model):
    events = raw_events(server, api_key, model=model)
    names = [name for name, _ in events if name != "ping"]
    assert names[0] == "message_start" and names.count("message_start") == 1
    assert names[1] == "content_block_start"
    assert set(names[2:-3]) == {"content_block_delta"}
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    start = events[0][1]["message"]
    assert start["model"] == model and start["role"] == "assistant"
    text = "".join(data["delta"]["text"] for name, data in events if name == "content_block_delta")
    assert text == f"Hello from {model.split('/')[1]}: hello there"
    delta = next(data for name, data in events if name == "message_delta")
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["output_tokens"] == 5


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_the_sdk_accumulates_the_same_message_as_a_non_streamed_call(client, model):
    kwargs = dict(model=model, max_tokens=200, tools=[TOOL], messages=ask("find cats"))
    with client.messages.stream(**kwargs) as stream:
        streamed = stream.get_final_message()
    created = client.messages.create(**kwargs)
    assert streamed.model == created.model == model
    assert [b.model_dump(exclude={"id"}) for b in streamed.content] == \
        [b.model_dump(exclude={"id"}) for b in created.content]
    assert streamed.stop_reason == created.stop_reason == "tool_use"
    assert streamed.usage.output_tokens == created.usage.output_tokens


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_tool_input_streams_as_input_json_delta_fragments(server, api_key, model):
    events = raw_events(server, api_key, model=model, tools=[TOOL], messages=ask("find cats"))
    start = next(d for n, d in events if n == "content_block_start" and d["content_block"]["type"] == "tool_use")
    fragments = [d["delta"]["partial_json"] for n, d in events
                 if n == "content_block_delta" and d["index"] == start["index"]]
    assert all(d["delta"]["type"] == "input_json_delta" for n, d in events
               if n == "content_block_delta" and d["index"] == start["index"])
    assert json.loads("".join(fragments)) == {"query": "find cats"}


def test_thinking_streams_with_its_signature(server, api_key):
    events = raw_events(server, api_key, model=CLAUDE, max_tokens=2000,
                        thinking={"type": "enabled", "budget_tokens": 1024}, messages=ask("why?"))
    block_types = [d["content_block"]["type"] for n, d in events if n == "content_block_start"]
    assert block_types[0] == "thinking"
    delta_types = [d["delta"]["type"] for n, d in events if n == "content_block_delta" and d["index"] == 0]
    assert "thinking_delta" in delta_types and delta_types[-1] == "signature_delta"
    signature = next(d["delta"]["signature"] for n, d in events
                     if n == "content_block_delta" and d["delta"]["type"] == "signature_delta")
    assert signature.startswith("sig_fake_")


def test_the_sdk_keeps_the_signature_of_a_streamed_thinking_block(client):
    with client.messages.stream(model=CLAUDE, max_tokens=2000, messages=ask("why?"),
                                thinking={"type": "enabled", "budget_tokens": 1024}) as stream:
        message = stream.get_final_message()
    assert message.content[0].type == "thinking"
    assert message.content[0].signature.startswith("sig_fake_")


def test_cache_usage_is_reported_in_message_start(server, api_key):
    system = [{"type": "text", "text": "A long cached prompt.", "cache_control": {"type": "ephemeral"}}]
    events = raw_events(server, api_key, model=CLAUDE, system=system)
    usage = events[0][1]["message"]["usage"]
    assert usage["cache_creation_input_tokens"] > 0


def test_events_arrive_incrementally_under_uvicorn(server, api_key, fake):
    fake.pace_stream("claude-sonnet-4-5", seconds=0.3)
    started = time.monotonic()
    arrivals = []
    payload = {"model": CLAUDE, "max_tokens": 200, "messages": ask(), "stream": True}
    with httpx.stream("POST", f"{server.url}/v3/v1/messages", json=payload,
                      headers={"x-api-key": api_key}, timeout=20) as response:
        for line in response.iter_lines():
            if line.startswith("event:"):
                arrivals.append((line.split(": ")[1], time.monotonic() - started))
    first_delta = next(t for name, t in arrivals if name == "content_block_delta")
    assert arrivals[-1][1] - first_delta > 0.6  # later events came later: nothing was buffered


@pytest.mark.parametrize("model", [CLAUDE, GPT])
@pytest.mark.parametrize("status, error_class", [
    (500, anthropic.InternalServerError),
    (429, anthropic.RateLimitError),
])
def test_a_failure_before_the_first_event_is_a_real_http_error(client, fake, model, status, error_class):
    fake.fail(model.split("/")[1], status=status)
    with pytest.raises(error_class):
        with client.messages.stream(model=model, max_tokens=50, messages=ask()) as stream:
            stream.get_final_message()


def test_a_connection_reset_before_the_first_event_is_a_real_http_error(client, fake):
    fake.reset_connection("claude-sonnet-4-5")
    with pytest.raises(anthropic.APIStatusError) as caught:
        with client.messages.stream(model=CLAUDE, max_tokens=50, messages=ask()) as stream:
            stream.get_final_message()
    assert caught.value.status_code == 502


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_a_cut_after_content_ends_the_stream_with_an_error_event(server, api_key, fake, model):
    fake.cut_stream(model.split("/")[1], after_events=4)
    events = raw_events(server, api_key, model=model)
    assert events[0][0] == "message_start"
    assert events[-1][0] == "error"
    assert events[-1][1]["type"] == "error"
    assert events[-1][1]["error"]["type"] in ("api_error", "overloaded_error")
    assert "message_stop" not in [name for name, _ in events]
