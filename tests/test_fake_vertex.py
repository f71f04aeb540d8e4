"""The fake Vertex AI refuses what Claude behind Vertex refuses (tests/support/fake_vertex.py)."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from tests.support.fake_vertex import VERTEX_ANTHROPIC_VERSION, FakeVertex

MODEL = "claude-sonnet-4-5@20250929"
USE = {"type": "tool_use", "id": "toolu_vrtx_1", "name": "lookup", "input": {}}


@pytest.fixture(scope="module")
def vertex():
    with FakeVertex() as fake:
        fake.tokens["ya29.test"] = time.time() + 3600  # a token as its exchange issues one
        yield fake


def raw_predict(vertex, body):
    url = (f"{vertex.url}/v1/projects/{vertex.project}/locations/{vertex.location}/publishers/anthropic/models/"
           f"{MODEL}:rawPredict")
    return httpx.post(url, headers={"authorization": "Bearer ya29.test"},
                      json={"anthropic_version": VERTEX_ANTHROPIC_VERSION, **body})


@pytest.mark.parametrize("body, message", [
    ({"messages": [{"role": "user", "content": "hi"}]}, "max_tokens: Field required"),
    ({"max_tokens": 20, "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [USE]},
                                     {"role": "user", "content": "and?"}]},
     "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_vrtx_1. Each "
     "`tool_use` block must have a corresponding `tool_result` block in the next message."),
    ({"max_tokens": 20, "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "no tools"},
                                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_vrtx_9",
                                                                   "content": "42"}]}]},
     "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_vrtx_9. Each "
     "`tool_result` block must have a corresponding `tool_use` block in the previous message."),
], ids=["no max_tokens", "unanswered tool_use", "tool_result answering no tool_use"])
def test_claude_on_vertex_refuses_what_claude_refuses(vertex, body, message):
    response = raw_predict(vertex, body)
    assert (response.status_code, response.json()["error"]["message"]) == (400, message)
    answered = raw_predict(vertex, {"max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]})
    assert answered.status_code == 200, answered.text


# --------------------------------------------------------------------------- Gemini behind Vertex's OpenAI-compatible endpoint

GEMINI = "google/gemini-2.5-flash"
HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def gemini(vertex):
    """The OpenAI SDK on Vertex's OpenAI-compatible endpoint, the access token as its key (Google's how-to)."""
    return openai.OpenAI(api_key="ya29.test", max_retries=0, base_url=(
        f"{vertex.url}/v1/projects/{vertex.project}/locations/{vertex.location}/endpoints/openapi"))


def tool(name: str) -> dict:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}


@pytest.mark.parametrize("name", ["1password_lookup", "get weather", "x" * 65, "mcp:server"])
def test_gemini_on_vertex_refuses_a_function_name_gemini_refuses(gemini, name):
    # Vertex AI v1 reference, FunctionDeclaration.name; the wording: google-gemini/gemini-cli#6704.
    with pytest.raises(openai.BadRequestError) as raised:
        gemini.chat.completions.create(model=GEMINI, messages=HELLO, tools=[tool("lookup"), tool(name)])
    assert raised.value.body["message"] == (
        "* GenerateContentRequest.tools[0].function_declarations[1].name: Invalid function name. Must start with a "
        "letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.) or dashes (-), with "
        "a maximum length of 64.")
    fine = gemini.chat.completions.create(model=GEMINI, messages=HELLO,
                                          tools=[tool("mcp.server_tool-2"), tool("_" + "x" * 63)])
    assert fine.choices, "a dot and a leading underscore are Gemini's, though not OpenAI's"


def test_gemini_on_vertex_refuses_fewer_tool_replies_than_calls(gemini):
    # Google's 400 for a turn of function calls answered part for part (google-gemini/gemini-cli#4217).
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    history = [*HELLO, {"role": "assistant", "content": None, "tool_calls": [call, {**call, "id": "call_2"}]},
               {"role": "tool", "tool_call_id": "call_1", "content": "42"}]
    with pytest.raises(openai.BadRequestError) as raised:
        gemini.chat.completions.create(model=GEMINI, messages=history, tools=[tool("lookup")])
    assert raised.value.body["message"] == ("Please ensure that the number of function response parts is equal to "
                                            "the number of function call parts of the function call turn.")
    history.append({"role": "tool", "tool_call_id": "call_2", "content": "43"})
    assert gemini.chat.completions.create(model=GEMINI, messages=history, tools=[tool("lookup")]).choices
