"""Anthropic-type providers get the caller's body as sent.

Every field except the gateway's own (`fallbacks`, `router_candidates`,
`extra_headers`) reaches the provider unchanged, including fields this
gateway has never heard of: Anthropic adds request fields every month, and a
real Claude model would accept them (with the matching beta header, which is
forwarded) and silently skip the feature if the gateway dropped them.
"""

from __future__ import annotations

import anthropic
import pytest

from tests.support.tool_search import DEFERRED_TOOLS, TOOL_REFERENCE, TOOL_SEARCH_BETA, tool_search_turns

CLAUDE = "anthropic/claude-sonnet-4-5"

# What Claude Code, the SDK's structured outputs and today's Anthropic API send.
TODAYS_FIELDS = {
    "output_config": {"effort": "high", "format": {"type": "json_schema", "schema": {
        "type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}}},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "output_format": {"type": "json_schema", "schema": {"type": "object", "properties": {}}},
    "cache_control": {"type": "ephemeral"},
    "service_tier": "auto",
    "container": "container_011CZ",
    "mcp_servers": [{"type": "url", "url": "https://mcp.example.com/sse", "name": "example"}],
    "speed": "fast",
    "inference_geo": "us",
    "a_field_anthropic_adds_next_month": {"nested": [1, 2, {"deep": True}]},
}


def ask(text="hello"):
    return [{"role": "user", "content": text}]


def test_every_field_the_caller_sends_reaches_an_anthropic_provider_unchanged(client, fake):
    client.messages.create(model=CLAUDE, max_tokens=100, messages=ask(), extra_body=TODAYS_FIELDS)
    sent = fake.last("/v1/messages").body
    lost = {name: value for name, value in TODAYS_FIELDS.items() if sent.get(name) != value}
    assert not lost, f"the provider never saw {sorted(lost)}: a real Claude model would silently skip them"


def test_the_gateways_own_fields_stay_at_the_gateway(client, fake):
    client.messages.create(model=CLAUDE, max_tokens=10, messages=ask(), extra_body={
        "fallbacks": ["openai/gpt-4o-mini"], "extra_headers": {"x-trace-id": "t1"}})
    sent = fake.last("/v1/messages")
    assert "fallbacks" not in sent.body and "extra_headers" not in sent.body
    assert sent.headers["x-trace-id"] == "t1"


def test_a_streamed_request_carries_every_field_too(client, fake):
    with client.messages.stream(model=CLAUDE, max_tokens=100, messages=ask(), extra_body=TODAYS_FIELDS) as stream:
        stream.get_final_message()
    sent = fake.last("/v1/messages").body
    assert sent["stream"] is True
    assert {name: sent.get(name) for name in TODAYS_FIELDS} == TODAYS_FIELDS


MID_CONVERSATION = [
    {"role": "user", "content": "first"},
    {"role": "system", "content": "a reminder the client inserts mid-way"},
    {"role": "assistant", "content": "ok"},
    {"role": "user", "content": "second"},
]


def test_mid_conversation_system_messages_stay_in_place_under_their_beta(client, fake):
    client.messages.create(model=CLAUDE, max_tokens=10, system="top", messages=MID_CONVERSATION,
                           extra_headers={"anthropic-beta": "claude-code-20250219,mid-conversation-system-2026-04-07"})
    sent = fake.last("/v1/messages").body
    assert sent["messages"] == MID_CONVERSATION, "order (and the prompt-cache prefix) changed"
    assert sent["system"] == "top"


def test_mid_conversation_system_messages_stay_in_place_without_the_beta(client, fake):
    """Claude Code 2.1.332 no longer names the beta and still sends them (tests/test_system_messages.py)."""
    client.messages.create(model=CLAUDE, max_tokens=10, system="top", messages=MID_CONVERSATION,
                           extra_headers={"anthropic-beta": "claude-code-20250219"})
    sent = fake.last("/v1/messages").body
    assert sent["messages"] == MID_CONVERSATION, "order (and the prompt-cache prefix) changed"
    assert sent["system"] == "top"


@pytest.mark.parametrize("smuggled", [{"api_base": "http://127.0.0.1:9/evil"}, {"api_key": "sk-attacker"}])
def test_connection_fields_are_still_refused_with_everything_else_passing(client, fake, smuggled):
    with pytest.raises(anthropic.BadRequestError, match="may not be set by the caller"):
        client.messages.create(model=CLAUDE, max_tokens=10, messages=ask(), extra_body={**TODAYS_FIELDS, **smuggled})
    assert fake.count() == 0


def test_a_search_result_block_reaches_claude_as_the_sdk_types_it(client, fake):
    """The SDK's SearchResultBlockParam names its source with a string (a URL or any id)."""
    block = {"type": "search_result", "source": "https://docs.example/handbook", "title": "Handbook",
             "content": [{"type": "text", "text": "Leave is 25 days."}], "citations": {"enabled": True}}
    client.messages.create(model=CLAUDE, max_tokens=50, messages=[
        {"role": "user", "content": [block, {"type": "text", "text": "how much leave?"}]}])
    assert fake.last("/v1/messages").body["messages"][0]["content"][0] == block


def test_a_tool_reference_reaches_claude_as_sent_under_its_beta(client, fake):
    messages = tool_search_turns(TOOL_REFERENCE)
    client.messages.create(model=CLAUDE, max_tokens=50, messages=messages, tools=DEFERRED_TOOLS,
                           extra_headers={"anthropic-beta": TOOL_SEARCH_BETA})
    sent = fake.last("/v1/messages").body
    assert sent["messages"] == messages, "Claude never saw the tool_reference Claude Code's tool search sent"
    assert sent["tools"] == DEFERRED_TOOLS


@pytest.mark.parametrize("beta, tools, needle", [
    ("claude-code-20250219", DEFERRED_TOOLS, "Input tag 'tool_reference'"),
    (TOOL_SEARCH_BETA, DEFERRED_TOOLS[:1], "Tool reference 'CronList' not found in available tools"),
])
def test_claude_judges_a_tool_reference_the_gateway_only_passes_on(client, fake, beta, tools, needle):
    """Anthropic takes a tool_reference only under the tool-search beta and for a tool in `tools`:
    the refusal is the provider's, relayed, not the gateway's."""
    with pytest.raises(anthropic.BadRequestError, match=needle):
        client.messages.create(model=CLAUDE, max_tokens=50, messages=tool_search_turns(TOOL_REFERENCE),
                               tools=tools, extra_headers={"anthropic-beta": beta})
    assert fake.count() == 1, "the gateway refused a block the provider judges"


NEW_BLOCKS = {
    "compaction": {"type": "compaction", "content": "Summary of the conversation so far."},
    "tool_search_tool_result": {"type": "tool_search_tool_result", "tool_use_id": "srvtoolu_01",
                                "content": {"type": "tool_search_tool_search_result",
                                            "tool_references": [{"type": "tool_reference", "tool_name": "CronList"}]}},
}


@pytest.mark.parametrize("kind", sorted(NEW_BLOCKS))
def test_block_types_the_gateway_does_not_know_reach_claude_as_sent(client, fake, kind):
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [NEW_BLOCKS[kind]]},
                {"role": "user", "content": "go on"}]
    client.messages.create(model=CLAUDE, max_tokens=50, messages=messages, tools=DEFERRED_TOOLS,
                           extra_headers={"anthropic-beta": TOOL_SEARCH_BETA})
    assert fake.last("/v1/messages").body["messages"] == messages, f"Claude never saw the {kind} block"


@pytest.mark.parametrize("kind", ["bogus", "", "TEXT", "image_url"])
def test_a_block_type_nobody_defines_is_the_providers_to_refuse(client, fake, kind):
    with pytest.raises(anthropic.BadRequestError, match=f"Input tag {kind!r}"):
        client.messages.create(model=CLAUDE, max_tokens=10, messages=[
            {"role": "user", "content": [{"type": kind, "text": "hi"}]}])
    assert fake.last("/v1/messages").body["messages"][0]["content"] == [{"type": kind, "text": "hi"}]
