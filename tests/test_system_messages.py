"""System-role messages mid-conversation stay where the caller put them.

Claude Code 2.1.332 sends `role: "system"` messages between turns (one with
`cache_control`) without the `mid-conversation-system-*` beta. Moving them
into `system` changes the system prompt turn by turn, so every turn misses
the prompt cache. Anthropic-type providers (Anthropic, Claude on Bedrock and
on Vertex) receive them at their position, unchanged, beta or not; Chat
Completions takes them anywhere too; a route with no place for them (litellm's)
moves them into the system prompt and the response says so in
`x-edenai-moved-fields`.
"""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from tests.support.family_fakes import family_gateway, start_family_fakes
from tests.support.stack import OPENAI_TEST_KEY

CLAUDE = "anthropic/claude-sonnet-4-5"
BEDROCK_CLAUDE = "bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0"
VERTEX_CLAUDE = "vertex/claude-sonnet-4-5@20250929"
GPT = "openai/gpt-4o-mini"
AZURE = "azure/prod-chat"
GEMINI = "gemini/gemini-2.5-flash"
VERTEX_GEMINI = "vertex/gemini-2.5-flash"

REMINDER = {"role": "system", "content": [
    {"type": "text", "text": "The user switched to plan mode.", "cache_control": {"type": "ephemeral"}}]}
CONVERSATION = [
    {"role": "user", "content": "hello"},
    {"role": "assistant", "content": "Hi, how can I help?"},
    REMINDER,
    {"role": "user", "content": "make a plan"},
]
SYSTEM = "You are a careful assistant."


@pytest.fixture(scope="module")
def families(moto_endpoint):
    with ExitStack() as stack:
        yield start_family_fakes(stack)


@pytest.fixture
def gateway(moto_endpoint, fake, families):
    providers = {**families.providers, "openai": {"api_key": OPENAI_TEST_KEY, "api_base": fake.url + "/v1"}}
    for family_fake in families.fakes.values():
        family_fake.clear()
    with family_gateway(fake.url, providers, {**families.models, GPT: {}}) as (_, _, sdk):
        yield sdk


def received(fake, families, model: str):
    """The body the provider of `model` received last."""
    upstream = {"anthropic": fake, "openai": fake, **families.fakes}[model.split("/")[0]]
    return upstream.snapshot()[-1].body


@pytest.mark.parametrize("beta", [None, "mid-conversation-system-2026-04-07"], ids=["no beta", "beta"])
@pytest.mark.parametrize("model", [CLAUDE, BEDROCK_CLAUDE, VERTEX_CLAUDE])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_an_anthropic_type_provider_receives_the_system_message_where_the_caller_put_it(
        gateway, fake, families, model, beta, stream):
    headers = {"anthropic-beta": beta} if beta else {}
    raw = gateway.messages.with_raw_response.create(model=model, max_tokens=50, system=SYSTEM,
                                                    messages=CONVERSATION, stream=stream, extra_headers=headers)
    if stream:
        list(raw.parse())
    sent = received(fake, families, model)
    assert sent["messages"] == CONVERSATION, "the mid-conversation system message was moved or changed"
    assert sent["system"] == SYSTEM, "the system prompt changed: the prompt cache misses every turn"
    assert "x-edenai-moved-fields" not in raw.headers


@pytest.mark.parametrize("model", [GPT, AZURE])
def test_chat_completions_receives_the_system_message_where_the_caller_put_it(gateway, fake, families, model):
    raw = gateway.messages.with_raw_response.create(model=model, max_tokens=50, system=SYSTEM,
                                                    messages=CONVERSATION)
    sent = received(fake, families, model)
    assert [(m["role"], m["content"]) for m in sent["messages"]] == [
        ("system", SYSTEM), ("user", "hello"), ("assistant", "Hi, how can I help?"),
        ("system", "The user switched to plan mode."), ("user", "make a plan")]
    assert "x-edenai-moved-fields" not in raw.headers


@pytest.mark.parametrize("model", [GEMINI, VERTEX_GEMINI])
def test_a_route_without_a_place_for_it_moves_it_into_the_system_prompt_and_says_so(
        gateway, fake, families, model):
    raw = gateway.messages.with_raw_response.create(model=model, max_tokens=50, system=SYSTEM,
                                                    messages=CONVERSATION)
    assert raw.parse().content[0].text
    assert raw.headers.get("x-edenai-moved-fields") == "messages[2]->system", \
        "the system message was moved and the response did not say so"
    sent = str(received(fake, families, model))
    assert "The user switched to plan mode." in sent


def test_claude_counts_tokens_with_the_system_message_where_it_stands(gateway, fake):
    gateway.messages.count_tokens(model=CLAUDE, system=SYSTEM, messages=CONVERSATION)
    sent = fake.last("/count_tokens").body
    assert sent["messages"] == CONVERSATION and sent["system"] == SYSTEM, \
        "the count was of another prompt than the one the model is sent"


def test_a_model_whose_template_takes_system_only_first_gets_it_moved(moto_endpoint, fake, families):
    """vLLM serving an open-weight model whose chat template refuses a later system message: the
    model entry says so with litellm's `supports_mid_conversation_system: false`."""
    providers = {"openai": {"api_key": OPENAI_TEST_KEY, "api_base": fake.url + "/v1"}}
    with family_gateway(fake.url, providers, {GPT: {"supports_mid_conversation_system": False}}) as (_, _, sdk):
        raw = sdk.messages.with_raw_response.create(model=GPT, max_tokens=50, system=SYSTEM, messages=CONVERSATION)
    assert raw.headers.get("x-edenai-moved-fields") == "messages[2]->system"
    sent = fake.last("/chat/completions").body
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]
    assert "plan mode" in sent["messages"][0]["content"]
