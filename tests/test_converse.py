"""Bedrock's Converse, called directly: Amazon Nova end to end through the official SDK,
the gateway and the fake Bedrock runtime (which refuses what Converse refuses).

The rest of Nova's matrix (tools, PDFs, structured outputs, the blocks it cannot
carry, errors, fallbacks, count_tokens) is in tests/test_bedrock.py beside Claude's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import anthropic
import pytest

from tests.support.family_checks import (
    TOOL, ask, assert_prompt_caching_is_metered_write_then_read,
)
from tests.support.family_fakes import bedrock_gateway, stack_bedrock, upstream

ROOT = Path(__file__).resolve().parent.parent
NOVA = "bedrock/amazon.nova-lite-v1:0"
NOVA_2 = "bedrock/amazon.nova-2-lite-v1:0"
LLAMA = "bedrock/meta.llama3-3-70b-instruct-v1:0"
DEEPSEEK = "bedrock/deepseek.v3-v1:0"
NOVA_MICRO = "bedrock/amazon.nova-micro-v1:0"
TEXT_DOCUMENT = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "the terms"}}
CONTENT_DOCUMENT = {"type": "document", "source": {"type": "content", "content": [
    {"type": "text", "text": "first clause"}, {"type": "text", "text": "second clause"}]}}
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


@pytest.fixture(scope="module")
def bedrock(moto_endpoint):
    with stack_bedrock() as fake:
        yield fake


@pytest.fixture
def gateway(moto_endpoint, fake, bedrock):
    with bedrock_gateway(fake.url, bedrock, {NOVA: {}, NOVA_2: {}, LLAMA: {}, DEEPSEEK: {}, NOVA_MICRO: {}}) as running:
        yield running


def test_nova_gets_a_converse_body_with_the_callers_system_sampling_stops_and_image(gateway, bedrock):
    _, _, client = gateway
    message = client.messages.create(
        model=NOVA, max_tokens=50, stop_sequences=["never"], extra_body={"temperature": 0.2, "top_p": 0.9},
        system=[{"type": "text", "text": "be brief"}, {"type": "text", "text": "be kind"}],
        messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}},
            {"type": "text", "text": "what is this"}]}])
    assert message.model == NOVA and message.content[0].text == f"Hello from {upstream(NOVA)}: what is this"
    sent = bedrock.last()
    assert sent.path.endswith("/converse") and "AWS4-HMAC-SHA256" in sent.headers["authorization"]
    assert sent.body == {
        "system": [{"text": "be brief"}, {"text": "be kind"}],
        "messages": [{"role": "user", "content": [{"image": {"format": "png", "source": {"bytes": PIXEL}}},
                                                  {"text": "what is this"}]}],
        "inferenceConfig": {"maxTokens": 50, "temperature": 0.2, "topP": 0.9, "stopSequences": ["never"]},
    }, f"Converse got {sent.body}"


def test_turns_anthropic_reads_as_one_reach_converse_merged(gateway, bedrock):
    """Anthropic takes two user turns in a row (and a system-role message between turns, which
    joins the system prompt here); Converse refuses them ("A conversation must alternate between
    user and assistant roles"), so they go as one turn."""
    _, _, client = gateway
    message = client.messages.create(model=NOVA, max_tokens=50, messages=[
        {"role": "user", "content": "first"}, {"role": "user", "content": [{"type": "text", "text": "second"},
                                                                          {"type": "text", "text": ""}]}])
    assert message.content[0].text == f"Hello from {upstream(NOVA)}: first second"
    assert bedrock.last().body["messages"] == [{"role": "user", "content": [{"text": "first"}, {"text": "second"}]}]


def test_a_system_message_between_turns_joins_novas_system_prompt_and_says_so(gateway, bedrock):
    """Claude Code sends system-role messages between turns; Converse has no place for them there."""
    _, _, client = gateway
    raw = client.messages.with_raw_response.create(model=NOVA, max_tokens=50, system="be brief", messages=[
        {"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"},
        {"role": "system", "content": "be terse"}, {"role": "user", "content": "second"}])
    assert raw.parse().content[0].text == f"Hello from {upstream(NOVA)}: second"
    assert raw.headers["x-edenai-moved-fields"] == "messages[2]->system"
    sent = bedrock.last().body
    assert sent["system"] == [{"text": "be brief"}, {"text": "be terse"}]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]


