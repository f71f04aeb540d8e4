"""A request's reservation is at least what the provider bills for it, on every route.

Bodies are drawn from the anthropic SDK's own request types
(`anthropic.types.MessageCreateParams` and its beta twin: text, image,
document, search result, tool_use/tool_result, thinking, server tools, tools
with input_schema, system as a string or blocks, output_config formats,
stop_sequences, metadata, mcp_servers ...), streamed and not, to each route:
Anthropic direct, Claude on Bedrock and on Vertex, an OpenAI-compatible model
(Chat Completions), Gemini and Nova through litellm.

The reservation is read as a caller reads it: a key whose monthly token cap
is 0 and one whose monthly spend cap is $0 are refused with "this request may
use up to N" (the bound the gateway would reserve, handler/metering/bounds.py).
The bill is what the fake provider reported for the same body sent with a key
without limits, as the ledger recorded it (its tokens checked equal to the
fake's report, its cost priced by the price map, server tool fees included).
Examples are bounded and derandomized (CI time).
"""

from __future__ import annotations

import re
import time
import typing
from contextlib import ExitStack
from decimal import Decimal

import anthropic.types
import anthropic.types.beta
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.family_fakes import DIRECT_CLAUDE, family_gateway, start_family_fakes
from tests.support.sdk_params import typed
from tests.support.stack import OPENAI_TEST_KEY

BEDROCK_CLAUDE = "bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0"
VERTEX_CLAUDE = "vertex/claude-sonnet-4-5@20250929"
GPT = "openai/gpt-4o-mini"
GEMINI = "gemini/gemini-2.5-flash"
NOVA = "bedrock/amazon.nova-lite-v1:0"
ROUTES = [DIRECT_CLAUDE, BEDROCK_CLAUDE, VERTEX_CLAUDE, GPT, GEMINI, NOVA]
EXAMPLES = 25
# Parameters the SDK sends as headers or that the gateway reads as its own extension.
NOT_BODY = ("stream", "betas", "fallbacks", "model", "max_tokens")

# Dense text: many fake "tokens" (words) per byte, and multi-byte characters.
TEXT = st.text(alphabet=st.sampled_from("a b\n🙂é{}\""), max_size=40)
# The prompt's last text, echoed by the fakes' answer: long enough for max_tokens to bind.
LAST = st.lists(st.sampled_from(["a", "b", "ab", "🙂"]), min_size=10, max_size=100).map(" ".join)
PLAIN = st.one_of(st.none(), TEXT, st.integers(0, 100), st.booleans())


def sdk(tp) -> st.SearchStrategy:
    """A value of the SDK type `tp`, plain leaves."""
    return typed(tp, PLAIN, text=TEXT, max_depth=5)


T = anthropic.types
# What a user turn holds: text, media (an image, a document of any source), search results.
USER_BLOCKS = st.one_of([sdk(tp) for tp in (T.TextBlockParam, T.ImageBlockParam, T.DocumentBlockParam,
                                             T.SearchResultBlockParam)])
# A whole request of the SDK's types, beta fields included, for what the parts below leave out.
PARAMS = st.one_of([sdk(variant) for params in (T.MessageCreateParams, anthropic.types.beta.MessageCreateParams)
                    for variant in typing.get_args(params)])
OPTIONAL = {"system": st.one_of(TEXT, st.lists(sdk(T.TextBlockParam), max_size=2)),
            "tools": st.lists(sdk(T.ToolUnionParam), max_size=3), "output_config": sdk(T.OutputConfigParam),
            "stop_sequences": st.lists(TEXT, max_size=2), "metadata": sdk(T.MetadataParam),
            "thinking": sdk(T.ThinkingConfigParam)}


@st.composite
def conversation(draw) -> list[dict]:
    """A user turn of SDK blocks (media included), or a tool round trip: an assistant's thinking
    and tool_use, answered by a tool_result of SDK blocks; the last text long enough to echo."""
    last = {"type": "text", "text": draw(LAST)}
    if not draw(st.booleans()):
        return [{"role": "user", "content": [*draw(st.lists(USER_BLOCKS, min_size=1, max_size=3)), last]}]
    thinking = draw(st.lists(sdk(T.ThinkingBlockParam), max_size=1))
    call = {**draw(sdk(T.ToolUseBlockParam)), "id": "toolu_1"}
    result = {**draw(sdk(T.ToolResultBlockParam)), "tool_use_id": "toolu_1",
              "content": draw(st.one_of(TEXT, st.lists(USER_BLOCKS, max_size=3)))}
    return [{"role": "user", "content": draw(TEXT) or "go"}, {"role": "assistant", "content": [*thinking, call]},
            {"role": "user", "content": [result, last]}]


@st.composite
def bodies(draw, route: str) -> dict:
    """A request for `route` of the SDK's types: a conversation, some of the optional parts
    (system, tools with server tools, output_config, stop_sequences, metadata, thinking), and
    sometimes a whole drawn MessageCreateParams' other fields."""
    extra = draw(st.one_of(st.just({}), PARAMS))
    body = {name: value for name, value in extra.items() if name not in NOT_BODY}
    chosen = draw(st.lists(st.sampled_from(sorted(OPTIONAL)), unique=True, max_size=4))
    body.update({name: draw(OPTIONAL[name]) for name in chosen})
    body.pop("tool_choice", None)  # a forced tool the drawn tools may not hold is a refusal, unbilled
    # Mostly a max_tokens the fake's answer (an echo of the prompt) reaches: output at its bound.
    max_tokens = draw(st.one_of(st.integers(1, 60), st.integers(1, 4096)))
    return {**body, "model": route, "max_tokens": max_tokens, "messages": with_decodable_data(draw(conversation()))}


