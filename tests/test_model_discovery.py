"""GET /v3/v1/models as Claude Code's model discovery reads it.

With `CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY=1` Claude Code lists the
gateway's models and keeps the ids beginning with `claude` or `anthropic`:
an Anthropic provider's models (`anthropic/...`) are kept as they are, and an
operator's exact alias (`claude-house` -> `openai/gpt-4o`) is an entry of its
own, so any model can enter the picker. Each entry's capabilities say what
the serving model does with structured outputs, effort and adaptive thinking:
litellm's flags where the price map has them, Anthropic's documentation by
tier and version where it does not.
"""

from __future__ import annotations

import anthropic
import pytest

from tests.support.stack import TEST_MODELS, providers_document, serve

# Claude models the price map has no entry for (a snapshot it has not heard of) next to
# ones it flags, and an OpenAI model.
MODELS = {
    **TEST_MODELS,
    "anthropic/claude-opus-4-8": {},
    "anthropic/claude-sonnet-4-6-20260301": {},
    "anthropic/claude-opus-4-5-20251130": {},
    "anthropic/claude-opus-7": {},
}
ALIASES = {"claude-house": "openai/gpt-4o", "claude-opus-*": "anthropic/claude-opus-4-8"}


def discovered(ids: list[str]) -> list[str]:
    """What Claude Code's discovery keeps (FIELD-NOTES: ids beginning with claude or anthropic)."""
    return [i for i in ids if i.startswith(("claude", "anthropic"))]


@pytest.fixture
def listing(stack):
    stack.put_providers({**providers_document(stack.upstream_url, MODELS), "aliases": ALIASES})
    everything, claude_only = stack.add_key(), stack.add_key(models=["anthropic/*"])
    with serve(stack) as running:
        def sdk(key):
            return anthropic.Anthropic(api_key=key, base_url=running.url + "/v3", max_retries=0, timeout=20)
        yield sdk(everything), sdk(claude_only)


def test_an_exact_alias_is_listed_as_an_entry_of_its_own_that_discovery_keeps(listing):
    client, claude_only = listing
    entries = {model.id: model for model in client.models.list(limit=1000)}
    assert "claude-house" in discovered(list(entries)), "Claude Code's discovery cannot see the operator's alias"
    assert "openai/gpt-4o" in entries["claude-house"].display_name
    assert entries["claude-house"].max_input_tokens == entries["openai/gpt-4o"].max_input_tokens
    assert "claude-opus-*" not in entries, "a pattern is not a model"
    assert {"anthropic/claude-opus-4-8", "anthropic/claude-haiku-4-5"} <= set(discovered(list(entries)))
    assert "claude-house" not in [m.id for m in claude_only.models.list(limit=1000)], \
        "an alias of a model the key may not use was listed"


def test_the_list_stays_in_id_order_for_its_cursors(listing):
    client, _ = listing
    ids = [model.id for model in client.models.list(limit=1000)]
    assert ids[0] == "@edenai" and ids[1:] == sorted(ids[1:])
    page = client.models.list(limit=2, after_id="anthropic/claude-sonnet-4-6-20260301")
    assert [m.id for m in page.data] == ids[ids.index("anthropic/claude-sonnet-4-6-20260301") + 1:][:2]


def capabilities(entry) -> tuple[bool, set[str], bool]:
    caps = entry.capabilities
    levels = {level for level in ("low", "medium", "high", "max", "xhigh")
              if getattr(caps.effort, level) is not None and getattr(caps.effort, level).supported}
    assert caps.effort.supported == bool(levels)
    return caps.structured_outputs.supported, levels, caps.thinking.types.adaptive.supported


ALL_EFFORT = {"low", "medium", "high", "max", "xhigh"}


@pytest.mark.parametrize("model_id, expected", [
    # litellm flags all three for claude-opus-4-8
    ("anthropic/claude-opus-4-8", (True, ALL_EFFORT, True)),
    # the price map has no entry: Anthropic's documentation by tier and version
    ("anthropic/claude-sonnet-4-6-20260301", (True, {"low", "medium", "high", "max"}, True)),
    ("anthropic/claude-opus-4-5-20251130", (True, {"low", "medium", "high"}, False)),
    ("anthropic/claude-opus-7", (True, ALL_EFFORT, True)),
    # structured outputs from Claude 4.5 on, neither effort nor adaptive thinking before 4.6
    ("anthropic/claude-haiku-4-5", (True, set(), False)),
    ("anthropic/claude-sonnet-4-5", (True, set(), False)),
    # translated: a JSON-schema format litellm says gpt-4o takes; it does not reason
    ("openai/gpt-4o", (True, set(), False)),
])
def test_each_entry_says_what_the_serving_model_can_do(listing, model_id, expected):
    client, _ = listing
    assert capabilities(client.models.retrieve(model_id)) == expected
    listed = {model.id: model for model in client.models.list(limit=1000)}
    assert capabilities(listed[model_id]) == expected


def test_a_pattern_names_the_capabilities_of_its_target(listing):
    client, _ = listing
    assert capabilities(client.models.retrieve("claude-opus-5-5")) == (True, ALL_EFFORT, True)


def test_the_router_offers_what_any_candidate_offers(listing):
    client, _ = listing
    assert capabilities(client.models.retrieve("@edenai")) == (True, ALL_EFFORT, True)


@pytest.mark.parametrize("name, tier_and_version", [
    ("claude-opus-4-6", ("opus", (4, 6))),
    ("claude-haiku-4-5-20251001", ("haiku", (4, 5))),  # a snapshot's date is no version
    ("claude-opus-4-20250514", ("opus", (4, 0))),
    ("anthropic.claude-opus-4-6-v1", ("opus", (4, 6))),  # Bedrock
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", ("sonnet", (4, 5))),
    ("claude-sonnet-4-5@20250929", ("sonnet", (4, 5))),  # Vertex
    ("claude-fable-5", ("fable", (5, 0))),
    ("claude-3-7-sonnet-20250219", None),  # the old order predates every feature documented here
    ("gpt-4o", None),
])
def test_a_claude_name_gives_its_tier_and_version_on_every_provider(name, tier_and_version):
    from handler.providers.features import claude_version

    assert claude_version(name) == tier_and_version