def test_a_tool_choice_and_a_failed_tool_reach_converse_in_its_terms(gateway, bedrock):
    _, _, client = gateway
    raw = client.messages.with_raw_response.create(
        model=NOVA, max_tokens=50, tools=[TOOL],
        tool_choice={"type": "tool", "name": "lookup", "disable_parallel_tool_use": True},
        messages=[*ask("find cats"),
                  {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup",
                                                     "input": {"query": "cats"}}]},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True,
                                                "content": "no index"}]}])
    assert raw.parse().content[0].text == "Tool said: no index"
    assert raw.headers["x-edenai-dropped-fields"] == "tool_choice.disable_parallel_tool_use", \
        "Converse cannot turn parallel tool use off: the caller must be told"
    sent = bedrock.last().body
    assert sent["toolConfig"] == {"tools": [{"toolSpec": {"name": "lookup", "description": "Look a thing up.",
                                                          "inputSchema": {"json": TOOL["input_schema"]}}}],
                                  "toolChoice": {"tool": {"name": "lookup"}}}
    assert sent["messages"][1]["content"] == [{"toolUse": {"toolUseId": "toolu_1", "name": "lookup",
                                                           "input": {"query": "cats"}}}]
    assert sent["messages"][2]["content"] == [{"toolResult": {"toolUseId": "toolu_1", "status": "error",
                                                              "content": [{"text": "no index"}]}}]


def test_a_tool_name_past_converses_64_characters_reaches_nova_cut_and_comes_back_whole(gateway, bedrock):
    """MCP tools' names are often longer than Converse's ToolName (at most 64 of [a-zA-Z0-9_-])."""
    _, _, client = gateway
    name = "mcp__github_enterprise__search_repositories_by_topic_and_language.v2"
    message = client.messages.create(model=NOVA, max_tokens=50, tools=[{**TOOL, "name": name}],
                                     messages=ask("find cats"))
    assert next(block for block in message.content if block.type == "tool_use").name == name
    sent = bedrock.last().body["toolConfig"]["tools"][0]["toolSpec"]["name"]
    assert len(sent) <= 64 and set(sent) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def test_tool_choice_none_offers_nova_no_tool(gateway, bedrock):
    """Converse's ToolChoice has no `none`: the tools are not offered, so the model answers in words."""
    _, _, client = gateway
    message = client.messages.create(model=NOVA, max_tokens=50, tools=[TOOL], tool_choice={"type": "none"},
                                     messages=ask("find cats"))
    assert [block.type for block in message.content] == ["text"] and message.stop_reason == "end_turn"
    assert "toolConfig" not in bedrock.last().body


def test_a_streamed_tool_call_from_nova_reaches_the_sdk_whole(gateway, bedrock):
    _, _, client = gateway
    with client.messages.stream(model=NOVA, max_tokens=50, tools=[TOOL], messages=ask("find cats")) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    call = next(block for block in final.content if block.type == "tool_use")
    assert call.name == "lookup" and call.input == {"query": "find cats"} and final.stop_reason == "tool_use"
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert bedrock.last().path.endswith("/converse-stream")


def test_novas_prompt_cache_is_written_then_read_and_metered_to_the_token(gateway, bedrock):
    """cache_control becomes a Converse cachePoint after the block (Nova caches prompts: the price
    map's supports_prompt_caching), and Converse's cacheRead/WriteInputTokens reach the ledger."""
    stack, key, client = gateway
    events, final = assert_prompt_caching_is_metered_write_then_read(stack, key, client, NOVA, bedrock)
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert final.usage.cache_creation_input_tokens > 0
    assert bedrock.last().body["system"][-1] == {"cachePoint": {"type": "default"}}
    assert stack.month(key, requests=2)["cost_usd"] > 0, "Nova must be priced from the price map"


