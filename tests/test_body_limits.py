"""Body limits: what any key can send is judged before any rpm is counted, with a 4xx, never a 500 or a reset.

A body's nesting depth, its messages and its content blocks have limits
(protocol/shape.py: Anthropic's 100,000 messages, the gateway's own depth and
block count), checked in one pass in a worker thread; strings no UTF-8 can
carry (a lone surrogate) are refused at the door, whatever the key's limits.
"""

from __future__ import annotations

import json

import httpx
import pytest

from handler.protocol.body import SLICE
from handler.protocol.shape import MAX_BLOCKS, MAX_DEPTH, MAX_MESSAGES

CLAUDE = "anthropic/claude-sonnet-4-5"
GPT = "openai/gpt-4o-mini"
HELLO = [{"role": "user", "content": "hello"}]


def post(server, key, body=None, *, content=None):
    raw = content if content is not None else json.dumps(body).encode()
    try:
        return httpx.post(f"{server.url}/v3/v1/messages", content=raw, timeout=60,
                          headers={"x-api-key": key, "content-type": "application/json"})
    except httpx.HTTPError as exc:  # a reset or a closed connection: no answer at all
        pytest.fail(f"the gateway dropped the connection without an answer: {exc!r}")


def request(model=CLAUDE, **fields):
    return {"model": model, "max_tokens": 10, "messages": HELLO, **fields}


def nested_schema(levels: int) -> dict:
    """A tool's input_schema `levels` JSON levels deep (properties.a.properties.a...)."""
    schema: dict = {"type": "string"}
    for _ in range((levels - 1) // 2):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def assert_refused(response, fake, needle):
    assert response.status_code == 400, f"the caller was answered {response.status_code}: {response.text[:300]}"
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert needle in response.json()["error"]["message"], response.text[:300]
    assert fake.count() == 0, "a refused body reached the upstream"


@pytest.mark.parametrize("limits", [None, {"rpm": 100, "monthly_tokens": 1_000_000}])
@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_a_lone_surrogate_is_a_400_on_keys_with_and_without_limits(server, stack, fake, limits, model):
    key = stack.add_key(**({"limits": limits} if limits else {}))
    raw = json.dumps(request(model, messages=[{"role": "user", "content": "hi \ud800 there"}])).encode()
    assert b"\\ud800" in raw  # valid JSON text: the escape names half a pair
    assert_refused(post(server, key, content=raw), fake, "surrogate")


def test_a_lone_surrogate_in_a_key_is_a_400_and_an_escaped_pair_is_served(server, api_key, fake):
    schema = {"type": "object", "properties": {"\udc00": {"type": "string"}}}
    tools = [{"name": "t", "description": "d", "input_schema": schema}]
    assert_refused(post(server, api_key, request(tools=tools)), fake, "surrogate in a key")
    paired = json.dumps(request(messages=[{"role": "user", "content": "hi \U0001f600"}])).encode()
    assert b"\\ud83d\\ude00" in paired  # the pair as json.dumps escapes it
    response = post(server, api_key, content=paired)
    assert response.status_code == 200, f"an escaped surrogate pair was refused: {response.text[:300]}"


def test_a_body_with_a_lone_surrogate_and_too_deep_gets_the_error_it_got(server, api_key, fake):
    """The first the walk meets, last field first: the surrogate in `metadata`, after the tools."""
    tools = [{"name": "deep", "description": "d", "input_schema": nested_schema(MAX_DEPTH + 10)}]
    body = request(tools=tools, metadata={"user_id": "\ud800"})
    assert_refused(post(server, api_key, body), fake, "surrogate")
    body = {**request(metadata={"user_id": "\ud800"}), "tools": tools}
    assert_refused(post(server, api_key, body), fake, "nested too deeply")


def with_raw(body: dict, raw_schema: str) -> bytes:
    """`body` as JSON with its "SCHEMA" placeholder replaced by raw JSON text (too deep for json.dumps here)."""
    return json.dumps(body).replace('"SCHEMA"', raw_schema).encode()


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_a_tool_schema_600_levels_deep_is_a_400_not_a_500_or_a_reset(server, stack, fake, model):
    key = stack.add_key(limits={"rpm": 100})
    deep = '{"type": "object", "properties": {"a": ' * 300 + '{"type": "string"}' + "}}" * 300  # 601 levels
    tools = [{"name": "deep", "description": "d", "input_schema": "SCHEMA"}]
    assert_refused(post(server, key, content=with_raw(request(model, tools=tools), deep)), fake, "nested too deeply")
    structured = {"format": {"type": "json_schema", "schema": "SCHEMA"}}
    assert_refused(post(server, key, content=with_raw(request(model, output_config=structured), deep)),
                   fake, "nested too deeply")


def depth(value) -> int:
    """Levels of nesting as the limit counts them: every object and list, empty ones too."""
    if isinstance(value, dict):
        value = list(value.values())
    return 1 + max(map(depth, value), default=0) if isinstance(value, list) else 0


def body_of_depth(levels: int) -> dict:
    """A request nested exactly `levels` deep, through a tool's input_schema."""
    for schema_levels in range(1, 2 * levels, 2):
        for enum in (False, True):
            schema = nested_schema(schema_levels)
            innermost = schema
            while "properties" in innermost:
                innermost = innermost["properties"]["a"]
            if enum:
                innermost["enum"] = ["x"]
            body = request(tools=[{"name": "deep", "description": "d", "input_schema": schema}])
            if depth(body) == levels:
                return body
    raise AssertionError(f"no body {levels} levels deep")


def test_the_depth_limit_falls_at_max_depth_exactly(server, api_key, fake):
    response = post(server, api_key, body_of_depth(MAX_DEPTH))
    assert response.status_code == 200, f"a body {MAX_DEPTH} levels deep was refused: {response.text[:300]}"
    fake.clear()
    assert_refused(post(server, api_key, body_of_depth(MAX_DEPTH + 1)), fake, "nested too deeply")


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 250])
def test_a_schema_past_the_depth_limit_is_a_400_however_far(server, api_key, fake, levels):
    tools = [{"name": "deep", "description": "d", "input_schema": nested_schema(levels)}]
    assert_refused(post(server, api_key, request(tools=tools)), fake, "nested too deeply")


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_a_schema_just_within_the_depth_limit_is_served(server, api_key, fake, model):
    tools = [{"name": "deep", "description": "d", "input_schema": nested_schema(MAX_DEPTH - 8)}]
    response = post(server, api_key, request(model, tools=tools))
    assert response.status_code == 200, f"a schema within the limit was refused: {response.text[:300]}"
    assert fake.count() == 1


