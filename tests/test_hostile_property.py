"""Bodies drawn from the anthropic SDK's own request types, with hostile leaves, on every route.

`anthropic.types.MessageCreateParams` and the TypedDicts it is made of (every
content block param, tool param, tool_choice ...) give the shape; at any
position a value may be swapped for a hostile one: a wrong JSON type, a lone
surrogate, a list nested deeper than the body limit, a non-object content item.
Each body goes to an Anthropic model, an OpenAI-compatible model and a
litellm-route model (Gemini), from a key with limits and one without. The
fakes answer every call they take, so any 5xx is the gateway's own: never a
5xx, never a dropped connection. Examples are bounded (CI time).
"""

from __future__ import annotations

import json
import typing

import anthropic.types
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handler.protocol.shape import MAX_BLOCKS, MAX_DEPTH
from tests.support.fake_gemini import FakeGemini
from tests.support.sdk_params import typed
from tests.support.family_fakes import DIRECT_CLAUDE, GEMINI_TEST_KEY, family_gateway
from tests.support.stack import OPENAI_TEST_KEY

GEMINI = "gemini/gemini-2.5-flash"
GPT = "openai/gpt-4o-mini"
ROUTES = [DIRECT_CLAUDE, GPT, GEMINI]
EXAMPLES = 60


def _deep(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


# Stands for a list nested 700 levels: spliced into the JSON text, too deep for json.dumps here.
DEEP = "\x00deep"
HOSTILE = st.one_of(
    st.sampled_from([None, 0, -1, 2**40, 1.5, True, "", [], {}, [1], ["a", None], [None],
                     {"type": 5}, {"type": None}, {"": {}}, _deep(MAX_DEPTH + 5)]),
    st.sampled_from(["\ud800", "a\udfffb", {"type": "\ud800"}, {"\udc00": 1}]),
    st.just(DEEP),
)


def _typed(tp, depth: int) -> st.SearchStrategy:
    """A well-typed value of the SDK type `tp` (hostility is added after, one position at a time)."""
    return typed(tp, HOSTILE, depth)


def _positions(document) -> list[tuple[typing.Any, typing.Any]]:
    """Every (container, key or index) in `document`, found without recursion."""
    found, stack = [], [document]
    while stack:
        node = stack.pop()
        keys = list(node) if isinstance(node, dict) else range(len(node)) if isinstance(node, list) else ()
        for key in keys:
            found.append((node, key))
            stack.append(node[key])
    return found


def _spoiled(draw, value):
    """A hostile stand-in for `value`: of another JSON type, or of its own type with hostile content
    (a string with a lone surrogate, an object with a field nested 700 levels)."""
    kind = draw(st.sampled_from(["type", "content"]))
    if kind == "content" and isinstance(value, str):
        return value + draw(st.sampled_from(["\ud800", "\udfff", "a\udbffb"]))
    if kind == "content" and isinstance(value, dict):
        return {**value, draw(st.sampled_from(["x", "properties", "\ud800"])): draw(st.sampled_from([DEEP, {"a": DEEP}]))}
    return draw(HOSTILE)


@st.composite
def _params(draw) -> dict:
    """A MessageCreateParams with up to three of its values, at any depth, made hostile."""
    body = draw(st.one_of([_typed(variant, 0) for variant in typing.get_args(anthropic.types.MessageCreateParams)]))
    for _ in range(draw(st.integers(0, 3))):
        positions = [p for p in _positions(body) if not (p[0] is body and p[1] == "model")]
        if positions:
            container, key = draw(st.sampled_from(positions))
            container[key] = _spoiled(draw, container[key])
    return body


@pytest.fixture(scope="module")
def gemini():
    with FakeGemini(api_key=GEMINI_TEST_KEY) as fake:
        yield fake


@pytest.fixture(scope="module")
def routes(moto_endpoint, _fake_session, gemini):
    """One gateway serving all three routes, a key without limits and one with."""
    providers = {"gemini": {"api_key": GEMINI_TEST_KEY, "api_base": gemini.url},
                 "openai": {"api_key": OPENAI_TEST_KEY, "api_base": _fake_session.url + "/v1"}}
    _fake_session.clear_faults()
    gemini.clear_faults()
    with family_gateway(_fake_session.url, providers, {GEMINI: {}, GPT: {}}) as (stack, key, client):
        limited = stack.add_key(name="limited", limits={"rpm": 1_000_000, "monthly_tokens": 10**12})
        yield str(client.base_url).rstrip("/") + "/v1/messages", [key, limited]


def send(url: str, key: str, body) -> httpx.Response:
    # ASCII escapes: a lone surrogate travels as valid JSON text.
    raw = json.dumps(body).replace(json.dumps(DEEP), "[" * 700 + "]" * 700).encode()
    try:
        with httpx.Client(timeout=60) as client:
            response = client.post(url, content=raw, headers={"x-api-key": key, "content-type": "application/json"})
            response.read()
            return response
    except httpx.HTTPError as exc:
        pytest.fail(f"the connection was dropped without an answer ({exc!r}) for {raw[:300]!r}")


def assert_no_gateway_fault(response: httpx.Response, body) -> None:
    assert response.status_code < 500, \
        f"the gateway answered {response.status_code} (no provider failed): {response.text[:300]} for {str(body)[:300]}"
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        assert '"api_error"' not in response.text, f"a stream ended in the gateway's error: {response.text[-300:]}"


@given(params=_params(), route=st.sampled_from(ROUTES), limited=st.booleans())
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_sdk_shaped_bodies_with_hostile_leaves_never_get_a_5xx_or_a_reset(routes, params, route, limited):
    url, keys = routes
    body = {**params, "model": route}
    assert_no_gateway_fault(send(url, keys[limited], body), body)


@pytest.mark.parametrize("limited", [False, True])
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("hostile", ["blocks", "depth", "surrogate-key", "tool_result-items"])
def test_huge_counts_deep_nesting_and_unencodable_text_on_every_route(routes, route, limited, hostile):
    url, keys = routes
    content: typing.Any = {
        "blocks": [{"type": "text", "text": "x"}] * (MAX_BLOCKS + 1),
        "depth": [{"type": "text", "text": "x", "extra": _deep(MAX_DEPTH + 1)}],
        "surrogate-key": [{"type": "text", "text": "x", "\udc00": 1}],
        "tool_result-items": [{"type": "tool_result", "tool_use_id": "t", "content": [1, ["a", None]]}],
    }[hostile]
    body = {"model": route, "max_tokens": 10, "messages": [{"role": "user", "content": content}]}
    response = send(url, keys[limited], body)
    assert_no_gateway_fault(response, hostile)
    assert 400 <= response.status_code < 500, response.text[:300]
