"""The fake OpenAI and Anthropic providers refuse what the real ones refuse, in their words,
as the providers' own SDKs see it: a fake kinder than the real API hides the gateway's
bugs. The rules and their sources: tests/support/openai_rules.py, anthropic_rules.py."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from tests.support.fake_upstream import FakeUpstream

HELLO = [{"role": "user", "content": "hello there"}]
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
CALL = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
ANTHROPIC_HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}


@pytest.fixture(scope="module")
def upstream():
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def gpt(upstream):
    upstream.clear()
    return openai.OpenAI(api_key="sk-test", base_url=upstream.url + "/v1", max_retries=0)


@pytest.fixture
def claude(upstream):
    upstream.clear()
    return anthropic.Anthropic(api_key="sk-ant-test", base_url=upstream.url, max_retries=0)


def refusal(call, error=openai.BadRequestError) -> str:
    with pytest.raises(error) as raised:
        call()
    return raised.value.body["message"]


# --------------------------------------------------------------------------- OpenAI

def test_openai_refuses_a_call_without_an_api_key(upstream):
    # The SDK will not send without a key, so the call is made as a client that forgot it would.
    response = httpx.post(upstream.url + "/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO})
    assert response.status_code == 401 and response.json()["error"]["message"].startswith(
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth")
    basic = httpx.post(upstream.url + "/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO},
                       headers={"authorization": "Basic c2stdGVzdA=="})
    assert basic.status_code == 401, "only Bearer auth carries the key"


def test_openai_refuses_tool_calls_not_answered_by_a_tool_message_each(gpt):
    unanswered = [*HELLO, {"role": "assistant", "content": None, "tool_calls": [CALL, {**CALL, "id": "call_2"}]},
                  {"role": "tool", "tool_call_id": "call_1", "content": "42"}, {"role": "user", "content": "and?"}]
    message = refusal(lambda: gpt.chat.completions.create(model="gpt-4o", messages=unanswered, tools=[TOOL]))
    assert message.startswith("An assistant message with 'tool_calls' must be followed by tool messages responding "
                              "to each 'tool_call_id'.") and message.endswith("response messages: call_2")
    answered = unanswered[:3] + [{"role": "tool", "tool_call_id": "call_2", "content": "43"}]
    reply = gpt.chat.completions.create(model="gpt-4o", messages=answered, tools=[TOOL])
    assert reply.choices[0].message.content == "Tool said: 42 43"


@pytest.mark.parametrize("model", ["o3-mini", "gpt-5", "o1"])
def test_openai_reasoning_models_refuse_max_tokens(gpt, model):
    message = refusal(lambda: gpt.chat.completions.create(model=model, messages=HELLO, max_tokens=10))
    assert message == ("Unsupported parameter: 'max_tokens' is not supported with this model. "
                       "Use 'max_completion_tokens' instead.")
    assert gpt.chat.completions.create(model=model, messages=HELLO, max_completion_tokens=10).choices
    assert gpt.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=10).choices


def test_openai_refuses_more_than_four_stop_sequences(gpt):
    message = refusal(lambda: gpt.chat.completions.create(model="gpt-4o", messages=HELLO, stop=list("abcde")))
    assert message == ("Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array "
                       "with length 5 instead.")
    assert gpt.chat.completions.create(model="gpt-4o", messages=HELLO, stop=list("abcd")).choices


@pytest.mark.parametrize("name, problem", [("x" * 65, "string too long. Expected a string with maximum length 64"),
                                           ("mcp__server.tool", "string does not match pattern"),
                                           ("get weather", "string does not match pattern")])
def test_openai_refuses_function_names_over_64_characters_or_outside_its_pattern(gpt, name, problem):
    tool = {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
    message = refusal(lambda: gpt.chat.completions.create(model="gpt-4o", messages=HELLO, tools=[tool]))
    assert message.startswith(f"Invalid 'tools[0].function.name': {problem}")
    call = {**CALL, "function": {"name": name, "arguments": "{}"}}
    history = [*HELLO, {"role": "assistant", "content": None, "tool_calls": [call]},
               {"role": "tool", "tool_call_id": "call_1", "content": "42"}]
    message = refusal(lambda: gpt.chat.completions.create(model="gpt-4o", messages=history))
    assert message.startswith(f"Invalid 'messages[1].tool_calls[0].function.name': {problem}")
    fine = {"type": "function", "function": {"name": "a-Z_0" + "9" * 59, "parameters": {"type": "object"}}}
    assert gpt.chat.completions.create(model="gpt-4o", messages=HELLO, tools=[fine]).choices


# --------------------------------------------------------------------------- Anthropic

@pytest.mark.parametrize("headers, status, message", [
    ({"anthropic-version": "2023-06-01"}, 401, "x-api-key header is required"),
    ({"x-api-key": "k"}, 400, "anthropic-version: header is required"),
])
def test_anthropic_refuses_a_call_without_its_key_or_version_header(upstream, headers, status, message):
    for path in ("/v1/messages", "/v1/messages/count_tokens"):
        response = httpx.post(upstream.url + path, headers=headers,
                              json={"model": "claude-x", "max_tokens": 5, "messages": HELLO})
        kind = "authentication_error" if status == 401 else "invalid_request_error"
        assert (response.status_code, response.json()) == (status, {"type": "error", "error": {
            "type": kind, "message": message}}), path
    bearer = httpx.post(upstream.url + "/v1/messages", json={"model": "claude-x", "max_tokens": 5, "messages": HELLO},
                        headers={"authorization": "Bearer oauth-token", "anthropic-version": "2023-06-01"})
    assert bearer.status_code == 200, "an OAuth token in Authorization is a credential too"


def test_anthropic_refuses_a_message_without_max_tokens(claude):
    with pytest.raises(anthropic.BadRequestError) as raised:
        claude.post("/v1/messages", cast_to=object, body={"model": "claude-x", "messages": HELLO})
    assert raised.value.body["error"]["message"] == "max_tokens: Field required"
    assert claude.post("/v1/messages/count_tokens", cast_to=object, body={"model": "claude-x", "messages": HELLO})


def test_anthropic_refuses_a_tool_use_not_answered_in_the_next_message(claude):
    use = {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"}
    unanswered = [*HELLO, {"role": "assistant", "content": [use, {**use, "id": "toolu_2"}]},
                  {"role": "user", "content": [result, {"type": "text", "text": "and?"}]}]
    with pytest.raises(anthropic.BadRequestError) as raised:
        claude.messages.create(model="claude-x", max_tokens=50, messages=unanswered)
    assert raised.value.body["error"]["message"] == (
        "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_2. Each "
        "`tool_use` block must have a corresponding `tool_result` block in the next message.")
    late = [*unanswered[:2], {"role": "user", "content": "wait"}, unanswered[2]]
    with pytest.raises(anthropic.BadRequestError, match="toolu_1, toolu_2"):
        claude.messages.create(model="claude-x", max_tokens=50, messages=late)
    unanswered[2]["content"].insert(1, {**result, "tool_use_id": "toolu_2", "content": "43"})
    reply = claude.messages.create(model="claude-x", max_tokens=50, messages=unanswered)
    assert reply.content[0].text == "Tool said: 42 43"


def test_anthropic_refuses_a_tool_result_answering_no_tool_use_of_the_previous_message(claude):
    use = {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"}
    orphan = [*HELLO, {"role": "assistant", "content": "looking"},
              {"role": "user", "content": [{"type": "text", "text": "here"}, result]}]
    with pytest.raises(anthropic.BadRequestError) as raised:
        claude.messages.create(model="claude-x", max_tokens=50, messages=orphan)
    assert raised.value.body["error"]["message"] == (
        "messages.2.content.1: unexpected `tool_use_id` found in `tool_result` blocks: toolu_1. Each `tool_result` "
        "block must have a corresponding `tool_use` block in the previous message.")
    with pytest.raises(anthropic.BadRequestError, match="messages.0.content.0: unexpected `tool_use_id`"):
        claude.messages.create(model="claude-x", max_tokens=50, messages=[{"role": "user", "content": [result]}])
    orphan[1]["content"] = [use]
    reply = claude.messages.create(model="claude-x", max_tokens=50, messages=orphan)
    assert reply.content[0].text == "Tool said: 42"
