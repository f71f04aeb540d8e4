"""What cannot reach a model as sent is changed visibly, never silently.

max_tokens above the serving model's output limit is clamped, and a header
says so; on the OpenAI-compatible path what has an equivalent is translated
(a JSON-schema format, reasoning effort) and the rest is listed in
`x-edenai-dropped-fields`; `@edenai` leaves out models that cannot honour a
structured-output request and says why in `x-edenai-route`.
"""

from __future__ import annotations

import pytest
import anthropic

from tests.support.stack import TEST_MODELS, providers_document, serve

CLAUDE = "anthropic/claude-sonnet-4-5"
GPT = "openai/gpt-4o-mini"
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
          "additionalProperties": False}
CLAUDE_CODE_FIELDS = {  # what Claude Code sends on every call, besides the conversation
    "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
}


def ask(text="hello"):
    return [{"role": "user", "content": text}]


def create(client, **body):
    return client.messages.with_raw_response.create(messages=body.pop("messages", ask()), **body)


def test_max_tokens_above_the_models_limit_is_clamped_and_the_header_says_so(client, fake):
    raw = create(client, model=GPT, max_tokens=32000)
    assert raw.parse().stop_reason == "end_turn"
    sent = fake.last().body
    assert sent.get("max_completion_tokens", sent.get("max_tokens")) == 16384, \
        "gpt-4o-mini takes 16384: a real provider answers 32000 with a 400"
    assert raw.headers["x-edenai-max-tokens-clamped"] == "16384; requested=32000"


def test_max_tokens_within_the_limit_goes_as_sent_without_a_header(client, fake):
    raw = create(client, model=CLAUDE, max_tokens=32000)
    assert fake.last().body["max_tokens"] == 32000
    assert "x-edenai-max-tokens-clamped" not in raw.headers
    assert "x-edenai-dropped-fields" not in raw.headers


def test_a_fallback_from_claude_to_a_smaller_model_is_clamped_for_that_model(client, fake):
    fake.fail("claude-sonnet-4-5", status=529)
    raw = create(client, model=CLAUDE, max_tokens=32000, extra_body={"fallbacks": [GPT]})
    assert raw.parse().model == GPT
    assert raw.headers["x-edenai-max-tokens-clamped"] == "16384; requested=32000"


def test_a_json_schema_format_reaches_an_openai_model_as_its_response_format(client, fake):
    raw = create(client, model=GPT, max_tokens=100,
                 extra_body={"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}})
    sent = fake.last().body
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"]["properties"] == SCHEMA["properties"]
    assert "x-edenai-dropped-fields" not in raw.headers


def test_what_has_no_equivalent_on_openai_is_listed_as_dropped(client, fake):
    raw = create(client, model=GPT, max_tokens=100, extra_body={
        **CLAUDE_CODE_FIELDS, "top_k": 5, "service_tier": "auto", "metadata": {"user_id": "u", "team": "x"},
        "a_future_field": 1})
    dropped = raw.headers["x-edenai-dropped-fields"].split(", ")
    assert sorted(dropped) == sorted(["thinking", "output_config.effort", "context_management", "top_k",
                                      "service_tier", "metadata.team", "a_future_field"])
    sent = fake.last().body
    assert not {"thinking", "context_management", "top_k", "service_tier", "a_future_field",
                "reasoning_effort"} & set(sent), "gpt-4o-mini does not reason: nothing of it may reach it"


def test_unknown_field_names_the_header_cannot_carry_are_quoted_and_a_flood_of_them_is_cut_short(client, fake):
    """Found by the property-based run: a field named in astral-plane characters made the
    dropped-fields header unencodable, and the caller got a 500 for a request that was served."""
    odd = {"\U0007900c": 1, "line\r\nx-injected: 1": 2, "café": 3}
    raw = create(client, model=GPT, max_tokens=100, extra_body={**odd, **{f"field_{i:04}": i for i in range(2000)}})
    header = raw.headers["x-edenai-dropped-fields"]
    assert raw.status_code == 200 and header.isascii() and "\r" not in header and "\n" not in header
    assert '"caf\\u00e9"' in header and '"line\\r\\nx-injected: 1"' in header, header[:200]
    assert len(header) <= 1000 and header.endswith("more)"), "thousands of field names must not make a huge header"
    assert "x-injected" not in raw.headers


@pytest.fixture
def reasoning_client(stack):
    stack.put_providers(providers_document(stack.upstream_url, {**TEST_MODELS, "openai/o4-mini": {}}))
    key = stack.add_key()
    with serve(stack) as running:
        yield anthropic.Anthropic(api_key=key, base_url=running.url + "/v3", max_retries=0, timeout=20)


@pytest.mark.parametrize("fields, effort", [
    ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}}, "high"),
    ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "low"),
    ({"thinking": {"type": "enabled", "budget_tokens": 31999}}, "high"),
    ({"output_config": {"effort": "low"}}, "low"),
])
def test_effort_and_thinking_become_reasoning_effort_on_a_model_that_reasons(reasoning_client, fake, fields, effort):
    raw = create(reasoning_client, model="openai/o4-mini", max_tokens=2000, extra_body=fields)
    sent = fake.last().body
    assert sent.get("reasoning_effort") == effort, sent
    assert "x-edenai-dropped-fields" not in raw.headers