# A 1x1 PNG: base64 data the gateway and the providers can decode.
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGMAAQAABQABDQottAAAAABJRU5ErkJggg==")


def with_decodable_data(value):
    """`value` with every base64 source's data made decodable (random text is refused unbilled)."""
    if isinstance(value, list):
        return [with_decodable_data(item) for item in value]
    if not isinstance(value, dict):
        return value
    fixed = {name: with_decodable_data(item) for name, item in value.items()}
    if fixed.get("type") == "base64" and "data" in fixed:
        fixed["data"] = PNG
    return fixed


@pytest.fixture(scope="module")
def gateway(moto_endpoint, _fake_session):
    """Every route behind one gateway; a key capped at 0 tokens and one at $0, to read reservations."""
    with ExitStack() as stack:
        families = start_family_fakes(stack)
        providers = {**families.providers, "openai": {"api_key": OPENAI_TEST_KEY, "api_base": _fake_session.url + "/v1"}}
        _fake_session.clear_faults()
        with family_gateway(_fake_session.url, providers, {**families.models, GPT: {}}) as (gw, _, client):
            # Every key made before the first request: a key the gateway has not seen yet may be
            # taken for an unknown one (its lookups of unknown keys are rate limited).
            tokens = gw.add_key(name="no tokens", limits={"monthly_tokens": 0})
            spend = gw.add_key(name="no spend", limits={"monthly_usd": 0})
            billed = {route: gw.add_key(name=f"billed on {route}") for route in ROUTES}  # its records apart
            yield gw, str(client.base_url).rstrip("/") + "/v1/messages", tokens, spend, billed


def post(url: str, key: str, body: dict) -> httpx.Response:
    with httpx.Client(timeout=60) as client:
        response = client.post(url, json=body, headers={"x-api-key": key})
        response.read()
        return response


RESERVED = re.compile(r"this request may use up to \$?([0-9]+(?:\.[0-9]+)?)")


def reservation(url: str, key: str, body: dict) -> Decimal | None:
    """What the gateway would reserve for `body`, from the refusal of a key with no room."""
    response = post(url, key, body)
    if response.status_code != 429:
        return None
    found = RESERVED.search(response.json()["error"]["message"])
    assert found, f"a refusal for a cap did not say what the request may use: {response.text}"
    return Decimal(found.group(1))


def billed_record(gw, key: str, request_id: str, timeout: float = 10.0) -> dict:
    """The request's record in the ledger (written after the response): the provider's report,
    priced by the price map."""
    deadline = time.monotonic() + timeout
    while True:
        found = [record for record in gw.items(key, "REQ#") if record["request_id"] == request_id]
        if found or time.monotonic() > deadline:
            assert found, f"no record of {request_id} after {timeout} s"
            return found[0]
        time.sleep(0.02)


USAGE = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


@pytest.mark.parametrize("route", ROUTES)
def test_the_reservation_covers_what_the_provider_bills_for_any_sdk_shaped_body(gateway, route):
    gw, url, no_tokens, no_spend, keys = gateway
    key = keys[route]
    billed: list[dict] = []

    @given(body=bodies(route), stream=st.booleans())
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(body: dict, stream: bool) -> None:
        if assert_reserved_at_least_billed(gw, url, key, no_tokens, no_spend, {**body, "stream": stream}):
            billed.append(body)

    check()
    assert len(billed) >= EXAMPLES // 3, f"only {len(billed)} of {EXAMPLES} drawn bodies were served on {route}"


def assert_reserved_at_least_billed(gw, url: str, key: str, no_tokens: str, no_spend: str, body: dict) -> bool:
    """Whether `body` was served (and billed) with `key`; if so, the bill is within what the
    capped keys were told it may use."""
    route = body["model"]
    tokens, usd = reservation(url, no_tokens, body), reservation(url, no_spend, body)
    response = post(url, key, body)
    if response.status_code != 200:  # refused by the gateway or the provider: nothing billed
        return False
    assert tokens is not None and usd is not None, f"a body {route} served was not bounded: {body}"
    record = billed_record(gw, key, response.headers["request-id"])
    used = {name: int(record[name]) for name in USAGE}
    assert sum(used.values()) <= tokens, \
        f"{route} billed {used} ({sum(used.values())} tokens), above the {tokens} reserved, for {body}"
    assert Decimal(str(record["cost_usd"])) <= usd, \
        f"{route} billed ${record['cost_usd']} ({used}), above the ${usd} reserved, for {body}"
    return True


@pytest.mark.parametrize("route", [DIRECT_CLAUDE, BEDROCK_CLAUDE, VERTEX_CLAUDE])
def test_two_pdfs_that_pass_claudes_window_are_refused_unbilled_not_billed_above_the_reservation(gateway, route):
    """The property test's find: two PDFs (base64 and URL) read at 150,000 tokens each; the
    reservation takes the prompt at the context window (200,000), as Claude refuses a longer
    prompt unbilled ("prompt is too long: ... > 200000 maximum"), which the fakes did not."""
    gw, url, no_tokens, no_spend, keys = gateway
    key = keys[route]
    pdfs = [{"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PNG}},
            {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}]
    body = {"model": route, "max_tokens": 1, "stream": False,
            "messages": [{"role": "user", "content": [*pdfs, {"type": "text", "text": "a a a a a a a a a a"}]}]}
    assert_reserved_at_least_billed(gw, url, key, no_tokens, no_spend, body)
