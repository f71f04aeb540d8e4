"""Google's Gemini API end to end: the official anthropic SDK, the gateway (litellm's
Gemini route), the fake Gemini API."""

from __future__ import annotations

import json

from decimal import Decimal

import anthropic
import jsonschema
import pytest

from handler.providers import price_map
from handler.metering import pricing
from tests.support.fake_gemini import FakeGemini
from tests.support.family_checks import (
    LOST_BLOCKS, PDF, PDF_DOCUMENT, TOOL, Forecast, ask, assert_anthropic_falls_back_to,
    assert_error_in_anthropics_terms, assert_tool_result_round_trips,
    assert_what_litellm_would_lose_is_refused, google_errors, lost_blocks, tool_returned,
)
from tests.support.family_fakes import DIRECT_CLAUDE, GEMINI_TEST_KEY, family_gateway

GEMINI = "gemini/gemini-2.5-flash"
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}}


@pytest.fixture(scope="module")
def gemini():
    with FakeGemini(api_key=GEMINI_TEST_KEY) as fake:
        yield fake


@pytest.fixture
def gateway(moto_endpoint, fake, gemini):
    gemini.clear()
    gemini.clear_faults()
    with family_gateway(fake.url, {"gemini": {"api_key": GEMINI_TEST_KEY, "api_base": gemini.url}},
                        {GEMINI: {}}) as running:
        yield running
    gemini.clear_faults()


def test_gemini_answers_and_streams_in_anthropics_grammar_metered_to_the_token(gateway, gemini):
    stack, key, client = gateway
    message = client.messages.create(model=GEMINI, max_tokens=50, system="be brief", messages=ask())
    assert message.model == GEMINI and message.content[0].text == "Hello from gemini-2.5-flash: hello there"
    assert gemini.last().headers["x-goog-api-key"] == GEMINI_TEST_KEY
    with client.messages.stream(model=GEMINI, max_tokens=50, messages=ask()) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert final.content[0].text == "Hello from gemini-2.5-flash: hello there"
    assert gemini.last().path.endswith(":streamGenerateContent?alt=sse")
    told = gemini.reported_totals()
    month = stack.month(key, requests=2)
    assert (month["input_tokens"], month["output_tokens"]) == (told["input_tokens"], told["output_tokens"])
    assert month["cost_usd"] > 0, "Gemini must be priced from litellm's price map"


def test_a_tool_result_round_trips_through_gemini(gateway):
    _, _, client = gateway
    assert_tool_result_round_trips(client, GEMINI)


@pytest.mark.parametrize("block, media_type", [(IMAGE, "image/png"), (PDF_DOCUMENT, "application/pdf")],
                         ids=["image", "pdf"])
def test_an_image_or_a_pdf_reaches_gemini_as_inline_data_of_its_media_type(gateway, gemini, block, media_type):
    _, _, client = gateway
    message = client.messages.create(model=GEMINI, max_tokens=50, messages=[
        {"role": "user", "content": [block, {"type": "text", "text": "what is this"}]}])
    assert message.content[0].text == "Hello from gemini-2.5-flash: what is this"
    parts = gemini.last().body["contents"][0]["parts"]
    # Proto JSON: litellm writes snake_case, Google's reference camelCase; the API takes both.
    inline = [p.get("inlineData") or p.get("inline_data") for p in parts if "inlineData" in p or "inline_data" in p]
    assert len(inline) == 1, f"Gemini did not get the {media_type}: {parts}"
    assert inline[0].get("mimeType", inline[0].get("mime_type")) == media_type
    assert inline[0]["data"] == block["source"]["data"]


@google_errors
def test_googles_errors_reach_the_caller_in_anthropics_terms(gateway, gemini, status, code, error_type):
    _, _, client = gateway
    gemini.error("gemini-2.5-flash", status, f"Google says {status}")
    assert_error_in_anthropics_terms(client, GEMINI, status, code, error_type)


def test_anthropic_falls_back_to_gemini(gateway, fake):
    _, _, client = gateway
    assert_anthropic_falls_back_to(client, fake, GEMINI)


