"""Amazon Bedrock end to end: the official SDK, the gateway, the fake Bedrock runtime.

The gateway has no Bedrock key: it signs with the credentials of its
environment (on Lambda, the function's role), and the fake checks the
signature. Claude on Bedrock goes out with Anthropic's own body (every
field the caller sent); Amazon Nova gets Converse, called directly too
(tests/test_converse.py holds the rest of its matrix).
"""

from __future__ import annotations

import base64
import json
import os

import anthropic
import pytest

from handler.providers import bedrock_api
from tests.support.family_checks import (
    LOST_BLOCKS, PDF, PDF_DOCUMENT, TOOL, Forecast, ask, assert_error_in_anthropics_terms,
    assert_output_config_reaches_claude_as_sent, assert_signed_thinking_round_trips,
    assert_prompt_caching_is_metered_write_then_read, assert_tool_result_round_trips,
    assert_what_litellm_would_lose_is_refused, parsed_forecast, tool_returned,
)
from tests.support.family_fakes import DIRECT_CLAUDE, bedrock_gateway, stack_bedrock, upstream

CLAUDE = "bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0"
# What of LOST_BLOCKS Converse cannot carry (its DocumentSource takes text and content: test_converse.py).
CONVERSE_LOSES = [name for name in LOST_BLOCKS if name not in ("text-document", "content-document")]
NOVA = "bedrock/amazon.nova-lite-v1:0"


PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}}


@pytest.fixture(scope="module")
def bedrock(moto_endpoint):
    with stack_bedrock() as fake:
        yield fake


@pytest.fixture
def gateway(moto_endpoint, fake, bedrock):
    with bedrock_gateway(fake.url, bedrock, {CLAUDE: {}, NOVA: {}}) as running:
        yield running


def test_claude_on_bedrock_answers_signed_with_the_environments_credentials(gateway, bedrock):
    _, _, client = gateway
    message = client.messages.create(model=CLAUDE, max_tokens=50, messages=ask(), metadata={"user_id": "u-1"},
                                     extra_body={"top_k": 5}, extra_headers={"anthropic-beta": "context-1m-2025-08-07"})
    assert message.model == CLAUDE
    assert message.content[0].text == f"Hello from {upstream(CLAUDE)}: hello there"
    sent = bedrock.last()
    assert sent.path.endswith("/invoke")
    credential = sent.headers["authorization"].split("Credential=")[1].split(",")[0]
    assert credential.startswith(f"{os.environ['AWS_ACCESS_KEY_ID']}/") and credential.endswith(
        "/us-east-1/bedrock/aws4_request"), f"Bedrock saw the request signed as {credential}"
    assert "x-api-key" not in sent.headers and "bearer" not in sent.headers["authorization"].lower()
    assert sent.body == {"anthropic_version": "bedrock-2023-05-31", "anthropic_beta": ["context-1m-2025-08-07"],
                         "max_tokens": 50, "messages": ask(), "metadata": {"user_id": "u-1"}, "top_k": 5}, \
        "Claude on Bedrock must get every Anthropic field the caller sent"


def test_a_role_session_token_is_signed_into_the_request(gateway, bedrock, monkeypatch):
    """A Lambda role's credentials are temporary: their session token must travel, signed."""
    _, _, client = gateway
    monkeypatch.setenv("AWS_SESSION_TOKEN", "role-session-token-0001")
    bedrock_api.forget_credentials()
    try:
        client.messages.create(model=CLAUDE, max_tokens=50, messages=ask())
    finally:
        monkeypatch.delenv("AWS_SESSION_TOKEN")
        bedrock_api.forget_credentials()
    sent = bedrock.last()
    assert sent.headers["x-amz-security-token"] == "role-session-token-0001"
    assert "x-amz-security-token" in sent.headers["authorization"].split("SignedHeaders=")[1].split(",")[0]


@pytest.mark.parametrize("header", ["x-amzn-bedrock-service-tier", "X-Amzn-Bedrock-GuardrailIdentifier"])
def test_a_caller_cannot_set_bedrocks_own_request_headers(gateway, bedrock, header):
    """A priority service tier costs more than the price the gateway meters; a guardrail is the operator's."""
    _, _, client = gateway
    before = bedrock.count()
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(model=NOVA, max_tokens=50, messages=ask(), extra_body={"extra_headers": {header: "x"}})
    assert "may not be set by the caller" in raised.value.body["error"]["message"]
    assert bedrock.count() == before


