"""Conformance with Anthropic's Messages API, for both provider paths and every block kind.

Every non-streamed response is parsed with the official SDK's own types in
strict mode; every stream is checked event by event against Anthropic's
grammar (tests/support/sse_grammar.py) and must accumulate to the message
the same request returns without streaming.

Where the OpenAI-compatible path cannot match Anthropic, the case says so
(and README documents it): OpenAI does not say which stop sequence fired, so
stop_reason is end_turn with stop_sequence null; it has no extended thinking
(the field is dropped); its usage has no cache fields when they are zero.
"""

from __future__ import annotations

import httpx
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from tests.support import sse_grammar

CLAUDE = "anthropic/claude-sonnet-4-5"
GPT = "openai/gpt-4o-mini"
TOOL = {"name": "lookup", "description": "Look a thing up.",
        "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}}}
STREAM_EVENT = TypeAdapter(RawMessageStreamEvent)

CASES = {
    "text": {"messages": [{"role": "user", "content": "tell me a thing"}]},
    "tool_use": {"messages": [{"role": "user", "content": "find cats"}], "tools": [TOOL]},
    "thinking": {"messages": [{"role": "user", "content": "why?"}], "max_tokens": 2000,
                 "thinking": {"type": "enabled", "budget_tokens": 1024}},
    "stop_sequence": {"messages": [{"role": "user", "content": "hello there friend"}], "stop_sequences": ["there"]},
    "max_tokens": {"messages": [{"role": "user", "content": "one two three four"}], "max_tokens": 3},
    "system_blocks": {"messages": [{"role": "user", "content": "hi"}],
                      "system": [{"type": "text", "text": "cached words", "cache_control": {"type": "ephemeral"}}]},
}
EXPECTED_STOP = {"text": "end_turn", "tool_use": "tool_use", "thinking": "end_turn",
                 "stop_sequence": "stop_sequence", "max_tokens": "max_tokens", "system_blocks": "end_turn"}
OPENAI_DIFFERS = {"stop_sequence": "end_turn"}  # OpenAI does not report which stop sequence fired


def post(server, key, model, case, stream):
    body = {"model": model, "max_tokens": 200, **CASES[case], "stream": stream}
    response = httpx.post(f"{server.url}/v3/v1/messages", json=body, headers={"x-api-key": key}, timeout=20)
    assert response.status_code == 200, response.text
    return response


def comparable(message: dict) -> dict:
    """A message without what legitimately differs between two calls (ids)."""
    content = [{k: v for k, v in block.items() if k != "id"} for block in message["content"]]
    usage = {k: message["usage"].get(k) or 0 for k in ("input_tokens", "output_tokens",
                                                       "cache_creation_input_tokens", "cache_read_input_tokens")}
    return {"model": message["model"], "content": content, "stop_reason": message["stop_reason"],
            "stop_sequence": message["stop_sequence"], "usage": usage}


PATHS = [(CLAUDE, case) for case in CASES] + [(GPT, case) for case in CASES if case != "thinking"]


@pytest.mark.parametrize("model, case", PATHS)
def test_non_streamed_responses_parse_strictly_with_the_sdk_types(server, api_key, model, case):
    body = post(server, api_key, model, case, stream=False).json()
    message = Message.model_validate(body, strict=True)
    expected = OPENAI_DIFFERS.get(case, EXPECTED_STOP[case]) if model == GPT else EXPECTED_STOP[case]
    assert message.stop_reason == expected
    assert message.model == model
    if case == "thinking":
        assert message.content[0].type == "thinking" and message.content[0].signature
    if case == "stop_sequence" and model == CLAUDE:
        assert message.stop_sequence == "there"


@pytest.mark.parametrize("model, case", PATHS)
def test_streams_follow_the_grammar_and_accumulate_to_the_non_streamed_message(server, api_key, model, case):
    streamed = post(server, api_key, model, case, stream=True)
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = sse_grammar.parse(streamed.text)
    for name, data in events:
        if name != "ping":  # Anthropic's keep-alive; the SDK skips it
            STREAM_EVENT.validate_python(data, strict=True)
    accumulated = sse_grammar.check(events, stop_sequences=CASES[case].get("stop_sequences"))
    plain = post(server, api_key, model, case, stream=False).json()
    assert comparable(accumulated) == comparable(plain)


def test_a_thinking_request_to_the_openai_path_is_answered_without_thinking(server, api_key):
    body = post(server, api_key, GPT, "thinking", stream=False).json()
    assert [block["type"] for block in body["content"]] == ["text"]


def test_openai_path_usage_has_no_cache_fields_when_zero(server, api_key):
    usage = post(server, api_key, GPT, "text", stream=False).json()["usage"]
    assert usage["input_tokens"] > 0 and not usage.get("cache_creation_input_tokens")


@pytest.mark.parametrize("version", [None, "2023-06-01", "2099-01-01"])
def test_any_anthropic_version_or_none_is_accepted(server, api_key, version):
    headers = {"x-api-key": api_key, **({"anthropic-version": version} if version else {})}
    response = httpx.post(f"{server.url}/v3/v1/messages", headers=headers,
                          json={"model": CLAUDE, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200
