"""Google's Gemini API end to end: the official anthropic SDK, the gateway (litellm's
Gemini route), the fake Gemini API."""

from __future__ import annotations

import json

import anthropic
import pytest

from tests.support.fake_gemini import FakeGemini
from tests.support.family_checks import (
    TOOL, ask, assert_anthropic_falls_back_to, assert_error_in_anthropics_terms, assert_tool_result_round_trips,
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


def test_an_image_reaches_gemini_as_inline_data(gateway, gemini):
    _, _, client = gateway
    message = client.messages.create(model=GEMINI, max_tokens=50, messages=[
        {"role": "user", "content": [IMAGE, {"type": "text", "text": "what is this"}]}])
    assert message.content[0].text == "Hello from gemini-2.5-flash: what is this"
    parts = gemini.last().body["contents"][0]["parts"]
    inline = [p.get("inlineData") or p.get("inline_data") for p in parts if "inlineData" in p or "inline_data" in p]
    assert inline and inline[0]["data"] == PIXEL, f"Gemini did not get the image: {parts}"


@pytest.mark.parametrize("status, code, error_type", [
    ("RESOURCE_EXHAUSTED", 429, "rate_limit_error"),
    ("UNAVAILABLE", 529, "overloaded_error"),
    ("INVALID_ARGUMENT", 400, "invalid_request_error"),
])
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