def test_claude_codes_betas_reach_bedrock_only_where_bedrock_takes_them(gateway, bedrock):
    _, _, client = gateway
    betas = "claude-code-20250219,context-1m-2025-08-07,prompt-caching-scope-2026-01-05,context-management-2025-06-27"
    message = client.messages.create(model=CLAUDE, max_tokens=50, messages=ask(),
                                     extra_headers={"anthropic-beta": betas})
    assert message.content[0].text == f"Hello from {upstream(CLAUDE)}: hello there", \
        "Bedrock refuses unknown betas: Claude Code's own must not reach it"
    assert bedrock.last().body["anthropic_beta"] == ["context-1m-2025-08-07", "context-management-2025-06-27"]


def test_betas_bedrock_does_not_take_are_named_in_the_dropped_fields_header(gateway, bedrock):
    _, _, client = gateway
    betas = "claude-code-20250219,context-1m-2025-08-07,prompt-caching-scope-2026-01-05"
    raw = client.messages.with_raw_response.create(model=CLAUDE, max_tokens=50, messages=ask(),
                                                   extra_headers={"anthropic-beta": betas})
    assert raw.headers.get("x-edenai-dropped-fields") == \
        "anthropic_beta.claude-code-20250219, anthropic_beta.prompt-caching-scope-2026-01-05", \
        "a caller must be told which of its betas Bedrock was not sent"
    assert bedrock.last().body["anthropic_beta"] == ["context-1m-2025-08-07"]


# What Claude Code 2.1.332 sends on every turn (../shared/traffic/claude-code-2.1.332.jsonl).
CLAUDE_CODE_BETAS = ("claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,"
                     "mid-conversation-tool-changes-2026-07-01,thinking-token-count-2026-05-13,"
                     "advanced-tool-use-2025-11-20,effort-2025-11-24,thinking-display-updates-2026-08-18")
