"""Non-streamed messages end to end: official SDK -> gateway -> litellm -> fake provider.

Each field the caller sends is checked where it matters: in what reached the
provider (the fake records it) as well as in what came back.
"""

from __future__ import annotations

import anthropic
import pytest

from tests.support.stack import ANTHROPIC_TEST_KEY, OPENAI_TEST_KEY

CLAUDE = "anthropic/claude-sonnet-4-5"
GPT = "openai/gpt-4o-mini"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
}


def ask(text="hello"):
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("model, path, credential_header, credential", [
    (CLAUDE, "/v1/messages", "x-api-key", ANTHROPIC_TEST_KEY),
    (GPT, "/v1/chat/completions", "authorization", f"Bearer {OPENAI_TEST_KEY}"),
])
def test_each_provider_is_called_in_its_own_dialect_with_the_gateway_credential(
        client, fake, model, path, credential_header, credential):
    message = client.messages.create(model=model, max_tokens=100, messages=ask("hello there"))
    assert message.type == "message" and message.role == "assistant"
    assert message.model == model
    assert message.id
    assert message.content[0].type == "text"
    assert message.content[0].text == f"Hello from {model.split('/')[1]}: hello there"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 2 and message.usage.output_tokens == 5
    sent = fake.last()
    assert sent.path == path
    assert sent.headers[credential_header] == credential
    assert sent.body["model"] == model.split("/")[1]


def test_the_response_carries_the_serving_model_and_attempts_headers(client):
    raw = client.messages.with_raw_response.create(model=CLAUDE, max_tokens=10, messages=ask())
    assert raw.headers["x-edenai-model"] == CLAUDE
    assert raw.headers["x-edenai-attempts"].startswith(f"{CLAUDE};status=200;ms=")
    assert raw.headers["request-id"].startswith("req_")


def test_a_bare_model_name_resolves_when_one_provider_has_it(client, fake):
    message = client.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=ask())
    assert message.model == CLAUDE
    assert fake.last().path == "/v1/messages"


@pytest.mark.parametrize("model, needle", [
    ("anthropic/claude-nonexistent", "not in this gateway's catalogue"),
    ("nosuchprovider/model", "provider 'nosuchprovider' is not configured"),
    ("no-such-model", "not in this gateway's catalogue"),
])
def test_unknown_models_are_404_not_found_as_anthropic_answers(client, fake, model, needle):
    with pytest.raises(anthropic.NotFoundError, match=needle) as caught:
        client.messages.create(model=model, max_tokens=10, messages=ask())
    assert caught.value.body["error"]["type"] == "not_found_error"
    assert fake.count() == 0


def test_a_malformed_model_id_is_a_400(client, fake):
    with pytest.raises(anthropic.BadRequestError, match="Malformed model id"):
        client.messages.create(model="anthropic/", max_tokens=10, messages=ask())
    assert fake.count() == 0


def test_system_as_string_reaches_the_provider(client, fake):
    client.messages.create(model=CLAUDE, max_tokens=10, system="Be brief.", messages=ask())
    assert fake.last().body["system"] == "Be brief."


def test_system_as_blocks_reaches_the_provider_with_cache_control(client, fake):
    system = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    message = client.messages.create(model=CLAUDE, max_tokens=10, system=system, messages=ask())
    assert fake.last().body["system"] == system
    assert message.usage.cache_creation_input_tokens > 0


def test_system_role_messages_reach_claude_where_they_stand(client, fake):
    messages = [{"role": "system", "content": "Second."}, {"role": "user", "content": "hi"},
                {"role": "system", "content": [{"type": "text", "text": "Third."}]}]
    client.messages.create(model=CLAUDE, max_tokens=10, system="First.", messages=messages)
    sent = fake.last().body
    assert sent["system"] == "First." and sent["messages"] == messages


