"""Every request Claude Code 2.1.332 and the Agent SDK sent, replayed through the gateway.

tests/data/claude-code-2.1.332.jsonl holds 54 requests captured at the gateway on
2026-12-06 (free text replaced by filler of the same length, everything else
as sent), against every provider family: Anthropic, OpenAI, Azure, Gemini,
Vertex (Claude and Gemini) and Bedrock Claude. Each is answered as the client
expects (no 4xx from the gateway), an Anthropic-type target receives every
field and block the client sent (less the gateway's own), with the betas, and
a translated target receives each field in its own terms or names it in
`x-edenai-dropped-fields`, with tool search's `tool_reference` in words.

The corpus names models no catalogue lists (`claude-opus-5-5`, ...): this
stack maps them with exact `aliases`.
"""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from tests.support.family_fakes import start_family_fakes
from tests.support.replay import (
    answered,
    clamped_max_tokens,
    corpus,
    dropped,
    lost_for_anthropic,
    replay,
    said_in_words,
    tool_references,
    unaccounted_for_translated,
)
from tests.support.stack import ANTHROPIC_TEST_KEY, OPENAI_TEST_KEY, new_stack, serve

REQUESTS = corpus("claude-code-2.1.332.jsonl")
ANTHROPIC_MODELS = {"anthropic/claude-opus-4-8": {}, "anthropic/claude-sonnet-4-5": {}, "anthropic/claude-haiku-4-5": {}}
ALIASES = {"claude-opus-5-5": "anthropic/claude-opus-4-8", "claude-sonnet-5-5": "anthropic/claude-sonnet-4-5",
           "claude-haiku-5-5": "anthropic/claude-haiku-4-5"}
# The served models that take Anthropic's body (Claude, direct, on Bedrock and on Vertex).
ANTHROPIC_TYPE = ("anthropic/", "bedrock/anthropic.claude", "vertex/claude")
# Bedrock and Vertex carry the model and the stream in the URL, not the body.
IN_THE_URL = frozenset({"model", "stream"})


def test_the_corpus_is_the_one_claude_code_and_the_agent_sdk_sent():
    assert len(REQUESTS) == 54
    assert {r["client"] for r in REQUESTS} == {"claude-code", "claude-agent-sdk"}
    assert {r["headers"]["user-agent"] for r in REQUESTS if r["client"] == "claude-code"} == \
        {"claude-cli/2.1.332 (external, sdk-cli)"}


@pytest.fixture(scope="module")
def families(moto_endpoint):
    with ExitStack() as stack:
        yield start_family_fakes(stack)


@pytest.fixture(scope="module")
def gateway(moto_endpoint, _fake_session, families):
    url = _fake_session.url
    stack = new_stack(url)
    stack.put_providers({
        "providers": {"anthropic": {"api_key": ANTHROPIC_TEST_KEY, "api_base": url},
                      "openai": {"api_key": OPENAI_TEST_KEY, "api_base": url + "/v1"}, **families.providers},
        "models": {**ANTHROPIC_MODELS, "openai/gpt-4o-mini": {}, **families.models},
        "aliases": ALIASES})
    with serve(stack) as server:
        yield server, stack.add_key(name="claude-code-2.1.332")


@pytest.fixture
def fakes(fake, families):
    for family_fake in families.fakes.values():
        family_fake.clear()
        family_fake.clear_faults()
    return {"anthropic": fake, "openai": fake, **families.fakes}


def _case(i: int, recorded: dict):
    return pytest.param(recorded, id=f"{i}-{recorded['body'].get('model')}")


@pytest.mark.parametrize("recorded", [_case(i, r) for i, r in enumerate(REQUESTS)])
def test_a_claude_code_2_1_332_request_is_answered_and_loses_nothing(gateway, fakes, recorded):
    server, key = gateway
    body = recorded["body"]
    response = replay(server.url, recorded, key)
    if answered(response, recorded) is None:
        return
    served = response.headers["x-edenai-model"]
    sent_request = fakes[served.partition("/")[0]].last()
    sent = sent_request.body
    if not served.startswith(ANTHROPIC_TYPE):
        unaccounted = unaccounted_for_translated(body, sent, dropped(response))
        assert not unaccounted, f"{served}: {unaccounted} vanished without being listed as dropped"
        for tool in tool_references(body):
            assert said_in_words(sent, tool), f"{served} was never told its tool search found {tool}"
        return
    elsewhere = frozenset({"model"}) if served.startswith("anthropic/") else IN_THE_URL
    lost = lost_for_anthropic(body, sent, elsewhere=elsewhere, clamped=clamped_max_tokens(response))
    if served.startswith("anthropic/"):
        assert not lost, f"{served} never saw {lost}: a real Claude would silently skip them"
        assert not dropped(response), f"{served}: the gateway dropped {dropped(response)}"
    else:  # Bedrock and Vertex refuse some of Anthropic's fields and betas: each one is named
        named = dropped(response)
        unnamed = [name for name in lost if not any(d == name or d.startswith(name + ".") for d in named)]
        assert not unnamed, f"{served} never saw {unnamed}, and x-edenai-dropped-fields did not say so"
    if served.startswith("anthropic/"):
        assert sent_request.headers["anthropic-beta"] == recorded["headers"]["anthropic-beta"]
