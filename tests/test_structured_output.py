"""Structured outputs and schema-true tool calls, as real clients use them.

The SDK's `messages.parse(output_format=<pydantic model>)` sends
`output_config.format` and parses the answer's text: it must come back parsed
on an Anthropic model (the field reaches it as sent) and on an
OpenAI-compatible one (translated into a JSON-schema response format). The
fake provider answers such a format with JSON that satisfies the schema, and
tool calls with inputs that satisfy the tool's input_schema, so an agent
loop completes; litellm itself, driven at the fake, proves its OpenAI side.
"""

from __future__ import annotations

import json

import jsonschema
import litellm
import pytest

from tests.support.fake_upstream import example
from tests.support.family_checks import Forecast
from tests.support.stack import OPENAI_TEST_KEY

CLAUDE = "anthropic/claude-sonnet-4-5"
GPT = "openai/gpt-4o-mini"


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_messages_parse_returns_a_parsed_object(client, fake, model):
    message = client.messages.parse(model=model, max_tokens=500, output_format=Forecast,
                                    messages=[{"role": "user", "content": "Paris tomorrow?"}])
    parsed = message.parsed_output
    assert isinstance(parsed, Forecast), f"the SDK could not parse {message.content[0].text!r}"
    assert parsed.city == "Paris tomorrow?"


BASH_LIKE = {"type": "object", "required": ["command", "timeout", "flags", "mode", "target"], "properties": {
    "command": {"type": "string", "maxLength": 8},
    "timeout": {"type": "integer", "minimum": 5},
    "flags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    "mode": {"enum": ["fast", "safe"]},
    "target": {"type": "object", "required": ["file_path"], "properties": {
        "file_path": {"type": "string"}, "optional": {"type": "boolean"}}},
    "description": {"type": "string"}}}


@pytest.mark.parametrize("schema", [
    BASH_LIKE,
    Forecast.model_json_schema(),
    {"type": "object", "required": ["ref"], "properties": {"ref": {"$ref": "#/$defs/Inner"}},
     "$defs": {"Inner": {"type": "object", "required": ["n"], "properties": {"n": {"type": ["integer", "null"]}}}}},
])
def test_the_fakes_answers_satisfy_the_schema(schema):
    jsonschema.validate(example(schema, "read /tmp/x/hello.txt please"), schema)


def test_a_path_property_gets_the_path_in_the_prompt():
    assert example(BASH_LIKE, "read /tmp/x/hello.txt please")["target"]["file_path"] == "/tmp/x/hello.txt"


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_a_tool_call_satisfies_the_tools_input_schema(client, model):
    tool = {"name": "run", "description": "Run a command.", "input_schema": BASH_LIKE}
    message = client.messages.create(model=model, max_tokens=500, tools=[tool],
                                     messages=[{"role": "user", "content": "run it on /srv/app.py"}])
    call = next(block for block in message.content if block.type == "tool_use")
    jsonschema.validate(call.input, BASH_LIKE)


def test_an_agents_toolbox_gets_a_call_only_for_the_tool_the_prompt_names(client):
    tools = [{"name": name, "description": name, "input_schema": {"type": "object", "properties": {}}}
             for name in ("Agent", "Bash", "Glob", "Grep", "Read", "Write")]
    plain = client.messages.create(model=CLAUDE, max_tokens=100, tools=tools,
                                   messages=[{"role": "user", "content": "hi"}])
    assert plain.stop_reason == "end_turn"
    named = client.messages.create(model=CLAUDE, max_tokens=100, tools=tools,
                                   messages=[{"role": "user", "content": "use Read please"}])
    assert named.stop_reason == "tool_use" and named.content[-1].name == "Read"


def test_litellm_reads_the_fakes_json_schema_answer(fake):
    """The fake's OpenAI side, proven with litellm rather than with our own code."""
    response = litellm.completion(
        model="openai/gpt-4o-mini", api_base=fake.url + "/v1", api_key=OPENAI_TEST_KEY,
        messages=[{"role": "user", "content": "Oslo"}],
        response_format={"type": "json_schema", "json_schema": {"name": "f", "schema": Forecast.model_json_schema()}})
    assert Forecast.model_validate(json.loads(response.choices[0].message.content)).city == "Oslo"