CLAUDE_CODE_FIELDS = {"thinking": {"type": "adaptive", "display": "updates"}, "output_config": {"effort": "high"},
                      "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}}


def test_claude_codes_turn_reaches_claude_on_bedrock_with_what_bedrock_takes(gateway, bedrock):
    """Bedrock refuses Claude Code's own betas and its clear_thinking edit ("context_management:
    Extra inputs are not permitted"): they are left out and named; the rest goes as sent."""
    _, _, client = gateway
    raw = client.messages.with_raw_response.create(
        model=CLAUDE, max_tokens=64000, messages=ask(), metadata={"user_id": "session-1"},
        extra_headers={"anthropic-beta": CLAUDE_CODE_BETAS}, extra_body=CLAUDE_CODE_FIELDS)
    assert raw.parse().content[-1].text == f"Hello from {upstream(CLAUDE)}: hello there"
    sent = bedrock.last().body
    assert "context_management" not in sent, "Bedrock takes no clear_thinking edit"
    assert sent["thinking"] == CLAUDE_CODE_FIELDS["thinking"] and sent["output_config"] == {"effort": "high"}
    assert sent["anthropic_beta"] == ["context-management-2025-06-27", "mid-conversation-tool-changes-2026-07-01",
                                      "tool-search-tool-2025-10-19", "effort-2025-11-24",
                                      "thinking-display-updates-2026-08-18"]
    assert raw.headers["x-edenai-dropped-fields"].split(", ") == [
        "context_management.edits.clear_thinking_20251015", "anthropic_beta.claude-code-20250219",
        "anthropic_beta.interleaved-thinking-2025-05-14", "anthropic_beta.thinking-token-count-2026-05-13"]


def test_a_context_edit_bedrock_takes_goes_on_beside_one_it_refuses(gateway, bedrock):
    _, _, client = gateway
    edits = [{"type": "clear_thinking_20251015", "keep": "all"}, {"type": "clear_tool_uses_20250919"}]
    raw = client.messages.with_raw_response.create(model=CLAUDE, max_tokens=50, messages=ask(),
                                                   extra_body={"context_management": {"edits": edits}})
    assert bedrock.last().body["context_management"] == {"edits": [{"type": "clear_tool_uses_20250919"}]}
    assert raw.headers["x-edenai-dropped-fields"] == "context_management.edits.clear_thinking_20251015"


# Top-level fields Anthropic's API takes and InvokeModel's schema refuses ("Malformed input request:
# #: extraneous key [cache_control] is not permitted"), as the clients that send them send them: the
# Python SDK's own arguments, litellm-as-a-client's `output_format` (not an SDK argument: extra_body).
REFUSED_BY_INVOKE_MODEL = pytest.mark.parametrize("field, arguments", [
    ("cache_control", {"cache_control": {"type": "ephemeral"}}),
    ("speed", {"speed": "fast"}),
    ("inference_geo", {"inference_geo": "us"}),
    ("diagnostics", {"diagnostics": {"previous_message_id": "msg_01"}}),
    ("output_format", {"extra_body": {"output_format": {"type": "json_schema", "schema": {"type": "object"}}}}),
    ("a_field_from_next_month", {"extra_body": {"a_field_from_next_month": {"on": True}}}),
], ids=lambda value: value if isinstance(value, str) else "")


@REFUSED_BY_INVOKE_MODEL
def test_a_field_invoke_model_refuses_is_left_out_and_named(gateway, bedrock, field, arguments):
    _, _, client = gateway
    raw = client.messages.with_raw_response.create(model=CLAUDE, max_tokens=50, messages=ask(), **arguments)
    assert raw.parse().content[0].text == f"Hello from {upstream(CLAUDE)}: hello there", \
        f"Bedrock answers 400 'extraneous key [{field}]': the gateway must not send it"
    assert field not in bedrock.last().body
    assert raw.headers.get("x-edenai-dropped-fields") == field


def test_a_streamed_request_leaves_out_every_refused_field_and_names_each(gateway, bedrock):
    _, _, client = gateway
    with client.messages.stream(model=CLAUDE, max_tokens=50, messages=ask(), cache_control={"type": "ephemeral"},
                                speed="fast", inference_geo="us", stop_sequences=["never"]) as stream:
        assert stream.get_final_message().content[0].text == f"Hello from {upstream(CLAUDE)}: hello there"
        dropped = stream.response.headers.get("x-edenai-dropped-fields")
    assert set(dropped.split(", ")) == {"cache_control", "speed", "inference_geo"}, f"named: {dropped}"
    sent = bedrock.last().body
    assert sent["stop_sequences"] == ["never"] and not {"cache_control", "speed", "inference_geo"} & set(sent)


def test_claude_on_bedrock_streams_in_anthropics_grammar_and_is_metered_to_the_token(gateway, bedrock):
    stack, key, client = gateway
    events, final = assert_prompt_caching_is_metered_write_then_read(stack, key, client, CLAUDE, bedrock)
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert final.content[0].text == f"Hello from {upstream(CLAUDE)}: hello there"
    assert stack.month(key, requests=2)["cost_usd"] > 0, "Claude on Bedrock must be priced from litellm's price map"


def test_a_tool_result_round_trips_through_claude_on_bedrock(gateway, bedrock):
    _, _, client = gateway
    assert_tool_result_round_trips(client, CLAUDE)


def test_an_image_reaches_claude_on_bedrock_as_the_caller_sent_it(gateway, bedrock):
    _, _, client = gateway
    content = [IMAGE, {"type": "text", "text": "what is this"}]
    message = client.messages.create(model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": content}])
    assert message.content[0].text == f"Hello from {upstream(CLAUDE)}: what is this"
    assert bedrock.last().body["messages"][0]["content"] == content


def test_signed_thinking_round_trips_through_claude_on_bedrock(gateway, bedrock):
    _, _, client = gateway
    assert_signed_thinking_round_trips(client, CLAUDE, bedrock)


def test_nova_answers_streams_and_round_trips_a_tool_through_converse(gateway, bedrock):
    stack, key, client = gateway
    message = client.messages.create(model=NOVA, max_tokens=50, messages=ask())
    assert message.model == NOVA and message.content[0].text == f"Hello from {upstream(NOVA)}: hello there"
    assert bedrock.last().path.endswith("/converse")
    with client.messages.stream(model=NOVA, max_tokens=50, messages=ask()) as stream:
        assert stream.get_final_message().content[0].text == f"Hello from {upstream(NOVA)}: hello there"
    assert bedrock.last().path.endswith("/converse-stream")
    first = client.messages.create(model=NOVA, max_tokens=50, tools=[TOOL], messages=ask("find cats"))
    call = next(block for block in first.content if block.type == "tool_use")
    second = client.messages.create(model=NOVA, max_tokens=50, tools=[TOOL], messages=[
        *ask("find cats"), {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "three cats"}]}])
    assert second.content[0].text == "Tool said: three cats"
    told = bedrock.reported_totals()
    month = stack.month(key, requests=4)
    assert (month["input_tokens"], month["output_tokens"]) == (told["input_tokens"], told["output_tokens"])


