"""Claude Code's tool search on models that do not speak Anthropic's API.

A translating route carries each block it can, puts in words what has a
faithful text form, and names what it drops: a `tool_reference` becomes
"Tool CronList is now available." (handler/translation/text_forms.py), every
tool goes as an ordinary one (the model cannot search deferred tools) and
`tools[].defer_loading` is listed in `x-edenai-dropped-fields`, so the model
calls the tool its search found, as Claude would. A block no translation can
carry leaves that model out of the chain; with no model left it is a 400
naming the block.
"""

from __future__ import annotations

import json
from contextlib import ExitStack

import anthropic
import pytest

from tests.support.family_fakes import family_gateway, start_family_fakes
from tests.support.stack import TEST_MODELS, new_stack, providers_document, serve
from tests.support.tool_search import DEFERRED_TOOLS, TOOL_REFERENCE, TOOL_SEARCH_BETA, tool_search_turns

GPT = "openai/gpt-4o-mini"
CLAUDE = "anthropic/claude-sonnet-4-5"
BETA = {"anthropic-beta": f"claude-code-20250219,{TOOL_SEARCH_BETA}"}


def dropped(raw) -> set[str]:
    return set(filter(None, raw.headers.get("x-edenai-dropped-fields", "").split(", ")))


def test_a_tool_reference_reaches_gpt_as_words_naming_the_tool_with_every_tool_callable(client, fake):
    raw = client.messages.with_raw_response.create(
        model=GPT, max_tokens=50, tools=DEFERRED_TOOLS, messages=tool_search_turns(TOOL_REFERENCE), extra_headers=BETA)
    assert raw.status_code == 200
    sent = fake.last("/chat/completions").body
    [result] = [m for m in sent["messages"] if m["role"] == "tool"]
    assert result["content"] == "Tool CronList is now available.", \
        "GPT was never told which tool its search found"
    assert [tool["function"]["name"] for tool in sent["tools"]] == ["ToolSearch", "CronList"], \
        "the deferred tool was not sent, so GPT could not call what its search found"
    assert '"tools[].defer_loading"' in dropped(raw), "defer_loading vanished without being listed"


def test_thinking_display_is_listed_where_thinking_becomes_reasoning_effort(moto_endpoint, fake):
    stack = new_stack(fake.url)
    stack.put_providers(providers_document(fake.url, {**TEST_MODELS, "openai/o4-mini": {"supports_reasoning": True}}))
    with serve(stack) as server:
        client = anthropic.Anthropic(api_key=stack.add_key(), base_url=server.url + "/v3", max_retries=0)
        raw = client.messages.with_raw_response.create(
            model="openai/o4-mini", max_tokens=2000, messages=[{"role": "user", "content": "think"}],
            thinking={"type": "enabled", "budget_tokens": 1024, "display": "omitted"})
    assert fake.last("/chat/completions").body["reasoning_effort"] == "low"
    assert "thinking.display" in dropped(raw), "thinking.display vanished without being listed"


COMPACTION = {"type": "compaction", "content": "Summary of the conversation so far."}
COMPACTED = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [COMPACTION]},
             {"role": "user", "content": "go on"}]


def test_a_block_no_translation_carries_is_a_400_naming_it(client, fake):
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(model=GPT, max_tokens=20, messages=COMPACTED)
    assert "messages.1.content.0" in refused.value.message and "'compaction'" in refused.value.message
    assert fake.snapshot() == [], "nothing was sent"


def test_a_chain_with_claude_carries_a_block_gpt_cannot(client, fake):
    message = client.messages.create(model=GPT, max_tokens=20, messages=COMPACTED, extra_body={"fallbacks": [CLAUDE]})
    assert message.model == CLAUDE
    [sent] = fake.snapshot()
    assert sent.path.endswith("/v1/messages") and sent.body["messages"][1]["content"] == [COMPACTION]


@pytest.mark.parametrize("model, family", [("gemini/gemini-2.5-flash", "gemini"), ("bedrock/amazon.nova-lite-v1:0", "bedrock")])
def test_a_tool_reference_reaches_a_translated_model_in_words(moto_endpoint, fake, model, family):
    """Gemini (litellm's translation) and Nova (Converse) have no tool_reference either."""
    with ExitStack() as running:
        fakes = start_family_fakes(running)
        with family_gateway(fake.url, fakes.providers, fakes.models) as (_, _, client):
            raw = client.messages.with_raw_response.create(
                model=model, max_tokens=50, tools=DEFERRED_TOOLS, messages=tool_search_turns(TOOL_REFERENCE),
                extra_headers=BETA)
        sent = fakes.fakes[family].last().body
    assert raw.status_code == 200
    assert "Tool CronList is now available." in json.dumps(sent), f"{model} was never told which tool its search found"
    assert "CronList" in json.dumps(sent.get("tools") or sent.get("toolConfig")), "the deferred tool was not sent"
    assert '"tools[].defer_loading"' in dropped(raw)


def test_a_tool_search_conversation_is_counted_for_gpt_with_the_reference_in_words(client, fake):
    counted = client.messages.count_tokens(model=GPT, tools=DEFERRED_TOOLS, messages=tool_search_turns(TOOL_REFERENCE),
                                           extra_headers=BETA)
    plain = client.messages.count_tokens(model=GPT, tools=DEFERRED_TOOLS, messages=tool_search_turns(
        [{"type": "text", "text": "Tool CronList is now available."}]))
    assert counted.input_tokens == plain.input_tokens, "the reference was not counted as the words GPT is sent"