def test_more_messages_than_anthropic_takes_is_a_400_that_uses_no_rpm(server, stack, fake):
    key = stack.add_key(limits={"rpm": 1})
    turns = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}] * (MAX_MESSAGES // 2)
    too_many = request("@edenai", messages=[*turns, {"role": "user", "content": "c"}])
    assert_refused(post(server, key, too_many), fake, f"at most {MAX_MESSAGES} messages")
    assert post(server, key, request()).status_code == 200, "the refused body used the key's only rpm"


def test_an_edenai_body_of_300000_blocks_is_a_400_that_uses_no_rpm(server, stack, fake):
    key = stack.add_key(limits={"rpm": 1})
    blocks = [{"type": "text", "text": "x"} for _ in range(300_000)]
    response = post(server, key, request("@edenai", messages=[{"role": "user", "content": blocks}]))
    assert_refused(response, fake, f"at most {MAX_BLOCKS} content blocks")
    assert post(server, key, request()).status_code == 200, "the refused body used the key's only rpm"


def test_a_bad_block_deep_in_a_long_message_is_named_where_it_is(server, api_key, fake):
    """Validation runs in slices of SLICE blocks: a slice's error still names its place in the body."""
    blocks = [{"type": "text", "text": "x"} for _ in range(3 * SLICE)]
    blocks[2 * SLICE + 7] = {"type": "text", "text": 5}
    history = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
               {"role": "user", "content": blocks}]
    response = post(server, api_key, request(messages=history))
    assert response.status_code == 422, response.text[:300]
    where = [error["loc"] for error in response.json()["detail"]]
    assert any(loc[:3] == ["body", "messages", 2] and 2 * SLICE + 7 in loc and loc[-1] == "text" for loc in where), where
    assert fake.count() == 0


@pytest.mark.parametrize("limits", [None, {"rpm": 100, "monthly_tokens": 10_000_000}])
def test_a_large_body_is_planned_and_bounded_off_the_event_loop(server, stack, fake, monkeypatch, limits):
    """Planning, building the calls and the reservation's bound walk the whole body: for a large
    one (a 10 MB body: most of a second) that runs in a worker thread, so other requests are
    not kept waiting; a small body's stays on the loop, where a thread hop costs more."""
    from handler.pipeline import gateway
    from tests.support.stack import running_on_a_loop

    on_the_loop: list[bool] = []

    def plan_request(*args, **kwargs):
        on_the_loop.append(running_on_a_loop())
        return real_plan(*args, **kwargs)

    def attempt_bounds(*args, **kwargs):
        on_the_loop.append(running_on_a_loop())
        return real_bounds(*args, **kwargs)

    real_plan, real_bounds = gateway.plan_request, gateway.attempt_bounds
    monkeypatch.setattr(gateway, "plan_request", plan_request)
    monkeypatch.setattr(gateway, "attempt_bounds", attempt_bounds)
    key = stack.add_key(**({"limits": limits} if limits else {}))
    walks = 2 if limits else 1  # the bound is only reserved for a key with limits
    large = request(messages=[{"role": "user", "content": "word " * (gateway.OFF_LOOP_BODY_BYTES // 5 + 10)}])
    assert post(server, key, large).status_code == 200
    assert on_the_loop == [False] * walks, "a large body's walks ran on the event loop"
    on_the_loop.clear()
    assert post(server, key, request()).status_code == 200
    assert on_the_loop == [True] * walks, "a small body's walks left the event loop"