def test_system_reaches_an_openai_provider_as_a_system_message(client, fake):
    client.messages.create(model=GPT, max_tokens=10, system="Be brief.", messages=ask())
    first = fake.last().body["messages"][0]
    assert first["role"] == "system" and "Be brief." in str(first["content"])


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_a_tool_use_round_trip(client, fake, model):
    first = client.messages.create(model=model, max_tokens=200, tools=[WEATHER_TOOL],
                                   messages=ask("weather in Paris"))
    assert first.stop_reason == "tool_use"
    call = next(block for block in first.content if block.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"query": "weather in Paris"}
    second = client.messages.create(
        model=model, max_tokens=200, tools=[WEATHER_TOOL],
        messages=[*ask("weather in Paris"),
                  {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]}])
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == "Tool said: sunny"


def test_tools_and_tool_choice_reach_an_anthropic_provider_verbatim(client, fake):
    choice = {"type": "tool", "name": "get_weather"}
    client.messages.create(model=CLAUDE, max_tokens=50, tools=[WEATHER_TOOL], tool_choice=choice, messages=ask())
    sent = fake.last().body
    assert sent["tools"] == [WEATHER_TOOL]
    assert sent["tool_choice"] == choice


def test_tools_and_tool_choice_reach_an_openai_provider_as_functions(client, fake):
    client.messages.create(model=GPT, max_tokens=50, tools=[WEATHER_TOOL],
                           tool_choice={"type": "tool", "name": "get_weather"}, messages=ask())
    sent = fake.last().body
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tool_choice"]["function"]["name"] == "get_weather"


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_stop_sequences_are_honoured(client, fake, model):
    message = client.messages.create(model=model, max_tokens=50, stop_sequences=["there"],
                                     messages=ask("hello there friend"))
    assert message.content[0].text.endswith("hello ")
    if model == CLAUDE:
        assert fake.last().body["stop_sequences"] == ["there"]
        assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "there")
    else:
        assert fake.last().body["stop"] == ["there"]
        assert message.stop_reason in ("stop_sequence", "end_turn")


def test_max_tokens_truncation_is_reported(client):
    message = client.messages.create(model=CLAUDE, max_tokens=2, messages=ask("one two three four"))
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 2


def test_a_thinking_block_keeps_its_signature(client, fake):
    thinking = {"type": "enabled", "budget_tokens": 1024}
    message = client.messages.create(model=CLAUDE, max_tokens=2000, thinking=thinking, messages=ask("why?"))
    assert fake.last().body["thinking"] == thinking
    block = message.content[0]
    assert block.type == "thinking" and block.thinking == "Let me think about: why?"
    assert block.signature.startswith("sig_fake_")
    follow_up = client.messages.create(
        model=CLAUDE, max_tokens=2000, thinking=thinking,
        messages=[*ask("why?"), {"role": "assistant", "content": [b.model_dump() for b in message.content]},
                  *ask("and then?")])
    assert follow_up.content[0].type == "thinking"
    assert fake.last().body["messages"][1]["content"][0]["signature"] == block.signature


def test_sampling_parameters_reach_the_provider(client, fake):
    # anthropic 2.x no longer has named sampling parameters; the wire fields still exist.
    client.messages.create(model=CLAUDE, max_tokens=10, messages=ask(),
                           extra_body={"temperature": 0.5, "top_p": 0.9, "top_k": 40})
    sent = fake.last().body
    assert (sent["temperature"], sent["top_p"], sent["top_k"]) == (0.5, 0.9, 40)


def test_only_metadata_user_id_goes_upstream(client, fake):
    client.messages.create(model=CLAUDE, max_tokens=10, messages=ask(), metadata={"user_id": "user-42"})
    assert fake.last().body["metadata"] == {"user_id": "user-42"}


