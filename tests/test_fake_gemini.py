"""The fake Gemini API is faithful: litellm's own Gemini code, driven straight at it,
reads its answers, its SSE stream, its function calls and its errors."""

from __future__ import annotations

import asyncio
import json

import httpx
import litellm
import pytest

from tests.support.fake_gemini import FakeGemini

MODEL = "gemini-2.5-flash"
KEY = "AIza-fake-gemini-key-0001"
TOOL = {"type": "function", "function": {"name": "lookup", "description": "Look a thing up.",
                                         "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}
LOOP = asyncio.new_event_loop()  # litellm keeps its HTTP clients bound to the first loop


@pytest.fixture(scope="module")
def gemini():
    with FakeGemini(api_key=KEY) as fake:
        yield fake


@pytest.fixture(autouse=True)
def fresh(gemini):
    gemini.clear()
    gemini.clear_faults()


def complete(gemini, api_key=KEY, **kwargs):
    return LOOP.run_until_complete(litellm.acompletion(
        model=f"gemini/{MODEL}", api_key=api_key, api_base=gemini.url, max_tokens=50, num_retries=0, **kwargs))


def test_litellm_reads_generate_content_with_usage(gemini):
    response = complete(gemini, messages=[{"role": "system", "content": "be brief"},
                                          {"role": "user", "content": "hello there"}])
    assert response.choices[0].message.content == f"Hello from {MODEL}: hello there"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (4, 5)
    sent = gemini.last()
    assert sent.path == f"/models/{MODEL}:generateContent" and sent.headers["x-goog-api-key"] == KEY
    system = sent.body.get("systemInstruction") or sent.body["system_instruction"]  # the API takes both
    assert system["parts"][0]["text"] == "be brief"


def test_litellm_reads_the_sse_stream(gemini):
    async def run():
        stream = await litellm.acompletion(model=f"gemini/{MODEL}", api_key=KEY, api_base=gemini.url, max_tokens=50,
                                           messages=[{"role": "user", "content": "hello there"}], stream=True,
                                           stream_options={"include_usage": True})
        return [chunk async for chunk in stream]
    chunks = LOOP.run_until_complete(run())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"Hello from {MODEL}: hello there"
    assert gemini.last().path == f"/models/{MODEL}:streamGenerateContent?alt=sse"


def test_litellm_round_trips_a_function_call(gemini):
    first = complete(gemini, messages=[{"role": "user", "content": "find cats"}], tools=[TOOL])
    call = first.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("lookup", {"query": "find cats"})
    second = complete(gemini, tools=[TOOL], messages=[
        {"role": "user", "content": "find cats"},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "three cats"}])
    assert second.choices[0].message.content == "Tool said: three cats"


@pytest.mark.parametrize("status, error", [("RESOURCE_EXHAUSTED", litellm.RateLimitError),
                                           ("UNAVAILABLE", litellm.ServiceUnavailableError),
                                           ("INVALID_ARGUMENT", litellm.BadRequestError)])
def test_litellm_maps_googles_errors(gemini, status, error):
    gemini.error(MODEL, status, f"Google says {status}")
    with pytest.raises(error) as raised:
        complete(gemini, messages=[{"role": "user", "content": "hi"}])
    assert f"Google says {status}" in str(raised.value)


def test_a_wrong_key_is_refused_as_google_refuses_it(gemini):
    # Google answers 400 INVALID_ARGUMENT; litellm knows the words and calls it an authentication error.
    with pytest.raises(litellm.AuthenticationError) as raised:
        complete(gemini, api_key="AIza-wrong", messages=[{"role": "user", "content": "hi"}])
    assert "API key not valid" in str(raised.value)


def test_litellm_gets_json_satisfying_its_response_schema(gemini):
    import jsonschema

    schema = {"type": "object", "required": ["city", "wind"], "additionalProperties": False,
              "properties": {"city": {"type": "string"}, "wind": {"type": "string", "enum": ["calm", "breezy"]}}}
    response = complete(gemini, messages=[{"role": "user", "content": "Oslo"}],
                        response_format={"type": "json_schema", "json_schema": {"name": "f", "schema": schema}})
    answer = json.loads(response.choices[0].message.content)
    jsonschema.validate(answer, schema)
    assert answer["city"] == "Oslo"


def test_litellm_reads_implicit_cache_reads_as_cached_prompt_tokens(gemini):
    gemini.cache_read = True
    try:
        response = complete(gemini, messages=[{"role": "user", "content": "one two three four five six"}])
    finally:
        gemini.cache_read = False
    assert response.usage.prompt_tokens == 6
    assert response.usage.prompt_tokens_details.cached_tokens == 3, "cachedContentTokenCount, a part of the prompt"


@pytest.mark.parametrize("field, schema, refused", [
    ("responseSchema", {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}, None),
    ("responseSchema", {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "additionalProperties": False},
     'Unknown name "additionalProperties"'),
    ("responseSchema", {"type": "OBJECT", "properties": {"city": {"type": ["string", "null"]}}},
     "Proto field is not repeating"),
    ("responseJsonSchema", {"type": "object", "properties": {"city": {"type": ["string", "null"]}},
                            "required": ["city"], "additionalProperties": False}, None),
])
def test_a_response_schema_is_the_openapi_subset_and_a_response_json_schema_is_json_schema(gemini, field, schema,
                                                                                           refused):
    """What the fake takes of each field, as Google documents them: litellm sends
    responseJsonSchema (with additionalProperties), which the proto responseSchema refuses."""
    import httpx

    body = {"contents": [{"role": "user", "parts": [{"text": "Oslo"}]}],
            "generationConfig": {"responseMimeType": "application/json", field: schema}}
    response = httpx.post(f"{gemini.url}/models/{MODEL}:generateContent", json=body, headers={"x-goog-api-key": KEY})
    if refused:
        assert response.status_code == 400 and refused in response.json()["error"]["message"]
    else:
        answer = json.loads(response.json()["candidates"][0]["content"]["parts"][0]["text"])
        assert answer["city"] == "Oslo", answer


def test_fewer_function_responses_than_calls_are_refused_as_google_refuses_them(gemini):
    # Google's 400 (google-gemini/gemini-cli#4217): each function call part needs its response part.
    # Raw REST, as Google's own clients send it (litellm drops a call left unanswered before sending).
    call = {"functionCall": {"name": "lookup", "args": {}}}
    answer = {"functionResponse": {"name": "lookup", "response": {"content": "three cats"}}}
    contents = [{"role": "user", "parts": [{"text": "find cats"}]}, {"role": "model", "parts": [call, call]},
                {"role": "user", "parts": [answer]}]
    url = f"{gemini.url}/models/{MODEL}:generateContent"
    refused = httpx.post(url, headers={"x-goog-api-key": KEY}, json={"contents": contents})
    assert (refused.status_code, refused.json()["error"]) == (400, {
        "code": 400, "status": "INVALID_ARGUMENT", "message": "Please ensure that the number of function response "
        "parts is equal to the number of function call parts of the function call turn."})
    contents[2]["parts"].append(answer)
    answered = httpx.post(url, headers={"x-goog-api-key": KEY}, json={"contents": contents})
    assert answered.status_code == 200, answered.text
