"""A history whose tool calls and results do not pair up is the caller's 400, in Anthropic's
words, whatever model it names: judged once before any provider is called or any rpm is
counted (pipeline/history.py), so every target answers it alike and none of them sees it.

Anthropic's two refusals, as its API words them: "messages.12.content.0: unexpected
`tool_use_id` found in `tool_result` blocks: toolu_01JL.... Each `tool_result` block must have
a corresponding `tool_use` block in the previous message." (anthropics/claude-code#13460,
router-for-me/CLIProxyAPI#497), and "messages.22: `tool_use` ids were found without
`tool_result` blocks immediately after: toolu_01Gh.... Each `tool_use` block must have a
corresponding `tool_result` block in the next message." (anthropics/claude-code#1237).
"""

from __future__ import annotations

from contextlib import ExitStack

import anthropic
import pytest

from tests.support.family_fakes import start_family_fakes
from tests.support.stack import new_stack, providers_document, serve

TOOLS = [{"name": "weather", "description": "the weather", "input_schema": {"type": "object", "properties": {}}}]
ASKED = {"role": "user", "content": "what is the weather?"}
CALL = {"type": "tool_use", "id": "toolu_weather", "name": "weather", "input": {}}
ANSWER = {"type": "tool_result", "tool_use_id": "toolu_weather", "content": "sunny"}
ORPHAN_RESULT = [ASKED, {"role": "assistant", "content": "let me look"},
                 {"role": "user", "content": [{"type": "text", "text": "here:"},
                                              {**ANSWER, "tool_use_id": "toolu_nowhere"}]}]
ORPHAN_RESULT_REFUSAL = (
    "messages.2.content.1: unexpected `tool_use_id` found in `tool_result` blocks: toolu_nowhere. Each "
    "`tool_result` block must have a corresponding `tool_use` block in the previous message.")
UNANSWERED_CALL = [ASKED, {"role": "assistant", "content": [CALL, {**CALL, "id": "toolu_again"}]},
                   {"role": "user", "content": [ANSWER]}, {"role": "assistant", "content": "sunny"},
                   {"role": "user", "content": "thanks"}]
UNANSWERED_CALL_REFUSAL = (
    "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_again. Each "
    "`tool_use` block must have a corresponding `tool_result` block in the next message.")
# One model of every provider family: Anthropic's API, OpenAI's Chat Completions, Gemini (litellm),
# Claude and Nova on Bedrock, Claude and Gemini on Vertex, Azure.
TARGETS = ["anthropic/claude-sonnet-4-5", "openai/gpt-4o-mini", "gemini/gemini-2.5-flash",
           "bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0", "bedrock/amazon.nova-lite-v1:0",
           "vertex/claude-sonnet-4-5@20250929", "vertex/gemini-2.5-flash", "azure/prod-chat"]


@pytest.fixture(scope="module")
def families(moto_endpoint):
    with ExitStack() as stack:
        yield start_family_fakes(stack)


@pytest.fixture
def gateway(moto_endpoint, fake, families):
    """(stack, base URL) of a gateway serving every route at once, the fakes' records cleared."""
    for upstream in (fake, *families.fakes.values()):
        upstream.clear()
    stack = new_stack(fake.url)
    document = providers_document(fake.url)
    document["providers"].update(families.providers)
    document["models"] = {**document["models"], **families.models}
    stack.put_providers(document)
    with serve(stack) as server:
        yield stack, server.url + "/v3"


def provider_requests(fake, families) -> dict[str, int]:
    return {name: upstream.count() for name, upstream in [("anthropic+openai", fake), *families.fakes.items()]
            if upstream.count()}


def refusal(client: anthropic.Anthropic, model: str, messages: list, *, stream: bool = False) -> anthropic.APIError:
    with pytest.raises(anthropic.BadRequestError) as raised:
        if stream:
            with client.messages.stream(model=model, max_tokens=20, tools=TOOLS, messages=messages) as events:
                events.get_final_message()
        else:
            client.messages.create(model=model, max_tokens=20, tools=TOOLS, messages=messages)
    return raised.value


def rpm_remaining(client: anthropic.Anthropic) -> str:
    raw = client.messages.with_raw_response.create(model="anthropic/claude-sonnet-4-5", max_tokens=20,
                                                   messages=[ASKED])
    return raw.headers["anthropic-ratelimit-requests-remaining"]


@pytest.mark.parametrize("model", TARGETS)
def test_a_tool_result_answering_no_tool_use_is_the_callers_400_in_anthropics_words_on_every_route(
        gateway, fake, families, model):
    stack, base_url = gateway
    client = anthropic.Anthropic(api_key=stack.add_key(limits={"rpm": 5}), base_url=base_url, max_retries=0)
    for stream in (False, True):
        error = refusal(client, model, ORPHAN_RESULT, stream=stream)
        assert error.body["error"] == {"type": "invalid_request_error", "message": ORPHAN_RESULT_REFUSAL}, \
            f"{model} answered an orphan tool_result with: {error.body}"
        assert error.response.headers["x-should-retry"] == "false"
    assert provider_requests(fake, families) == {}, "the caller's mistake reached a provider"
    assert rpm_remaining(client) == "4", "the refused requests used the key's rpm"


@pytest.mark.parametrize("model", ["anthropic/claude-sonnet-4-5", "openai/gpt-4o-mini", "gemini/gemini-2.5-flash"])
def test_a_tool_use_the_next_turn_does_not_answer_is_the_callers_400_in_anthropics_words(
        gateway, fake, families, model):
    stack, base_url = gateway
    client = anthropic.Anthropic(api_key=stack.add_key(), base_url=base_url, max_retries=0)
    error = refusal(client, model, UNANSWERED_CALL)
    assert error.body["error"]["message"] == UNANSWERED_CALL_REFUSAL, f"{model} answered: {error.body}"
    assert provider_requests(fake, families) == {}, "the caller's mistake reached a provider"


def test_calls_and_results_pair_by_turn_across_system_messages_and_split_turns(gateway, families):
    """Claude Code puts system-role messages between turns, and Anthropic combines consecutive
    messages of one role into one turn: neither is a pairing mistake."""
    stack, base_url = gateway
    client = anthropic.Anthropic(api_key=stack.add_key(), base_url=base_url, max_retries=0)
    history = [ASKED, {"role": "assistant", "content": [{"type": "text", "text": "looking"}]},
               {"role": "assistant", "content": [CALL]},
               {"role": "system", "content": "the tool ran"},
               {"role": "user", "content": [ANSWER]}, {"role": "user", "content": "and tomorrow?"}]
    reply = client.messages.create(model="gemini/gemini-2.5-flash", max_tokens=20, tools=TOOLS, messages=history)
    assert reply.content, "a well-paired history was refused"
    assert families.fakes["gemini"].count() == 1
