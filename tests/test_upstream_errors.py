"""Upstream failures reach the caller in Anthropic's status and error type.

The official SDK picks its exception class from the status, so these are
checked through the SDK; retry hints survive, provider credentials do not.
"""

from __future__ import annotations

import anthropic
import pytest

from handler.protocol.errors import GatewayError, redact
from handler.providers.upstream import map_exception, upstream_message
from tests.support.stack import ANTHROPIC_TEST_KEY, new_stack, serve

CLAUDE = "anthropic/claude-sonnet-4-5"
GPT = "openai/gpt-4o-mini"


def ask():
    return [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize("model", [CLAUDE, GPT])
@pytest.mark.parametrize("upstream_status, status, error_type", [
    (500, 502, "api_error"),
    (503, 502, "api_error"),
    (429, 429, "rate_limit_error"),
    (529, 529, "overloaded_error"),
    (400, 400, "invalid_request_error"),
    (401, 502, "api_error"),
    (403, 502, "api_error"),
])
def test_upstream_statuses_map_to_anthropic_errors(client, fake, model, upstream_status, status, error_type):
    fake.fail(model.split("/")[1], status=upstream_status)
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(model=model, max_tokens=10, messages=ask())
    error = caught.value
    assert error.status_code == status
    assert error.body["type"] == "error"
    assert error.body["error"]["type"] == error_type
    assert error.response.headers["request-id"].startswith("req_")


def test_a_429_keeps_the_upstream_retry_after(client, fake):
    fake.fail("claude-sonnet-4-5", status=429, headers={"retry-after": "17"})
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model=CLAUDE, max_tokens=10, messages=ask())
    assert caught.value.response.headers["retry-after"] == "17"


def test_a_429_without_a_hint_still_carries_retry_after(client, fake):
    fake.fail("gpt-4o-mini", status=429)
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model=GPT, max_tokens=10, messages=ask())
    assert caught.value.response.headers["retry-after"].isdigit()


def test_a_529_carries_retry_after(client, fake):
    fake.fail("claude-sonnet-4-5", status=529)
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(model=CLAUDE, max_tokens=10, messages=ask())
    assert caught.value.status_code == 529
    assert caught.value.response.headers["retry-after"].isdigit()


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_a_connection_reset_is_a_502(client, fake, model):
    fake.reset_connection(model.split("/")[1])
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(model=model, max_tokens=10, messages=ask())
    assert caught.value.status_code == 502
    assert caught.value.body["error"]["type"] == "api_error"


def test_an_unreachable_provider_is_a_502(client, stack):
    document = {"providers": {"anthropic": {"api_key": "k", "api_base": "http://127.0.0.1:9"}},
                "models": {CLAUDE: {}}}
    stack.put_providers(document)
    client_app = client  # the catalogue is read on first use, so the new document applies
    with pytest.raises(anthropic.APIStatusError) as caught:
        client_app.messages.create(model=CLAUDE, max_tokens=10, messages=ask())
    assert caught.value.status_code == 502


def test_a_provider_that_hangs_past_the_deadline_is_a_504(moto_endpoint, fake):
    stack = new_stack(fake.url, request_deadline=1.0)
    key = stack.add_key()
    fake.delay("claude-sonnet-4-5", 3.0, times=1)
    with serve(stack) as server:
        client = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0, timeout=20)
        with pytest.raises(anthropic.APIStatusError) as caught:
            client.messages.create(model=CLAUDE, max_tokens=10, messages=ask())
    assert caught.value.status_code == 504
    assert caught.value.body["error"]["type"] == "timeout_error"


def test_a_200_with_malformed_json_is_a_502_not_a_crash(client, fake):
    fake.malformed("claude-sonnet-4-5", kind="json")
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(model=CLAUDE, max_tokens=10, messages=ask())
    assert caught.value.status_code == 502


def test_the_next_request_after_a_fault_succeeds(client, fake):
    fake.reset_connection("claude-sonnet-4-5")
    with pytest.raises(anthropic.APIStatusError):
        client.messages.create(model=CLAUDE, max_tokens=10, messages=ask())
    assert client.messages.create(model=CLAUDE, max_tokens=10, messages=ask()).content


def test_provider_credentials_are_redacted_from_relayed_messages(client, fake):
    fake.fail("claude-sonnet-4-5", status=400, body={
        "type": "error", "error": {"type": "invalid_request_error",
                                   "message": f"bad key {ANTHROPIC_TEST_KEY} used"}})
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=CLAUDE, max_tokens=10, messages=ask())
    assert ANTHROPIC_TEST_KEY not in str(caught.value.body)
    assert caught.value.body["error"]["message"] in ("bad key [redacted] used", "bad key REDACTED used")


def test_redact_hides_known_secrets_and_key_shaped_strings():
    assert redact("key=abcdef123456 and sk-live-xyz123456", ["abcdef123456"]) == "key=[redacted] and [redacted]"


def test_upstream_messages_lose_litellms_prefixes_and_json_wrapping():
    wrapped = Exception('litellm.BadRequestError: AnthropicException - {"type": "error", '
                        '"error": {"type": "invalid_request_error", "message": "max_tokens too large"}}')
    assert upstream_message(wrapped) == "max_tokens too large"
    assert upstream_message(Exception("litellm.RateLimitError: RateLimitError: OpenAIException - slow down")) \
        == "slow down"


def test_map_exception_passes_gateway_errors_through():
    error = GatewayError(418, "teapot")
    assert map_exception(error) is error


def test_a_python_traceback_in_litellms_message_never_reaches_the_caller():
    leaked = Exception("litellm.APIConnectionError: unhashable type: 'dict'\nTraceback (most recent call last):\n"
                       '  File "/var/task/litellm/main.py", line 944, in acompletion\n')
    error = map_exception(leaked)
    assert "Traceback" not in error.message and "/var/task" not in error.message, error.message
    assert "unhashable type" in error.message