def test_novas_tokens_are_metered_and_priced_at_the_price_maps_rates(gateway, bedrock):
    """amazon.nova-lite-v1:0 in litellm's price map: $0.06 per million input tokens, $0.24 output."""
    stack, key, client = gateway
    message = client.messages.create(model=NOVA, max_tokens=50, messages=ask("one two three four"))
    month = stack.month(key, requests=1)
    assert (month["input_tokens"], month["output_tokens"]) == (message.usage.input_tokens, message.usage.output_tokens)
    expected = message.usage.input_tokens * 0.06e-6 + message.usage.output_tokens * 0.24e-6
    assert float(month["cost_usd"]) == pytest.approx(expected, rel=1e-6), f"metered {month['cost_usd']}, priced {expected}"


def test_a_model_that_caches_no_prompt_gets_no_cache_point(gateway, bedrock):
    """Llama on Bedrock takes no cachePoint (the price map says no prompt caching): the caller's
    cache_control goes nowhere rather than into a block the model refuses."""
    _, _, client = gateway
    system = [{"type": "text", "text": "you are terse", "cache_control": {"type": "ephemeral"}}]
    client.messages.create(model=LLAMA, max_tokens=50, system=system, messages=ask())
    assert bedrock.last().body["system"] == [{"text": "you are terse"}]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_thinking_asked_of_nova_2_is_its_reasoning_config_and_comes_back_as_thinking(gateway, bedrock, stream):
    _, _, client = gateway
    arguments = dict(model=NOVA_2, max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 1024},
                     messages=ask("why"))
    if stream:
        with client.messages.stream(**arguments) as running:
            message = running.get_final_message()
    else:
        message = client.messages.create(**arguments)
    assert bedrock.last().body["additionalModelRequestFields"] == {
        "reasoningConfig": {"type": "enabled", "maxReasoningEffort": "low"}}
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "Let me think about: why" and message.content[0].signature == ""


def test_an_exception_frame_mid_converse_stream_becomes_an_error_event(gateway, bedrock):
    _, _, client = gateway
    bedrock.stream_exception(upstream(NOVA), "throttlingException", "slow down", after_events=3)
    with pytest.raises(anthropic.APIStatusError) as raised:
        with client.messages.stream(model=NOVA, max_tokens=50, messages=ask("one two three four five six")) as s:
            for _ in s:
                pass
    assert raised.value.body["error"]["type"] == "rate_limit_error" and "slow down" in str(raised.value.body)


def test_a_prompt_too_long_for_nova_is_anthropics_words_and_a_larger_model_takes_it(gateway, bedrock):
    """Bedrock's "Input is too long for requested model." is the refusal Claude Code compacts on, in
    Anthropic's words; with a fallback, the next model answers."""
    _, _, client = gateway
    bedrock.error(upstream(NOVA), "ValidationException", "Input is too long for requested model.", times=2)
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(model=NOVA, max_tokens=50, messages=ask())
    assert raised.value.body["error"]["message"].startswith("prompt is too long"), raised.value.body
    raw = client.messages.with_raw_response.create(model=NOVA, max_tokens=50, messages=ask(),
                                                   extra_body={"fallbacks": [NOVA_2]})
    assert raw.parse().model == NOVA_2
    assert [a.split(";")[:2] for a in raw.headers["x-edenai-attempts"].split(", ")] == [
        [NOVA, "status=400"], [NOVA_2, "status=200"]]


def test_max_tokens_over_novas_limit_is_lowered_not_refused(gateway, bedrock):
    """Claude Code asks 32000 of every model; Nova writes at most 10,000 and Converse refuses more."""
    _, _, client = gateway
    raw = client.messages.with_raw_response.create(model=NOVA, max_tokens=32000, messages=ask())
    assert raw.parse().content[0].text == f"Hello from {upstream(NOVA)}: hello there"
    assert raw.headers["x-edenai-max-tokens-clamped"] == "10000; requested=32000"
    assert bedrock.last().body["inferenceConfig"]["maxTokens"] == 10000


