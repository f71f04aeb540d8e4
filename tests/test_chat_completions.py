"""OpenAI-compatible providers are spoken to in Chat Completions directly, and answer in Anthropic's terms.

The translation is the gateway's own (handler/translation/chat_completions.py), so what
it sends and what the caller gets back are specified here: first as pure
functions, then end to end through the official SDK against the fake, which
speaks OpenAI's wire format (tests/test_fake_upstream.py proves it against
litellm and the OpenAI SDK).
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import anthropic
import httpx
import pytest

from handler.translation import chat_completions
from handler.translation.chat_stream import StreamTranslator
from handler.protocol.errors import GatewayError
from handler.protocol.usage import ESTIMATED
from handler.translation.openai_shape import provider_tool_id
from tests.support.sse_grammar import check, parse
from tests.support.stack import OPENAI_TEST_KEY, TEST_MODELS, new_stack, providers_document, serve

GPT = "openai/gpt-4o-mini"
CLAUDE = "anthropic/claude-sonnet-4-5"
WEATHER = {"name": "get_weather", "description": "Current weather for a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
# Claude Code's MCP tools are often named past OpenAI's 64 characters.
LONG_NAME = "mcp__acme_internal_knowledge_base__search_engineering_design_documents_by_keyword"


def ask(text="hello"):
    return [{"role": "user", "content": text}]


def call(**fields):
    return {"model": GPT, "messages": ask(), "max_tokens": 100, **fields}


# --------------------------------------------------------------------------- what the provider is sent


def test_the_system_prompt_comes_first_and_tool_results_follow_the_assistants_calls_at_once():
    history = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Looking."},
                                          {"type": "tool_use", "id": "call_1", "name": "get_weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "text", "text": "and be brief"},
                                     {"type": "tool_result", "tool_use_id": "call_1", "content": [
                                         {"type": "text", "text": "sunny"}]}]},
    ]
    sent = chat_completions.request(call(messages=history, system=[{"type": "text", "text": "Be kind."}],
                                         tools=[WEATHER]))
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "tool", "user"]
    assert sent["messages"][0] == {"role": "system", "content": "Be kind."}
    assert sent["messages"][2]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]
    assert sent["messages"][3] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    assert sent["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "parameters": WEATHER["input_schema"], "description": WEATHER["description"]}}]


def test_images_and_pdfs_become_openai_content_parts():
    pdf = {"type": "document", "title": "q3.pdf",
           "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}}
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}}
    linked = {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
    note = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain notes"}}
    [user] = chat_completions.request(call(messages=[{"role": "user", "content": [pdf, image, linked, note]}]))["messages"]
    assert user["content"] == [
        {"type": "file", "file": {"filename": "q3.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "plain notes"},
    ]


def test_a_document_chat_completions_cannot_fetch_is_a_400_a_fallback_may_still_take():
    linked = {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}
    with pytest.raises(GatewayError) as refused:
        chat_completions.request(call(messages=[{"role": "user", "content": [linked]}]))
    assert refused.value.status == 400 and refused.value.retryable and "'url' source" in refused.value.message


def test_tool_choice_and_the_other_sampling_fields_in_openais_terms():
    sent = chat_completions.request(call(
        tools=[WEATHER], tool_choice={"type": "any", "disable_parallel_tool_use": True}, temperature=0.2,
        top_p=0.9, stop_sequences=["END"], metadata={"user_id": "u-42"}, stream=True))
    assert (sent["tool_choice"], sent["parallel_tool_calls"]) == ("required", False)
    assert (sent["temperature"], sent["top_p"], sent["stop"], sent["user"]) == (0.2, 0.9, ["END"], "u-42")
    assert sent["stream_options"] == {"include_usage": True}, "without it OpenAI never reports a stream's usage"
    named = chat_completions.request(call(tools=[WEATHER], tool_choice={"type": "tool", "name": "get_weather"}))
    assert named["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


def test_the_output_limit_goes_in_the_field_the_family_says():
    assert chat_completions.request(call())["max_tokens"] == 100
    sent = chat_completions.request(call(max_tokens_field="max_completion_tokens"))
    assert sent["max_completion_tokens"] == 100 and "max_tokens" not in sent


def test_a_structured_output_schema_is_made_strict_as_openai_requires():
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "tags": {
        "type": "array", "items": {"type": "object", "properties": {"label": {"type": "string"}}}}}}
    sent = chat_completions.request(call(output_config={"format": {"type": "json_schema", "schema": schema}}))
    form = sent["response_format"]
    assert form["type"] == "json_schema" and form["json_schema"]["strict"] is True
    strict = form["json_schema"]["schema"]
    assert strict["additionalProperties"] is False and strict["required"] == ["name", "tags"]
    assert strict["properties"]["tags"]["items"]["required"] == ["label"]
    assert "additionalProperties" not in schema, "the caller's schema is not changed in place"


def test_a_tool_name_past_openais_limit_is_shortened_uniquely_and_restored_in_the_answer():
    other = LONG_NAME.replace("keyword", "author")
    tools = [{**WEATHER, "name": LONG_NAME}, {**WEATHER, "name": other}]
    sent = [t["function"]["name"] for t in chat_completions.request(call(tools=tools))["tools"]]
    assert all(len(name) <= 64 for name in sent) and len(set(sent)) == 2
    answer = {"id": "chatcmpl-1", "choices": [{"finish_reason": "tool_calls", "message": {"tool_calls": [
        {"id": "call_9", "type": "function", "function": {"name": sent[0], "arguments": "{}"}}]}}]}
    [block] = chat_completions.message(answer, "gpt", chat_completions.tool_names(call(tools=tools)))["content"]
    assert block["name"] == LONG_NAME and provider_tool_id(block["id"]) == "call_9"


# --------------------------------------------------------------------------- what the caller gets back


def test_cached_prompt_tokens_are_cache_reads_and_input_tokens_the_rest_as_anthropic_counts():
    answer = {"id": "chatcmpl-1", "choices": [{"finish_reason": "stop", "message": {"content": "hi"}}],
              "usage": {"prompt_tokens": 2000, "completion_tokens": 7,
                        "prompt_tokens_details": {"cached_tokens": 1536}}}
    assert chat_completions.message(answer, "gpt")["usage"] == {
        "input_tokens": 464, "output_tokens": 7, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1536}


@pytest.mark.parametrize("finish, stop_reason", [("stop", "end_turn"), ("length", "max_tokens"),
                                                 ("tool_calls", "tool_use"), ("content_filter", "refusal")])
def test_finish_reasons_become_anthropics_stop_reasons(finish, stop_reason):
    answer = {"id": "x", "choices": [{"finish_reason": finish, "message": {"content": "a"}}]}
    assert chat_completions.message(answer, "gpt")["stop_reason"] == stop_reason


def test_a_refusal_is_the_answers_text_with_stop_reason_refusal():
    answer = {"id": "x", "choices": [{"finish_reason": "stop", "message": {"content": None,
                                                                         "refusal": "I can't help with that."}}]}
    message = chat_completions.message(answer, "gpt")
    assert message["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert message["stop_reason"] == "refusal"


def test_reasoning_a_provider_returns_is_a_thinking_block_before_the_text():
    answer = {"id": "x", "choices": [{"finish_reason": "stop", "message": {
        "content": "42", "reasoning_content": "six times seven"}}]}
    assert [b["type"] for b in chat_completions.message(answer, "deepseek")["content"]] == ["thinking", "text"]


def test_tool_arguments_that_are_not_json_reach_the_caller_whole_rather_than_failing_the_answer():
    answer = {"id": "x", "choices": [{"finish_reason": "tool_calls", "message": {"tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"city": "Par'}}]}}]}
    [block] = chat_completions.message(answer, "gpt")["content"]
    assert block["input"] == {"_raw": '{"city": "Par'}


def test_an_answer_without_choices_is_a_502_not_an_empty_message():
    with pytest.raises(GatewayError) as failed:
        chat_completions.message({"id": "x", "choices": []}, "gpt")
    assert failed.value.status == 502


def _chunk(delta=None, finish=None, usage=None, choices=True):
    chunk = {"id": "chatcmpl-7", "object": "chat.completion.chunk", "choices": []}
    if choices:
        chunk["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    if usage:
        chunk["usage"] = usage
    return chunk


def _run(chunks, **translator):
    stream = StreamTranslator("gpt", 12, **translator)
    return [event for chunk in chunks for event in stream.feed(chunk)] + stream.finish()


def _translator_after(chunks):
    stream = StreamTranslator("gpt", 12)
    for chunk in chunks:
        stream.feed(chunk)
    return stream, stream.finish()


def test_a_stream_of_text_and_two_tool_calls_is_anthropics_grammar_with_the_final_usage():
    events = _run([
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": "Checking "}), _chunk({"content": "both."}),
        _chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                                "function": {"name": "get_weather", "arguments": ""}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        _chunk({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                                "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]}),
        _chunk(finish="tool_calls"),
        _chunk(choices=False, usage={"prompt_tokens": 30, "completion_tokens": 9}),
    ])
    raw = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)
    check(parse(raw))
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "ping"] and names[-2:] == ["message_delta", "message_stop"]
    starts = [data["content_block"] for name, data in events if name == "content_block_start"]
    assert [b["type"] for b in starts] == ["text", "tool_use", "tool_use"]
    assert [provider_tool_id(b["id"]) for b in starts[1:]] == ["call_a", "call_b"]
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert delta["usage"]["input_tokens"] == 30 and delta["usage"]["output_tokens"] == 9
    assert events[0][1]["message"]["usage"]["input_tokens"] == 12, "message_start carries the estimate"


def test_a_stream_that_never_finishes_gets_no_message_stop_so_the_relay_calls_it_cut():
    events = _run([_chunk({"content": "Hel"})])
    assert "message_stop" not in [name for name, _ in events]


def test_a_finished_stream_without_a_usage_chunk_estimates_its_usage_and_says_so():
    stream, events = _translator_after([_chunk({"reasoning_content": "y" * 30}), _chunk({"content": "x" * 30}),
                                        _chunk(finish="stop")])
    assert events[-2][1]["usage"] == {"input_tokens": 12, "output_tokens": 20}, "thinking is output too"
    assert stream.usage_estimated is True


def test_a_usage_chunk_that_reports_no_output_for_what_was_streamed_is_not_taken_at_its_word():
    stream, events = _translator_after([_chunk(usage={"prompt_tokens": 5, "completion_tokens": 0}),
                                        _chunk({"content": "x" * 300}), _chunk(finish="stop")])
    assert events[-2][1]["usage"]["output_tokens"] == 100 and stream.usage_estimated is True


def test_a_provider_that_leaves_reasoning_out_of_completion_tokens_is_metered_on_the_total():
    stream, events = _translator_after([_chunk({"content": "hi"}), _chunk(finish="stop"), _chunk(
        choices=False, usage={"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 600})])
    assert events[-2][1]["usage"]["output_tokens"] == 580 and stream.usage_estimated is False


def test_tool_calls_that_end_with_stop_are_still_tool_use_so_agent_loops_run_them():
    """Gemini's OpenAI-compatible endpoint and sglang finish a turn of calls with "stop"."""
    events = _run([_chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{}"}}]}),
                   _chunk(finish="stop")])
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    answer = {"id": "x", "choices": [{"finish_reason": "stop", "message": {"tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}]}
    assert chat_completions.message(answer, "gemini")["stop_reason"] == "tool_use"


def test_calls_without_an_index_are_told_apart_by_their_ids():
    """Gemini's OpenAI-compatible stream sends no `index`: a new id is a new call."""
    events = _run([_chunk({"tool_calls": [{"id": "call_a", "function": {"name": "f", "arguments": '{"x":1}'}}]}),
                   _chunk({"tool_calls": [{"id": "call_b", "function": {"name": "g", "arguments": '{"y":2}'}}]}),
                   _chunk(finish="tool_calls")])
    check(parse("".join(f"event: {n}\ndata: {json.dumps(d)}\n\n" for n, d in events)))
    starts = [d["content_block"] for n, d in events if n == "content_block_start"]
    assert [(b["name"], provider_tool_id(b["id"])) for b in starts] == [("f", "call_a"), ("g", "call_b")]


def test_arguments_for_a_call_already_closed_fail_the_stream_rather_than_being_lost():
    with pytest.raises(GatewayError, match="closed"):
        _run([_chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": ""}}]}),
              _chunk({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": ""}}]}),
              _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x": 1}'}}]})])


@pytest.mark.parametrize("finish", ["error", "abort"])
def test_a_generation_the_provider_says_failed_is_an_error_not_a_whole_answer(finish):
    with pytest.raises(GatewayError) as failed:
        _run([_chunk({"content": "Hel"}), _chunk(finish=finish)])
    assert failed.value.status == 502


def test_answers_without_ids_get_fresh_distinct_ones():
    answer = {"id": None, "choices": [{"finish_reason": "tool_calls", "message": {"tool_calls": [
        {"id": "", "type": "function", "function": {"name": "f", "arguments": "{}"}},
        {"id": "", "type": "function", "function": {"name": "g", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4}}
    message = chat_completions.message(answer, "gemini")
    first, second = (block["id"] for block in message["content"])
    assert first != second and first.startswith("toolu_") and len(message["id"]) > len("msg_")


def test_a_whole_answer_without_usage_is_metered_on_estimates_flagged():
    answer = {"id": "x", "choices": [{"finish_reason": "stop", "message": {"content": "x" * 30}}]}
    message = chat_completions.message(answer, "gpt", estimate_input=lambda: 7)
    assert message["usage"]["input_tokens"] == 7 and message["usage"]["output_tokens"] >= 10
    assert message[ESTIMATED] is True


def test_content_given_as_a_list_of_parts_is_the_answers_text():
    answer = {"id": "x", "choices": [{"finish_reason": "stop", "message": {"content": [
        {"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}]}}]}
    assert chat_completions.message(answer, "gpt")["content"] == [{"type": "text", "text": "Hello there"}]


def test_a_tool_result_keeps_its_error_flag_search_results_and_text_documents_in_words():
    result = {"type": "tool_result", "tool_use_id": "c1", "is_error": True, "content": [
        {"type": "text", "text": "not found"},
        {"type": "search_result", "title": "Docs", "source": "https://d", "content": [{"type": "text", "text": "a"}]},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}}]}
    [tool] = chat_completions.request(call(messages=[{"role": "user", "content": [result]}]))["messages"]
    assert tool["content"] == "Error: not found\nDocs\nhttps://d\na\nnotes"


def test_a_property_named_properties_is_a_property_not_a_keyword():
    schema = {"type": "object", "properties": {"properties": {"type": "object", "properties": {
        "x": {"type": "string"}}}}}
    strict = chat_completions.strict_schema(schema)
    assert strict["properties"]["properties"]["required"] == ["x"]
    assert set(strict["properties"]) == {"properties"}, "no keyword was added to the map of properties"


def test_an_input_estimate_counts_images_as_images_not_as_their_base64():
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A" * 1_000_000}}
    body = chat_completions.request(call(messages=[{"role": "user", "content": [image]}]))
    assert chat_completions.estimated_input_tokens(body) < 2_000


def test_an_error_chunk_mid_stream_is_an_anthropic_error_event_of_anthropics_types():
    events = _run([_chunk({"content": "Hel"}), {"error": {"type": "server_error", "message": "boom"}}])
    assert ("error", {"type": "error", "error": {"type": "api_error", "message": "boom"}}) in events


# --------------------------------------------------------------------------- end to end, through the SDK


def _answer(client, stream: bool, **request):
    """The answer as a non-streaming caller gets it, or as a streaming one (Claude Code) rebuilds it."""
    if not stream:
        return client.messages.create(**request)
    with client.messages.stream(**request) as events:
        return events.get_final_message()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_an_mcp_tool_named_past_openais_limit_round_trips_through_gpt(client, fake, stream):
    tool = {**WEATHER, "name": LONG_NAME}
    first = _answer(client, stream, model=GPT, max_tokens=200, tools=[tool], messages=ask("use the tool"))
    [use] = [b for b in first.content if b.type == "tool_use"]
    sent = fake.last("/chat/completions").body
    assert len(sent["tools"][0]["function"]["name"]) <= 64, "OpenAI refuses longer function names with a 400"
    assert use.name == LONG_NAME, "Claude Code finds the tool to run by the name it declared"
    history = ask("use the tool") + [{"role": "assistant", "content": [b.model_dump() for b in first.content]},
                                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                                                   "content": "found 3 documents"}]}]
    second = _answer(client, stream, model=GPT, max_tokens=200, tools=[tool], messages=history)
    assert second.stop_reason == "end_turn" and "found 3 documents" in second.content[0].text


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_conversation_whose_assistant_turn_is_a_tool_call_alone_is_answered_by_gpt(client, fake, stream):
    """Claude often answers with a tool call and no text: that turn goes to OpenAI with
    `content: null`, and a streamed request must still be served (it was a 502)."""
    history = ask("weather in Paris?") + [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]}]
    answer = _answer(client, stream, model=GPT, max_tokens=50, tools=[WEATHER], messages=history)
    assert answer.content[0].text == "Tool said: sunny"
    assert fake.last("/chat/completions").body["messages"][1]["content"] is None


@pytest.mark.parametrize("empty", ["", [], None], ids=["empty string", "no blocks", "no content"])
def test_a_tool_result_with_nothing_in_it_still_answers_its_call_at_openai(client, fake, empty):
    """A command that printed nothing gives Claude Code an empty tool result: OpenAI refuses a
    call left without its `tool` message (400), so the empty result is sent as one."""
    result = {"type": "tool_result", "tool_use_id": "toolu_1"}
    history = ask("clear the cache") + [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [result if empty is None else {**result, "content": empty}]}]
    answer = client.messages.create(model=GPT, max_tokens=50, tools=[WEATHER], messages=history)
    assert answer.stop_reason == "end_turn", "the conversation broke at the empty tool result"
    sent = fake.last("/chat/completions").body["messages"]
    assert sent[-1] == {"role": "tool", "tool_call_id": "toolu_1", "content": ""}


def test_parallel_tool_use_disabled_by_the_caller_reaches_openai(client, fake):
    client.messages.create(model=GPT, max_tokens=50, tools=[WEATHER], messages=ask("weather in Paris"),
                           tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    assert fake.last("/chat/completions").body["parallel_tool_calls"] is False


def _long_prompt() -> str:
    return " ".join(f"rule{n}" for n in range(1200))


@pytest.mark.parametrize("stream", [False, True])
def test_a_prompt_openai_serves_from_its_cache_is_metered_and_priced_as_cache_reads(moto_endpoint, fake, stream):
    prices = {"input_cost_per_token": 1e-6, "output_cost_per_token": 4e-6, "cache_read_input_token_cost": 1e-7}
    stack = new_stack(fake.url)
    stack.put_providers(providers_document(fake.url, {**TEST_MODELS, "openai/cached-model": prices}))
    key = stack.add_key()
    with serve(stack) as server:
        client = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0)
        for question in ("first question", "second question"):
            if stream:
                with client.messages.stream(model="openai/cached-model", max_tokens=20, system=_long_prompt(),
                                            messages=ask(question)) as events:
                    usage = events.get_final_message().usage
            else:
                usage = client.messages.create(model="openai/cached-model", max_tokens=20, system=_long_prompt(),
                                               messages=ask(question)).usage
    first, second = stack.records(key, 2)
    assert int(first["cache_read_input_tokens"]) == 0
    assert int(second["cache_read_input_tokens"]) == usage.cache_read_input_tokens == 1152
    assert int(second["input_tokens"]) == usage.input_tokens == int(first["input_tokens"]) - 1152, \
        "input_tokens excludes the cached part, as Anthropic's does"
    assert second["cost_usd"] == (int(second["input_tokens"]) * Decimal("1e-6") + 1152 * Decimal("1e-7")
                                  + int(second["output_tokens"]) * Decimal("4e-6"))


def test_web_search_goes_to_openais_search_models_and_is_listed_as_dropped_for_the_rest(moto_endpoint, fake):
    stack = new_stack(fake.url)
    stack.put_providers(providers_document(fake.url, {**TEST_MODELS, "openai/gpt-4o-search-preview": {}}))
    key = stack.add_key()
    search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3, "allowed_domains": ["lemonde.fr"],
              "user_location": {"type": "approximate", "city": "Lyon", "country": "FR"}}
    body = {"max_tokens": 50, "tools": [search], "messages": ask("news today?")}
    with serve(stack) as server:
        searched = httpx.post(f"{server.url}/v3/v1/messages", headers={"x-api-key": key},
                              json={**body, "model": "openai/gpt-4o-search-preview"})
        plain = httpx.post(f"{server.url}/v3/v1/messages", headers={"x-api-key": key}, json={**body, "model": GPT})
    [to_search, to_plain] = fake.snapshot()
    assert searched.status_code == 200 and to_search.body["web_search_options"] == {
        "user_location": {"type": "approximate", "approximate": {"city": "Lyon", "country": "FR"}}}
    assert "tools" not in to_search.body, "web search is not a function tool"
    assert searched.headers["x-edenai-dropped-fields"] == "tools.web_search.max_uses, tools.web_search.allowed_domains", \
        "web_search_options has no place for them: the caller is told, not left to wonder"
    assert plain.status_code == 200 and plain.headers["x-edenai-dropped-fields"] == "tools.web_search"
    assert "tools" not in to_plain.body and "web_search_options" not in to_plain.body


def test_a_server_tool_no_provider_runs_is_dropped_and_said_while_custom_tools_still_work(client, fake):
    raw = client.messages.with_raw_response.create(
        model=GPT, max_tokens=50, messages=ask("weather in Paris"),
        tools=[WEATHER, {"type": "code_execution_20250825", "name": "code_execution"}])
    assert raw.headers["x-edenai-dropped-fields"] == "tools.code_execution"
    assert [t["function"]["name"] for t in fake.last("/chat/completions").body["tools"]] == ["get_weather"]
    assert raw.parse().stop_reason == "tool_use"


def test_an_openai_compatible_call_never_imports_litellm(fake):
    """The direct route needs none of litellm's 2 s import and 150 MB: a gateway serving only
    Anthropic and OpenAI-compatible models never loads it (a fresh process, so nothing else did)."""
    import subprocess
    import sys

    script = (
        "import asyncio, sys\n"
        "from handler.providers import upstream\n"
        f"call = {{'model': {GPT!r}, 'api_key': {OPENAI_TEST_KEY!r}, 'api_base': {fake.url + '/v1'!r}, 'stream': False,\n"
        "        'timeout': 30, 'max_retries': 0, 'max_tokens': 10, 'messages': [{'role': 'user', 'content': 'hi'}]}\n"
        "answer = asyncio.run(upstream.send(call))\n"
        "assert answer['content'][0]['type'] == 'text', answer\n"
        "print('litellm' in sys.modules)\n"
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.strip() == "False", "litellm was imported for an OpenAI-compatible call"


def _stack_with(fake, models: dict):
    stack = new_stack(fake.url)
    stack.put_providers(providers_document(fake.url, {**TEST_MODELS, **models}))
    return stack, stack.add_key()


def test_openais_reasoning_models_are_not_sent_the_fields_they_refuse_and_the_header_lists_them(moto_endpoint, fake):
    """o3 and gpt-5 answer 400 to temperature, top_p, stop and parallel_tool_calls, which would end
    a fallback chain: they are left out and said, and the limit goes as max_completion_tokens."""
    stack, key = _stack_with(fake, {"openai/o3-mini": {}})
    with serve(stack) as server:
        client = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0)
        raw = client.messages.with_raw_response.create(
            model="openai/o3-mini", max_tokens=50, extra_body={"temperature": 0.3, "top_p": 0.9}, stop_sequences=["END"],
            tools=[WEATHER], tool_choice={"type": "auto", "disable_parallel_tool_use": True},
            messages=ask("weather in Paris"))
    sent = fake.last("/chat/completions").body
    assert raw.headers["x-edenai-dropped-fields"] == \
        "temperature, top_p, stop_sequences, tool_choice.disable_parallel_tool_use"
    assert not {"temperature", "top_p", "stop", "parallel_tool_calls", "max_tokens"} & set(sent)
    assert sent["max_completion_tokens"] == 50 and sent["tool_choice"] == "auto"


def test_a_claude_code_session_is_openais_prompt_cache_key(client, fake):
    """Claude Code packs its session id into metadata.user_id: OpenAI keeps a session's prefix
    cached on the machines its key routes to."""
    user = json.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": "5f0c2a4e-session"})
    client.messages.create(model=GPT, max_tokens=10, messages=ask(), metadata={"user_id": user})
    sent = fake.last("/chat/completions").body
    assert sent["prompt_cache_key"] == "5f0c2a4e-session"
    assert sent["user"] == hashlib.sha256(user.encode()).hexdigest(), \
        "OpenAI refuses a user past 64 characters: Claude Code's ~150 would be a 400 on every request"
    client.messages.create(model=GPT, max_tokens=10, messages=ask(), metadata={"user_id": "alice"})
    assert "prompt_cache_key" not in fake.last("/chat/completions").body, "a plain user id names a person"


def test_an_azure_deployment_is_known_as_a_reasoning_model_by_its_base_model():
    from handler.pipeline.adaptation import adapt
    from handler.providers.catalogue import Model, Provider

    azure = Provider("azure", "azure", "k", "https://r.openai.azure.com", settings={"api_version": "2025-04-01"})
    model = Model("azure/prod-reasoner", azure, "prod-reasoner", {"base_model": "o4-mini"})
    assert adapt({"messages": ask(), "max_tokens": 10, "temperature": 0.2}, model).dropped == ("temperature",)
    assert azure.family.model_arguments(model)["max_tokens_field"] == "max_completion_tokens"


def test_more_than_four_stop_sequences_are_cut_to_openais_four_and_the_rest_said(client, fake):
    raw = client.messages.with_raw_response.create(model=GPT, max_tokens=20, messages=ask(),
                                                   stop_sequences=["a1", "b2", "c3", "d4", "e5", "f6"])
    assert fake.last("/chat/completions").body["stop"] == ["a1", "b2", "c3", "d4"]
    assert raw.headers["x-edenai-dropped-fields"] == '"stop_sequences[4:]"'


def test_a_tool_choice_that_names_a_server_tool_is_dropped_rather_than_naming_a_missing_function(client, fake):
    raw = client.messages.with_raw_response.create(
        model=GPT, max_tokens=20, messages=ask("weather in Paris"),
        tools=[WEATHER, {"type": "web_search_20250305", "name": "web_search"}],
        tool_choice={"type": "tool", "name": "web_search"})
    sent = fake.last("/chat/completions").body
    assert "tool_choice" not in sent and [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]
    assert raw.headers["x-edenai-dropped-fields"] == "tools.web_search, tool_choice"


@pytest.mark.parametrize("split", range(1, 12))
def test_an_event_boundary_split_between_two_reads_is_still_a_boundary(split):
    from handler.protocol import sse

    raw = b'data: {"a":1}\r\n\r\ndata: {"b":2}\r\n\r\n'
    parser = sse.DataParser()
    assert parser.feed(raw[:10 + split]) + parser.feed(raw[10 + split:]) == ['{"a":1}', '{"b":2}']
    events = sse.Parser()
    named = b"event: ping\r\ndata: {}\r\n\r\nevent: ping\r\ndata: {}\r\n\r\n"
    assert len(events.feed(named[:18 + split]) + events.feed(named[18 + split:])) == 2


# --------------------------------------------------------------------------- Gemini 3 on Vertex


@pytest.fixture
def gemini3(moto_endpoint, fake):
    from handler.providers import google_oauth
    from tests.support.family_fakes import family_gateway
    from tests.support.fake_vertex import FakeVertex

    with FakeVertex(project="proj-3", location="global") as vertex:
        google_oauth.forget_tokens()
        entry = {"type": "vertex_ai", "vertex_project": vertex.project, "vertex_location": vertex.location,
                 "credentials": vertex.service_account, "api_base": vertex.url}
        with family_gateway(fake.url, {"vertex": entry}, {"vertex/gemini-3-pro-preview": {}}) as (_, _, client):
            yield vertex, client


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_3_gets_its_thought_signatures_back_so_a_tool_loop_on_vertex_goes_on(gemini3, stream):
    """Gemini 3 signs each step of function calls and refuses the next request without the
    signature; the gateway keeps no state, so the signature travels in the tool_use id."""
    vertex, client = gemini3
    tool = {"name": "lookup", "description": "Look a thing up.",
            "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}}}
    question = ask("find cats")
    if stream:
        with client.messages.stream(model="vertex/gemini-3-pro-preview", max_tokens=50, tools=[tool],
                                    messages=question) as events:
            first = events.get_final_message()
    else:
        first = client.messages.create(model="vertex/gemini-3-pro-preview", max_tokens=50, tools=[tool],
                                       messages=question)
    [call] = [block for block in first.content if block.type == "tool_use"]
    history = [*question, {"role": "assistant", "content": [b.model_dump() for b in first.content]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "three cats"}]}]
    second = client.messages.create(model="vertex/gemini-3-pro-preview", max_tokens=50, tools=[tool], messages=history)
    assert second.content[0].text == "Tool said: three cats"
    [assistant] = [m for m in vertex.last("/chat/completions").body["messages"] if m["role"] == "assistant"]
    assert assistant["tool_calls"][0]["extra_content"]["google"]["thought_signature"], \
        "the signature Vertex gave the call did not go back with it"


def test_messages_parse_on_gemini_on_vertex_returns_a_parsed_object(gemini3):
    from tests.test_structured_output import Forecast

    vertex, client = gemini3
    message = client.messages.parse(model="vertex/gemini-3-pro-preview", max_tokens=500, output_format=Forecast,
                                    messages=[{"role": "user", "content": "Paris tomorrow?"}])
    assert isinstance(message.parsed_output, Forecast) and message.parsed_output.city == "Paris tomorrow?"
    assert vertex.last("/chat/completions").body["response_format"]["type"] == "json_schema"


LINKED_PDF = {"type": "document", "source": {"type": "url", "url": "https://example.com/q3.pdf"}}


def test_a_document_url_for_a_chat_completions_model_is_a_400_naming_the_block(client, fake):
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(model=GPT, max_tokens=20, messages=[
            {"role": "user", "content": [LINKED_PDF, {"type": "text", "text": "summarise"}]}])
    assert "messages.0.content.0" in refused.value.message and "'url' source" in refused.value.message
    assert fake.snapshot() == [], "nothing was sent, and nothing fetched"


def test_a_model_of_the_chain_that_cannot_carry_the_request_is_left_out_and_the_next_answers(client, fake):
    """Fallbacks are the caller's consent to other models: one whose route would lose a block
    is skipped, as one that is down would be, rather than failing the whole request."""
    message = client.messages.create(model=GPT, max_tokens=20, extra_body={"fallbacks": [CLAUDE]}, messages=[
        {"role": "user", "content": [LINKED_PDF, {"type": "text", "text": "summarise"}]}])
    assert message.model == CLAUDE
    [sent] = fake.snapshot()
    assert sent.path.endswith("/v1/messages") and sent.body["messages"][0]["content"][0] == LINKED_PDF