@pytest.mark.parametrize("model", [CLAUDE, NOVA], ids=["claude-invoke-model", "nova-converse"])
@pytest.mark.parametrize("name, status, error_type", [
    ("ThrottlingException", 429, "rate_limit_error"),
    ("ModelNotReadyException", 529, "overloaded_error"),
    ("ServiceUnavailableException", 529, "overloaded_error"),
    ("ValidationException", 400, "invalid_request_error"),
    ("AccessDeniedException", 502, "api_error"),  # the gateway's role, not the caller, lacks the access
    ("ModelTimeoutException", 504, "timeout_error"),
])
def test_bedrocks_named_errors_reach_the_caller_in_anthropics_terms(gateway, bedrock, model, name, status, error_type):
    _, _, client = gateway
    bedrock.error(upstream(model), name, f"Bedrock says {name}")
    assert_error_in_anthropics_terms(client, model, name, status, error_type)


def test_an_exception_frame_mid_stream_becomes_an_error_event(gateway, bedrock):
    _, _, client = gateway
    bedrock.stream_exception(upstream(CLAUDE), "throttlingException", "slow down", after_events=4)
    with pytest.raises(anthropic.APIStatusError) as raised:
        with client.messages.stream(model=CLAUDE, max_tokens=50, messages=ask("one two three four five six")) as s:
            for _ in s:
                pass
    assert raised.value.body["error"]["type"] == "rate_limit_error" and "slow down" in str(raised.value.body)


def test_anthropic_falls_back_to_claude_on_bedrock_and_bedrocks_overload_falls_back_again(gateway, fake, bedrock):
    _, _, client = gateway
    fake.fail("claude-sonnet-4-5", status=529)
    raw = client.messages.with_raw_response.create(model=DIRECT_CLAUDE, max_tokens=50, messages=ask(),
                                                   extra_body={"fallbacks": [CLAUDE, NOVA]})
    assert raw.parse().model == CLAUDE and raw.headers["x-edenai-model"] == CLAUDE
    fake.fail("claude-sonnet-4-5", status=529)
    bedrock.error(upstream(CLAUDE), "ModelNotReadyException")
    with client.messages.stream(model=DIRECT_CLAUDE, max_tokens=50, messages=ask(),
                                extra_body={"fallbacks": [CLAUDE, NOVA]}) as stream:
        assert stream.get_final_message().model == NOVA
    assert json.loads(json.dumps(bedrock.last().body))["messages"][0]["content"][0]["text"] == "hello there"


COUNTED = [{"role": "user", "content": "one two three four"},
           {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup",
                                              "input": {"query": "x"}}]},
           {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "five six"}]}]


def test_count_tokens_asks_bedrocks_count_tokens_for_claude(gateway, bedrock):
    stack, key, client = gateway
    raw = client.messages.with_raw_response.count_tokens(model=CLAUDE, system="be brief", tools=[TOOL],
                                                         messages=COUNTED)
    assert raw.parse().input_tokens == 2 + 4 + 2 + 10, "Bedrock's CountTokens answer (the fake counts words)"
    assert raw.headers["x-edenai-token-count-method"] == "bedrock_count_tokens"
    sent = bedrock.last()
    assert sent.path.endswith("/count-tokens") and "AWS4-HMAC-SHA256" in sent.headers["authorization"]
    blob = sent.body["input"]["invokeModel"]["body"]
    inner = json.loads(base64.b64decode(blob, validate=True))  # a blob: base64 in CountTokens' JSON
    assert inner["anthropic_version"] == "bedrock-2023-05-31" and inner["system"] == "be brief"


def test_count_tokens_for_nova_is_made_at_the_gateway_where_bedrock_refuses_to_count(gateway, bedrock):
    """Bedrock's CountTokens refuses Nova ("The provided model doesn't support counting tokens"):
    the gateway counts with tiktoken's cl100k_base, as litellm's token_counter counted it."""
    import litellm

    _, _, client = gateway
    before = bedrock.count()
    raw = client.messages.with_raw_response.count_tokens(model=NOVA, system="be brief", tools=[TOOL],
                                                         messages=COUNTED)
    assert raw.status_code == 200, "the count must not be Bedrock's refusal"
    assert raw.headers["x-edenai-token-count-method"] == "local_tokenizer"
    assert bedrock.count() == before, "Nova's count must not be asked of Bedrock, which refuses it"
    litellms = litellm.token_counter(model=NOVA, messages=[{"role": "system", "content": "be brief"}, *COUNTED],
                                     tools=[TOOL])
    assert abs(raw.parse().input_tokens - litellms) <= litellms // 2, \
        f"counted {raw.parse().input_tokens}, litellm's tokenizer {litellms}"
    longer = client.messages.count_tokens(model=NOVA, system="be brief", tools=[TOOL], messages=[
        {"role": "user", "content": " ".join(["one two three four"] * 51)}, *COUNTED[1:]])
    assert longer.input_tokens == raw.parse().input_tokens + 200, "200 more words of one token each"