def test_count_tokens_asks_geminis_own_count_tokens(gateway, gemini):
    _, _, client = gateway
    tool = {**TOOL, "input_schema": {**TOOL["input_schema"], "additionalProperties": False}}
    messages = [*ask("one two three"),
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup",
                                                   "input": {"query": "x"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "four five"}]}]
    raw = client.messages.with_raw_response.count_tokens(model=GEMINI, system="be brief", tools=[tool],
                                                         messages=messages)
    assert raw.headers["x-edenai-token-count-method"] == "gemini_count_tokens"
    assert raw.parse().input_tokens == 2 + 3 + 2 + 10, "Gemini's countTokens answer (the fake counts words)"
    sent = gemini.last()
    assert sent.path == "/models/gemini-2.5-flash:countTokens" and sent.headers["x-goog-api-key"] == GEMINI_TEST_KEY
    request = sent.body["generateContentRequest"]
    assert request["contents"][2]["parts"][0]["functionResponse"] == {"name": "lookup",
                                                                      "response": {"content": "four five"}}
    assert "additionalProperties" not in json.dumps(request["tools"]), "Gemini refuses JSON-schema-only keywords"


def test_a_count_tokens_failure_at_gemini_is_reported_in_anthropics_terms(gateway, gemini):
    _, _, client = gateway
    gemini.error("gemini-2.5-flash", "RESOURCE_EXHAUSTED", "Quota exceeded for countTokens")
    with pytest.raises(anthropic.RateLimitError) as raised:
        client.messages.count_tokens(model=GEMINI, messages=ask())
    assert "Quota exceeded for countTokens" in raised.value.body["error"]["message"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_geminis_cached_tokens_are_metered_as_cache_reads_and_priced_at_the_cache_read_rate(gateway, gemini, stream):
    """Gemini 2.5 caches implicitly: usageMetadata.cachedContentTokenCount is a part of
    promptTokenCount. Anthropic's usage counts it apart (input_tokens + cache_read_input_tokens
    is the prompt), and it costs a tenth of an input token."""
    stack, key, client = gateway
    gemini.cache_read = True
    try:
        words = "you are terse and exact " * 10
        if stream:
            with client.messages.stream(model=GEMINI, max_tokens=50, system=words, messages=ask()) as events:
                usage = events.get_final_message().usage
        else:
            usage = client.messages.create(model=GEMINI, max_tokens=50, system=words, messages=ask()).usage
    finally:
        gemini.cache_read = False
    prompt = len(words.split()) + 2  # the fake's promptTokenCount: it counts words
    assert (usage.input_tokens, usage.cache_read_input_tokens) == (prompt - prompt // 2, prompt // 2), \
        f"the caller was told {usage}, Gemini said promptTokenCount {prompt} of which {prompt // 2} cached"
    (record,) = stack.records(key, 1)
    month = stack.month(key, requests=1)
    told = gemini.reported_totals()
    for metered in (record, month):
        assert (int(metered["input_tokens"]), int(metered["cache_read_input_tokens"]),
                int(metered["output_tokens"])) == (told["input_tokens"], told["cache_read_input_tokens"],
                                                   told["output_tokens"]), f"the ledger holds {metered}"
    price = price_map.load()[GEMINI]
    expected = (told["input_tokens"] * Decimal(str(price["input_cost_per_token"]))
                + told["cache_read_input_tokens"] * Decimal(str(price["cache_read_input_token_cost"]))
                + told["output_tokens"] * Decimal(str(price["output_cost_per_token"])))
    for metered in (record, month):
        assert Decimal(str(metered["cost_usd"])) == expected.quantize(pricing.USD_QUANTUM), \
            "cached tokens are priced at litellm's cache-read rate, the rest at the input rate"


@pytest.mark.parametrize("stream", [False, True], ids=["parse", "stream"])
def test_messages_parse_on_gemini_sends_a_response_schema_and_returns_a_parsed_object(gateway, gemini, stream):
    _, _, client = gateway
    asked = dict(model=GEMINI, max_tokens=500, output_format=Forecast,
                 messages=[{"role": "user", "content": "Paris tomorrow?"}])
    if stream:
        with client.messages.stream(**asked) as events:
            message = events.get_final_message()
        assert gemini.last().path.endswith(":streamGenerateContent?alt=sse")
    else:
        message = client.messages.parse(**asked)
    assert isinstance(message.parsed_output, Forecast), f"the SDK could not parse {message.content[0].text!r}"
    config = gemini.last().body["generationConfig"]
    assert config.get("response_mime_type", config.get("responseMimeType")) == "application/json"
    schema = config.get("response_json_schema", config.get("responseJsonSchema"))
    assert schema is not None and schema["required"] == Forecast.model_json_schema()["required"], \
        f"Gemini must get the schema as its responseJsonSchema: {config}"
    assert schema["properties"]["wind"]["enum"] == ["calm", "breezy", "stormy"]
    jsonschema.validate(json.loads(message.content[0].text), schema)


@lost_blocks
def test_a_block_litellm_would_drop_or_fetch_for_gemini_is_refused(gateway, gemini, block):
    _, _, client = gateway
    assert_what_litellm_would_lose_is_refused(client, GEMINI, gemini, block)


def test_count_tokens_sends_a_pdf_to_geminis_count_tokens_as_inline_data(gateway, gemini):
    _, _, client = gateway
    raw = client.messages.with_raw_response.count_tokens(model=GEMINI, messages=[
        {"role": "user", "content": [PDF_DOCUMENT, {"type": "text", "text": "summarise this"}]}])
    assert raw.headers["x-edenai-token-count-method"] == "gemini_count_tokens"
    parts = gemini.last().body["generateContentRequest"]["contents"][0]["parts"]
    assert parts[0] == {"inlineData": {"mimeType": "application/pdf", "data": PDF}}, \
        "Gemini counts the PDF only if it is sent"


def test_edenai_routes_a_block_gemini_would_lose_to_a_model_that_takes_it(gateway, gemini, fake):
    """Gemini is the cheaper candidate, but a text document would not reach it: the router
    serves the request elsewhere and says why."""
    _, _, client = gateway
    before = gemini.count()
    raw = client.messages.with_raw_response.create(
        model="@edenai", max_tokens=50, extra_body={"router_candidates": [GEMINI, DIRECT_CLAUDE]},
        messages=[{"role": "user", "content": [LOST_BLOCKS["text-document"], {"type": "text", "text": "summarise"}]}])
    assert raw.parse().model == DIRECT_CLAUDE and gemini.count() == before
    assert f"{GEMINI}: messages.0.content.0" in raw.headers["x-edenai-route"], raw.headers["x-edenai-route"]
    cheap = client.messages.with_raw_response.create(
        model="@edenai", max_tokens=50, extra_body={"router_candidates": [GEMINI, DIRECT_CLAUDE]}, messages=ask())
    assert cheap.parse().model == GEMINI, "without such a block, Gemini is the router's choice"


def test_a_pdf_a_tool_returned_reaches_gemini_beside_the_function_response(gateway, gemini):
    _, _, client = gateway
    message = client.messages.create(model=GEMINI, max_tokens=50, tools=[TOOL], messages=tool_returned(PDF_DOCUMENT))
    assert message.content[0].text == "Tool said: the report"
    parts = gemini.last().body["contents"][2]["parts"]
    assert {"inline_data": {"data": PDF, "mime_type": "application/pdf"}} in parts, f"Gemini got {parts}"


def test_a_block_gemini_would_lose_inside_a_tool_result_is_refused_where_it_is(gateway, gemini):
    _, _, client = gateway
    before = gemini.count()
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(model=GEMINI, max_tokens=50, tools=[TOOL],
                               messages=tool_returned(LOST_BLOCKS["search-result"]))
    assert "messages.2.content.0.content.1: a search_result block" in raised.value.body["error"]["message"]
    assert gemini.count() == before