def test_the_anthropic_beta_header_reaches_an_anthropic_provider(client, fake):
    client.messages.create(model=CLAUDE, max_tokens=10, messages=ask(),
                           extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"})
    assert fake.last().headers["anthropic-beta"] == "prompt-caching-2024-07-31"


def test_the_anthropic_beta_header_does_not_reach_an_openai_provider(client, fake):
    client.messages.create(model=GPT, max_tokens=10, messages=ask(),
                           extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"})
    assert "anthropic-beta" not in fake.last().headers


@pytest.mark.parametrize("smuggled", [
    {"api_base": "http://127.0.0.1:9/evil"},
    {"base_url": "http://127.0.0.1:9/evil"},
    {"api_key": "sk-attacker"},
    {"custom_llm_provider": "openai"},
    {"litellm_params": {"api_base": "http://127.0.0.1:9/evil"}},
    {"metadata": {"user_id": "u", "api_base": "http://127.0.0.1:9/evil"}},
])
def test_connection_settings_in_the_body_are_refused_before_any_upstream_call(client, fake, smuggled):
    with pytest.raises(anthropic.BadRequestError, match="may not be set by the caller"):
        client.messages.create(model=CLAUDE, max_tokens=10, messages=ask(), extra_body=smuggled)
    assert fake.count() == 0


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_unknown_metadata_stays_at_the_gateway_and_is_named_as_dropped(client, fake, stream):
    extra = {"extra_body": {"metadata": {"user_id": "u", "team": "blue"}, "top_k": 5}}
    if stream:
        with client.messages.stream(model=CLAUDE, max_tokens=10, messages=ask(), **extra) as events:
            events.get_final_message()
            headers = events.response.headers
    else:
        headers = client.messages.with_raw_response.create(model=CLAUDE, max_tokens=10, messages=ask(),
                                                           **extra).headers
    assert fake.last().body["metadata"] == {"user_id": "u"} and fake.last().body["top_k"] == 5
    assert fake.last().headers["x-api-key"] == ANTHROPIC_TEST_KEY
    assert headers.get("x-edenai-dropped-fields") == "metadata.team", \
        "a caller sending to Claude must be told what of its request Claude was not sent, and only that"


@pytest.mark.parametrize("header", ["x-api-key", "Authorization", "host", "api-key", "x-goog-api-key"])
def test_credentials_or_host_in_extra_headers_are_refused(client, fake, header):
    with pytest.raises(anthropic.BadRequestError, match="extra_headers"):
        client.messages.create(model=CLAUDE, max_tokens=10, messages=ask(),
                               extra_body={"extra_headers": {header: "sk-attacker"}})
    assert fake.count() == 0


def test_harmless_extra_headers_reach_the_provider(client, fake):
    client.messages.create(model=CLAUDE, max_tokens=10, messages=ask(),
                           extra_body={"extra_headers": {"x-trace-id": "abc123"}})
    assert fake.last().headers["x-trace-id"] == "abc123"


@pytest.mark.parametrize("value", ["a\r\nx-api-key: stolen", "a\nb"])
def test_header_injection_through_extra_headers_is_refused(client, fake, value):
    with pytest.raises(anthropic.BadRequestError, match="not allowed in HTTP headers"):
        client.messages.create(model=CLAUDE, max_tokens=10, messages=ask(),
                               extra_body={"extra_headers": {"x-trace-id": value}})
    assert fake.count() == 0


def test_anthropic_only_fields_do_not_reach_an_openai_provider(client, fake):
    client.messages.create(model=GPT, max_tokens=2000, messages=ask(),
                           thinking={"type": "enabled", "budget_tokens": 1024}, extra_body={"top_k": 5})
    sent = fake.last()
    assert sent.path == "/v1/chat/completions"
    assert "top_k" not in sent.body and "thinking" not in sent.body


def test_a_provider_without_api_base_never_reads_base_urls_from_the_environment():
    from handler.providers.catalogue import Model, Provider
    from handler.pipeline.calls import build_call

    body = {"model": "anthropic/x", "messages": [{"role": "user", "content": "hi"}]}
    anthropic_call = build_call(body, Model("anthropic/x", Provider("anthropic", "anthropic"), "x"),
                                anthropic_beta=None, timeout=5)
    openai_call = build_call(body, Model("openai/x", Provider("openai", "openai"), "x"),
                             anthropic_beta=None, timeout=5)
    assert anthropic_call["api_base"] == "https://api.anthropic.com"
    assert openai_call["api_base"] == "https://api.openai.com/v1"
    assert anthropic_call["api_key"] == "none"  # never empty: litellm would take the environment's