def test_a_pdf_reaches_claude_on_bedrock_as_the_caller_sent_it(gateway, bedrock):
    _, _, client = gateway
    content = [{**PDF_DOCUMENT, "title": "report", "citations": {"enabled": True}},
               {"type": "text", "text": "summarise this"}]
    message = client.messages.create(model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": content}])
    assert message.content[0].text == f"Hello from {upstream(CLAUDE)}: summarise this"
    assert bedrock.last().body["messages"][0]["content"] == content, "InvokeModel takes Anthropic's document block"


def test_a_pdf_reaches_nova_as_a_converse_document_block(gateway, bedrock):
    _, _, client = gateway
    with client.messages.stream(model=NOVA, max_tokens=50, messages=[
            {"role": "user", "content": [PDF_DOCUMENT, {"type": "text", "text": "summarise this"}]}]) as stream:
        assert stream.get_final_message().content[0].text == f"Hello from {upstream(NOVA)}: summarise this"
    sent = bedrock.last()
    assert sent.path.endswith("/converse-stream")
    document = sent.body["messages"][0]["content"][0]["document"]
    assert document["format"] == "pdf" and document["source"] == {"bytes": PDF}, f"Bedrock got {document}"


def test_messages_parse_on_claude_on_bedrock_sends_output_config_as_invoke_model_takes_it(gateway, bedrock):
    """Bedrock's InvokeModel takes Claude's `output_config.format` (Bedrock user guide,
    "Get validated JSON results from models"): the body goes as sent."""
    _, _, client = gateway
    assert_output_config_reaches_claude_as_sent(client, CLAUDE, bedrock)


def test_messages_parse_on_nova_forces_a_json_tool_whose_input_is_the_answer(gateway, bedrock):
    """Converse asks for the schema as the input of one forced tool (its toolConfig, as litellm
    did); the tool's input comes back as the answer's text, the model's words around it left out."""
    _, _, client = gateway
    parsed_forecast(client, NOVA)
    config = bedrock.last().body["toolConfig"]
    (tool,) = config["tools"]
    assert config["toolChoice"] == {"tool": {"name": tool["toolSpec"]["name"]}}
    assert tool["toolSpec"]["inputSchema"]["json"]["required"] == Forecast.model_json_schema()["required"]


@pytest.mark.parametrize("block", ["document", "image", *(LOST_BLOCKS[name] for name in CONVERSE_LOSES)],
                         ids=["url-document", "url-image", *CONVERSE_LOSES])
def test_a_block_converse_cannot_carry_for_nova_is_refused(gateway, bedrock, block):
    _, _, client = gateway
    assert_what_litellm_would_lose_is_refused(client, NOVA, bedrock, block)


def test_claude_on_bedrock_gets_a_text_document_and_a_url_source_as_sent(gateway, bedrock):
    """InvokeModel takes Anthropic's body: nothing there is lost or fetched by the gateway."""
    _, _, client = gateway
    url_image = {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}
    content = [LOST_BLOCKS["text-document"], url_image,
               {"type": "text", "text": "what does it say"}]
    client.messages.create(model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": content}])
    assert bedrock.last().body["messages"][0]["content"] == content


def test_a_callers_unfetchable_url_cannot_open_novas_circuit_for_everyone(gateway, bedrock):
    """litellm fetched a URL source itself, and an unreachable one came back as a 502: three of
    them opened Nova's shared circuit. Refused as the caller's 400, it never touches Nova's health."""
    _, _, client = gateway
    unreachable = {"type": "document", "source": {"type": "url", "url": "https://unreachable.invalid/a.pdf"}}
    for _ in range(4):
        with pytest.raises(anthropic.BadRequestError):
            client.messages.create(model=NOVA, max_tokens=50, messages=[{"role": "user", "content": [unreachable]}])
    routed = client.messages.create(model="@edenai", max_tokens=50, messages=ask(),
                                    extra_body={"router_candidates": [NOVA]})
    assert routed.model == NOVA, "another caller must still reach Nova"


def test_a_pdf_a_tool_returned_reaches_nova_inside_the_converse_tool_result(gateway, bedrock):
    _, _, client = gateway
    message = client.messages.create(model=NOVA, max_tokens=50, tools=[TOOL], messages=tool_returned(PDF_DOCUMENT))
    assert message.content[0].text == "Tool said: the report"
    result = bedrock.last().body["messages"][2]["content"][0]["toolResult"]
    document = result["content"][1]["document"]
    assert document["format"] == "pdf" and document["source"] == {"bytes": PDF}, f"Bedrock got {result}"
