"""Hostile bodies: each answered with a clear 4xx, and none reaches the upstream.

(Malformed JSON, NaN/Infinity, duplicate keys, invalid UTF-8 and the size
cap are in test_request_validation.py; connection fields and header
injection through extra_headers in test_messages.py.)
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest

CLAUDE = "anthropic/claude-sonnet-4-5"


@pytest.fixture
def send(server, api_key, fake):
    def _send(body=None, *, content=None):
        headers = {"x-api-key": api_key, "content-type": "application/json"}
        raw = content if content is not None else json.dumps(body).encode()
        response = httpx.post(f"{server.url}/v3/v1/messages", content=raw, headers=headers, timeout=30)
        assert fake.count() == 0, "a hostile body reached the upstream"
        assert 400 <= response.status_code < 500, response.text
        return response
    return _send


def body(**fields):
    return {"model": CLAUDE, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], **fields}


def test_json_nested_10000_deep(send):
    deep = '{"a":' * 10_000 + "1" + "}" * 10_000
    raw = f'{{"model": "{CLAUDE}", "messages": [{{"role": "user", "content": "hi", "x": {deep}}}]}}'
    response = send(content=raw.encode())
    assert response.status_code == 400 and "nested too deeply" in response.json()["error"]["message"]


def test_a_20_mb_body(send):
    response = send(body(messages=[{"role": "user", "content": "x" * (20 * 1024 * 1024)}]))
    assert response.status_code == 413


@pytest.mark.parametrize("number", [str(2**64), str(-(2**70)), "9" * 5000])
def test_numbers_beyond_64_bits(send, number):
    raw = f'{{"model": "{CLAUDE}", "max_tokens": {number}, "messages": [{{"role": "user", "content": "hi"}}]}}'
    response = send(content=raw.encode())
    assert response.status_code == 400 and "Malformed JSON" in response.json()["error"]["message"]


@pytest.mark.parametrize("fields", [
    {"messages": "hi"},
    {"messages": ["hi"]},
    {"messages": [{"role": "user", "content": ["hi"]}]},
    {"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": 5}]}]},
    {"system": ["be brief"]},
    {"tools": "lookup"},
    {"tools": ["lookup"]},
    {"stop_sequences": "STOP"},
    {"fallbacks": "openai/gpt-4o"},
    {"router_candidates": "openai/gpt-4o"},
    {"metadata": "user-1"},
    {"thinking": "enabled"},
    {"tool_choice": "auto"},
    {"extra_headers": "x-a: b"},
])
def test_a_string_where_a_list_or_object_is_expected_at_every_level(send, fields):
    response = send(body(**fields))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"


@pytest.mark.parametrize("block", [5, "hi", None, [1], {"text": "no type"}, {"type": 5}, {"type": None}])
def test_a_content_block_that_is_not_an_object_with_a_string_type(send, block):
    """The gateway reads blocks to meter and translate them: one it cannot read is a 400, never a 500."""
    response = send(body(messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]},
                                   {"role": "assistant", "content": "ok"},
                                   {"role": "user", "content": [
                                       {"type": "tool_result", "tool_use_id": "t", "content": [block]}]}]))
    assert response.status_code == 400, response.text
    assert "messages.2.content.0.content.0" in response.json()["error"]["message"]


@pytest.mark.parametrize("model", [CLAUDE, "openai/gpt-4o-mini"])
@pytest.mark.parametrize("choice", [{}, {"type": "sometimes"}, {"type": "tool"}, {",": [496]}])
def test_a_tool_choice_that_is_no_choice(send, model, choice):
    """Found by the schema-valid generated run: litellm's OpenAI translation raised KeyError, a 502."""
    response = send(body(model=model, tool_choice=choice))
    assert response.status_code == 400
    assert "tool_choice" in response.json()["error"]["message"]


@pytest.mark.parametrize("source, needle", [
    ({"type": "base64", "media_type": "image/png", "data": "not base64 at all!"}, "not valid base64"),
    ({"type": "base64", "media_type": "image/png", "data": ""}, "not valid base64"),
    ({"type": "base64", "media_type": "image/png", "data": "QU=D"}, "not valid base64"),
    ({"type": "base64", "media_type": "image/png", "data": "QUJ"}, "not valid base64"),
    ({"type": "base64", "media_type": "text/html", "data": base64.b64encode(b"<p>").decode()}, "media_type"),
    (None, "needs a source"),
])
def test_images_with_invalid_base64_or_media_type(send, source, needle):
    image = {"type": "image", "source": source}
    response = send(body(messages=[{"role": "user", "content": [image, {"type": "text", "text": "what?"}]}]))
    assert response.status_code == 400 and needle in response.json()["error"]["message"]


def test_a_valid_image_is_accepted(server, api_key, fake):
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}}
    response = httpx.post(f"{server.url}/v3/v1/messages", headers={"x-api-key": api_key},
                          json=body(messages=[{"role": "user", "content": [image, {"type": "text", "text": "hi"}]}]))
    assert response.status_code == 200 and fake.count() == 1


def test_a_model_naming_an_unconfigured_provider(send):
    response = send(body(model="mistral/mistral-large"))
    assert response.status_code == 404 and "not configured" in response.json()["error"]["message"]
