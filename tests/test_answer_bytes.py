"""A whole answer reaches the caller in the very bytes Starlette's JSONResponse wrote for it.

The answer is encoded by orjson where it writes what json.dumps wrote (protocol/answer_bytes.py):
whatever the provider's answer holds, the caller's bytes do not change: compact, UTF-8 unescaped,
`/` as is, floats as Python writes them, the provider's key order and unknown fields kept, and an
answer JSON cannot carry (a lone surrogate, NaN) the same 500 as before.
"""

from __future__ import annotations

import json
import math

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.responses import JSONResponse

from handler.protocol.answer_bytes import encoded

CLAUDE = "anthropic/claude-sonnet-4-5"
GPT = "openai/gpt-4o-mini"


def starlette(document) -> bytes:
    """What the gateway sent for an answer before: Starlette's JSONResponse body."""
    return JSONResponse(document).body


def outcome(encode, document):
    try:
        return encode(document)
    except Exception as exc:  # noqa: BLE001 - the failure is the outcome compared
        return type(exc)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**63, max_value=2**80) | st.floats()
    | st.text(st.characters(codec=None)),  # every code point, lone surrogates included
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=30)


@settings(max_examples=1500, deadline=None)
@given(JSON_VALUES)
def test_any_decoded_answer_is_encoded_as_jsonresponse_encoded_it(document):
    assert outcome(encoded, document) == outcome(starlette, document), \
        "the caller would have got other bytes (or another failure) for the same answer"


def test_every_character_is_written_as_jsonresponse_wrote_it():
    for start in range(0, 0x110000, 0x800):
        text = "".join(chr(c) for c in range(start, start + 0x800) if not 0xD800 <= c <= 0xDFFF)
        assert encoded({"text": text}) == starlette({"text": text}), f"characters from U+{start:04X} changed"


def test_the_values_only_json_dumps_writes_alike_are_left_to_it():
    for document in ({"a": 1e-05}, {"a": [2**64]}, {"a": (1, 2)}, {"a": 1.0}, {"a": True}):
        assert encoded(document) == starlette(document), f"{document!r} reached the caller otherwise"
    for levels in (254, 255, 300, 600, 990):  # json.loads reads about a thousand levels, orjson writes 254
        deep: list = []
        for _ in range(levels - 1):
            deep = [deep]
        assert outcome(encoded, {"input": deep}) == outcome(starlette, {"input": deep}), \
            f"an answer nested {levels} levels deep reached the caller otherwise"
    with pytest.raises(ValueError):
        encoded({"a": math.nan})  # JSONResponse refuses NaN: so does the gateway


# The provider's bytes: escapes the encoder does not write (\/, \u00e9), unknown fields, its own key
# order (usage first, model last); the second with floats in other forms and an integer past 64 bits.
PROVIDER_ANSWER = (
    '{"usage": {"input_tokens": 12, "output_tokens": 7, "cache_read_input_tokens": 0},'
    ' "id": "msg_01\\/x", "type": "message", "role": "assistant",'
    ' "content": [{"type": "text", "text": "caf\\u00e9 \u65e5\u672c \U0001f600 \u2028 \\u0001 a\\/b \\"q\\" \\\\ \\n"},'
    ' {"type": "tool_use", "id": "toolu_1", "name": "calc", "input": {"list": [-0, true, null],'
    ' "path": "C:\\\\dir\\/f"}}],'
    ' "stop_reason": "tool_use", "stop_sequence": null, "future_field": {"nested": [1, 2]},'
    ' "model": "claude-sonnet-4-5-20250929"}'
)
WITH_NUMBERS = PROVIDER_ANSWER.replace('"list": [', '"big": 123456789012345678901234567890, "ratio": 1E+20,'
                                       ' "small": 0.000012, "list": [1.50e-5, 1.0, ')


@pytest.mark.parametrize("raw", [PROVIDER_ANSWER, WITH_NUMBERS], ids=["text", "numbers"])
def test_an_anthropic_answer_reaches_the_caller_in_the_bytes_it_had(server, api_key, fake, raw):
    fake.fail("claude-sonnet-4-5", status=200, body=raw)
    answer = httpx.post(f"{server.url}/v3/v1/messages", headers={"x-api-key": api_key}, timeout=20,
                        json={"model": CLAUDE, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]})
    assert answer.status_code == 200, answer.text
    expected = {**json.loads(raw), "model": CLAUDE}  # the gateway names the model by its id
    assert answer.content == starlette(expected), "the caller's bytes for the same answer changed"
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["content-length"] == str(len(answer.content))


@pytest.mark.parametrize("arguments", [{"count": 3, "text": "\u00e9\u2014/\u65e5\n"}, {"ratio": 1e-05, "big": 2**70}],
                         ids=["text", "numbers"])
def test_a_chat_completions_answer_reaches_the_caller_as_jsonresponse_wrote_it(server, api_key, fake, arguments):
    arguments = json.dumps(arguments)
    fake.fail("gpt-4o-mini", status=200, body={
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "caf\u00e9 \U0001f600 a/b",
            "tool_calls": [{"id": "call_1", "type": "function",
                            "function": {"name": "calc", "arguments": arguments}}]}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}})
    answer = httpx.post(f"{server.url}/v3/v1/messages", headers={"x-api-key": api_key}, timeout=20,
                        json={"model": GPT, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}],
                              "tools": [{"name": "calc", "input_schema": {"type": "object"}}]})
    assert answer.status_code == 200, answer.text
    message = json.loads(answer.content)
    assert message["content"][-1]["input"] == json.loads(arguments), "the tool call's input changed"
    assert answer.content == starlette(message), "the answer was not written as JSONResponse writes it"


@pytest.mark.parametrize("value", ['"\\ud800"', "NaN"], ids=["lone-surrogate", "nan"])
def test_an_answer_json_cannot_carry_is_an_internal_error_as_before(server, api_key, fake, value):
    fake.fail("claude-sonnet-4-5", status=200, body=PROVIDER_ANSWER.replace('"msg_01\\/x"', value))
    answer = httpx.post(f"{server.url}/v3/v1/messages", headers={"x-api-key": api_key}, timeout=20,
                        json={"model": CLAUDE, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]})
    assert (answer.status_code, answer.json()["error"]["type"]) == (500, "api_error"), answer.text