def service_model_problems(operation: str, params: dict) -> str:
    """What botocore's bedrock-runtime service model (the wire truth) finds wrong in `params`."""
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    return ParamValidator().validate(params, model.operation_model(operation).input_shape).generate_report()


def test_every_converse_body_the_gateway_sends_meets_botocores_service_model(gateway, bedrock):
    """A system prompt with a cache point, an image, a PDF, a text document, a tool call and its failed result, a
    forced tool, sampling, stops and reasoning: the body as sent, held against ConverseRequest."""
    _, _, client = gateway
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PIXEL}}
    messages = [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}}, pdf, TEXT_DOCUMENT,
        {"type": "text", "text": "read these", "cache_control": {"type": "ephemeral"}}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True}]}]
    client.messages.create(model=NOVA_2, max_tokens=500, stop_sequences=["END"], tools=[TOOL],
                           tool_choice={"type": "any"}, thinking={"type": "enabled", "budget_tokens": 20000},
                           system=[{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
                           messages=messages, extra_body={"temperature": 0.5})
    sent = bedrock.last().body
    assert sent["additionalModelRequestFields"]["reasoningConfig"]["maxReasoningEffort"] == "high"
    assert service_model_problems("Converse", {"modelId": upstream(NOVA_2), **sent}) == ""




@pytest.mark.parametrize("model", [NOVA, LLAMA])
def test_text_documents_reach_a_model_with_document_chat_as_converse_documents_with_a_text_source(
        gateway, bedrock, model):
    """Converse's DocumentSource takes `text` and `content` (botocore's service model); Nova Lite
    and Llama have document chat (Bedrock user guide, "Supported models and model features")."""
    _, _, client = gateway
    raw = client.messages.with_raw_response.create(model=model, max_tokens=50, messages=[{"role": "user", "content": [
        TEXT_DOCUMENT, CONTENT_DOCUMENT, {"type": "text", "text": "what do they say"}]}])
    assert raw.status_code == 200, "a text document must not be refused"
    assert raw.parse().content[0].text == \
        f"Hello from {upstream(model)}: the terms first clause\n\nsecond clause what do they say"
    assert "x-edenai-moved-fields" not in raw.headers
    first, second, _ = bedrock.last().body["messages"][0]["content"]
    assert first["document"]["format"] == "txt" and first["document"]["source"] == {"text": "the terms"}
    assert second["document"]["source"] == {"text": "first clause\n\nsecond clause"}, f"Bedrock got {second}"


def test_a_text_document_reaches_a_model_without_document_chat_as_text_and_says_so(gateway, bedrock):
    """Nova Micro has no document chat: Bedrock refuses a document block for it."""
    _, _, client = gateway
    raw = client.messages.with_raw_response.create(model=NOVA_MICRO, max_tokens=50, messages=[
        {"role": "user", "content": [TEXT_DOCUMENT, {"type": "text", "text": "what does it say"}]}])
    assert raw.parse().content[0].text == f"Hello from {upstream(NOVA_MICRO)}: the terms what does it say"
    assert raw.headers["x-edenai-moved-fields"] == "messages[0].content[0]->text", \
        "the caller must be told its document went as text"
    assert bedrock.last().body["messages"][0]["content"] == [{"text": "the terms"}, {"text": "what does it say"}]


@pytest.mark.parametrize("model, block, words", [
    (NOVA_MICRO, {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PIXEL}},
     "reads no documents"),
    (NOVA, {"type": "document", "source": {"type": "content", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}}]}},
     "only text blocks"),
], ids=["pdf-to-nova-micro", "image-in-a-content-source"])
def test_a_document_converse_would_lose_is_refused_naming_it(gateway, bedrock, model, block, words):
    _, _, client = gateway
    before = bedrock.count()
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(model=model, max_tokens=50, messages=[{"role": "user", "content": [
            block, {"type": "text", "text": "what does it say"}]}])
    message = raised.value.body["error"]["message"]
    assert "messages.0.content.0" in message and words in message, message
    assert bedrock.count() == before, "the model must not answer without the caller's document"