def test_edenai_leaves_out_models_that_cannot_honour_a_structured_output(stack, fake):
    stack.put_providers(providers_document(stack.upstream_url, {
        "openai/gpt-4o-mini": {"supports_response_schema": False}, CLAUDE: {}}))
    key = stack.add_key()
    with serve(stack) as running:
        client = anthropic.Anthropic(api_key=key, base_url=running.url + "/v3", max_retries=0)
        raw = create(client, model="@edenai", max_tokens=100,
                     extra_body={"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}})
    assert raw.parse().model == CLAUDE, "gpt-4o-mini is cheaper but cannot answer in the schema"
    assert "openai/gpt-4o-mini: no structured output (JSON schema)" in raw.headers["x-edenai-route"]


def test_edenai_sends_adaptive_thinking_only_to_claude_models_that_have_it(stack, fake):
    stack.put_providers(providers_document(stack.upstream_url, {CLAUDE: {}, "anthropic/claude-opus-4-8": {}}))
    key = stack.add_key()
    with serve(stack) as running:
        client = anthropic.Anthropic(api_key=key, base_url=running.url + "/v3", max_retries=0)
        raw = create(client, model="@edenai", max_tokens=100, extra_body=CLAUDE_CODE_FIELDS)
    assert raw.parse().model == "anthropic/claude-opus-4-8", "Sonnet 4.5 is cheaper but answers adaptive with a 400"
    assert f"{CLAUDE}: no adaptive thinking" in raw.headers["x-edenai-route"]
    assert fake.last().body["thinking"] == {"type": "adaptive"}


@pytest.mark.parametrize("fields, dropped", [
    ({"output_format": "json please"}, ("output_format",)),
    ({"output_config": "high"}, ("output_config",)),
    ({"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}, "task_budget": 5}},
     ("output_config.task_budget",)),
    ({"thinking": {"type": "disabled"}}, ()),
    ({"fallbacks": [GPT], "router_candidates": [GPT], "extra_headers": {}}, ()),
])
def test_malformed_or_partial_fields_are_dropped_visibly_never_sent_half(fields, dropped):
    from types import MappingProxyType

    from handler.pipeline.adaptation import adapt
    from handler.providers.catalogue import Model, Provider

    gpt = Model(GPT, Provider("openai", "openai"), "gpt-4o-mini", MappingProxyType({"supports_response_schema": True}))
    adaptation = adapt({"model": GPT, "messages": ask(), **fields}, gpt)
    assert adaptation.dropped == dropped
    assert adaptation.keeps_format == ("format" in str(fields.get("output_config")))


def test_a_thinking_budget_our_clamp_leaves_no_room_for_is_lowered_with_it(stack, fake):
    stack.put_providers(providers_document(stack.upstream_url, {CLAUDE: {"max_output_tokens": 8000}}))
    key = stack.add_key()
    with serve(stack) as running:
        client = anthropic.Anthropic(api_key=key, base_url=running.url + "/v3", max_retries=0, timeout=20)
        raw = create(client, model=CLAUDE, max_tokens=32000,
                     extra_body={"thinking": {"type": "enabled", "budget_tokens": 31999}})
    sent = fake.last().body
    assert (sent["max_tokens"], sent["thinking"]["budget_tokens"]) == (8000, 7999), \
        "Anthropic refuses a budget that is not below max_tokens"
    assert raw.headers["x-edenai-max-tokens-clamped"] == "8000; requested=32000; thinking.budget_tokens=7999"
