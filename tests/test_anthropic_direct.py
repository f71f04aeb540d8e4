"""Anthropic-type providers are called directly, not through litellm.

The request that reaches the provider is what Anthropic's API expects (its
URL, version header, the gateway's key, the model's own name) and nothing
that only steers the call; litellm is not involved at all, so none of its
per-call logging runs; failures map as they did through litellm (test_upstream_errors runs
every one of them on this path).
"""

from __future__ import annotations

import anthropic
import litellm
import pytest

from handler.providers.anthropic_api import messages_url, request_parts
from tests.support.stack import ANTHROPIC_TEST_KEY

CLAUDE = "anthropic/claude-sonnet-4-5"


def ask(text="hello"):
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("api_base, url", [
    ("https://api.anthropic.com", "https://api.anthropic.com/v1/messages"),
    ("https://api.anthropic.com/", "https://api.anthropic.com/v1/messages"),
    ("http://127.0.0.1:9000/proxy", "http://127.0.0.1:9000/proxy/v1/messages"),
    ("http://127.0.0.1:9000/v1/messages", "http://127.0.0.1:9000/v1/messages"),
])
def test_the_messages_url_is_the_base_plus_v1_messages_once(api_base, url):
    assert messages_url(api_base) == url


def test_the_body_is_the_calls_body_and_the_connection_goes_in_headers():
    call = {"model": "anthropic/claude-x", "stream": True, "timeout": 9.5, "max_retries": 0,
            "api_key": "sk-provider", "api_base": "http://up",
            "extra_headers": {"anthropic-beta": "b1", "x-trace": "t"},
            "body": {"model": "claude-x", "messages": ask(), "max_tokens": 10, "stream": True,
                     "metadata": {"user_id": "u"}, "timeout": 3, "api_base_hint": "x"}}
    url, headers, body = request_parts(call)
    assert url == "http://up/v1/messages"
    assert body == call["body"], "a caller's field named like a connection setting stays a body field"
    assert headers["x-api-key"] == "sk-provider" and headers["anthropic-version"] == "2023-06-01"
    assert headers["anthropic-beta"] == "b1" and headers["x-trace"] == "t"
    assert headers["accept"] == "text/event-stream"


@pytest.fixture
def no_litellm_messages(monkeypatch):
    """Any call that still went through litellm's Anthropic interface fails the test."""
    calls = []

    async def refuse(**kwargs):
        calls.append(kwargs)
        raise AssertionError("litellm was called for an anthropic-type provider")

    monkeypatch.setattr(litellm.anthropic.messages, "acreate", refuse)
    return calls


def test_a_message_reaches_anthropic_without_litellm(client, fake, no_litellm_messages):
    message = client.messages.create(model=CLAUDE, max_tokens=50, messages=ask("direct please"),
                                     extra_headers={"anthropic-beta": "tools-2024-04-04"})
    assert message.model == CLAUDE and message.content[0].text.endswith("direct please")
    sent = fake.last()
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == ANTHROPIC_TEST_KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["anthropic-beta"] == "tools-2024-04-04"
    assert set(sent.body) == {"model", "messages", "max_tokens", "stream"}
    assert no_litellm_messages == []


def test_a_stream_reaches_anthropic_without_litellm_and_is_relayed_whole(client, fake, no_litellm_messages):
    with client.messages.stream(model=CLAUDE, max_tokens=50, messages=ask("stream it")) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.endswith("stream it") and final.model == CLAUDE and final.usage.output_tokens > 0
    assert fake.last().body["stream"] is True
    assert no_litellm_messages == []


def test_a_stream_answered_with_a_json_error_and_a_200_is_an_error_not_an_empty_stream(client, fake):
    fake.fail("claude-sonnet-4-5", status=200,
              body={"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
    with pytest.raises(anthropic.APIStatusError) as caught:
        with client.messages.stream(model=CLAUDE, max_tokens=10, messages=ask()) as stream:
            stream.get_final_message()
    assert caught.value.status_code == 529