def test_reasoning_converse_cannot_ask_of_a_model_and_the_end_user_id_are_named_as_dropped(gateway, bedrock):
    """DeepSeek on Bedrock reasons (the price map) but Converse has no field for its effort;
    ConverseRequest has no end-user field for metadata.user_id."""
    _, _, client = gateway
    raw = client.messages.with_raw_response.create(
        model=DEEPSEEK, max_tokens=500, thinking={"type": "enabled", "budget_tokens": 1024},
        metadata={"user_id": "user-7"}, messages=ask())
    assert raw.status_code == 200
    assert raw.headers["x-edenai-dropped-fields"] == "thinking, metadata.user_id", \
        "the caller must be told its thinking and user id were not sent"
    assert "additionalModelRequestFields" not in bedrock.last().body
    raw = client.messages.with_raw_response.create(model=NOVA_2, max_tokens=500, metadata={"user_id": "user-7"},
                                                   thinking={"type": "enabled", "budget_tokens": 1024}, messages=ask())
    assert raw.headers["x-edenai-dropped-fields"] == "metadata.user_id", "Nova 2 reasons as asked"


def test_a_history_of_tool_calls_reaches_nova_with_stand_in_tools_when_none_are_offered(gateway, bedrock):
    """Converse refuses toolUse and toolResult blocks without a toolConfig ("The toolConfig field
    must be defined when using toolUse and toolResult content blocks.")."""
    _, _, client = gateway
    history = [*ask("find cats"),
               {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup",
                                                  "input": {"query": "cats"}}]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "three"}]}]
    for extra in ({}, {"tools": [TOOL], "tool_choice": {"type": "none"}}):
        message = client.messages.create(model=NOVA, max_tokens=50, messages=history, **extra)
        assert message.content[0].text == "Tool said: three"
        assert [t["toolSpec"]["name"] for t in bedrock.last().body["toolConfig"]["tools"]] == ["lookup"]


BEDROCK_ONLY = textwrap.dedent("""
    import json, os, sys
    from tests.support.fake_bedrock import FakeBedrock
    from tests.support.stack import new_stack, serve
    import anthropic

    with FakeBedrock(access_key_id=os.environ["AWS_ACCESS_KEY_ID"], secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                     region="us-east-1") as bedrock:
        stack = new_stack(bedrock.url)
        stack.put_providers({"providers": {"bedrock": {"type": "bedrock", "aws_region": "us-east-1",
                                                       "api_base": bedrock.url}},
                             "models": {"bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0": {},
                                        "bedrock/amazon.nova-lite-v1:0": {}}})
        with serve(stack) as server:
            client = anthropic.Anthropic(api_key=stack.add_key(name="k"), base_url=server.url + "/v3", max_retries=0)
            answered = []
            for model in ("bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0", "bedrock/amazon.nova-lite-v1:0"):
                messages = [{"role": "user", "content": "hello"}]
                answered.append(client.messages.create(model=model, max_tokens=50, messages=messages).content[0].text)
                with client.messages.stream(model=model, max_tokens=50, messages=messages) as stream:
                    answered.append(stream.get_final_message().content[0].text)
                answered.append(client.messages.count_tokens(model=model, messages=messages).input_tokens)
    print(json.dumps({"answered": answered, "litellm": sorted(m for m in sys.modules if m.split(".")[0] == "litellm")}))
""")


def test_a_deployment_whose_providers_are_all_bedrock_never_imports_litellm(moto_endpoint):
    """litellm costs about 2 s and 150 MB to import: Claude and Nova, streamed and not, and their
    token counts, are served without it."""
    done = subprocess.run([sys.executable, "-c", BEDROCK_ONLY], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["answered"][:2] == ["Hello from anthropic.claude-sonnet-4-5-20250929-v1:0: hello"] * 2
    assert result["answered"][3:5] == ["Hello from amazon.nova-lite-v1:0: hello"] * 2
    assert result["answered"][5] > 0, "Nova's token count (made at the gateway: Bedrock counts Claude only)"
    assert result["litellm"] == [], f"serving Bedrock imported {result['litellm'][:5]}"
