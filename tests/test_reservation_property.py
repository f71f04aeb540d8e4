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
PLAIN = st.one_of(st.none(), TEXT, st.integers(0, 100), st.booleans())
PARAMS = st.one_of([typed(variant, PLAIN, text=TEXT, max_depth=5)
                    for params in (anthropic.types.MessageCreateParams, anthropic.types.beta.MessageCreateParams)
                    for variant in typing.get_args(params)])


@st.composite
def bodies(draw, route: str) -> dict:
    """A MessageCreateParams of the SDK's types, for `route`, with a sensible max_tokens."""
    params = draw(PARAMS)
    body = {name: value for name, value in params.items() if name not in NOT_BODY}
    if not body.get("messages"):  # a body without a message is refused unbilled: not worth a draw
        body["messages"] = [{"role": "user", "content": draw(TEXT) or "hi"}]
    return {"model": route, "max_tokens": draw(st.integers(1, 4096)), **body}


@pytest.fixture(scope="module")
def gateway(moto_endpoint, _fake_session):
    """Every route behind one gateway; a key capped at 0 tokens and one at $0, to read reservations."""
    with ExitStack() as stack:
        families = start_family_fakes(stack)
        providers = {**families.providers, "openai": {"api_key": OPENAI_TEST_KEY, "api_base": _fake_session.url + "/v1"}}
        _fake_session.clear_faults()
        with family_gateway(_fake_session.url, providers, {**families.models, GPT: {}}) as (gw, _, client):
            tokens = gw.add_key(name="no tokens", limits={"monthly_tokens": 0})
            spend = gw.add_key(name="no spend", limits={"monthly_usd": 0})
            yield gw, str(client.base_url).rstrip("/") + "/v1/messages", tokens, spend


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
    gw, url, no_tokens, no_spend = gateway
    key = gw.add_key(name=f"billed on {route}")  # its own records: each found among few
    billed: list[str] = []

    @given(body=bodies(route), stream=st.booleans())
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(body: dict, stream: bool) -> None:
        body = {**body, "stream": stream}
        tokens, usd = reservation(url, no_tokens, body), reservation(url, no_spend, body)
        response = post(url, key, body)
        if response.status_code != 200:  # refused by the gateway or the provider: nothing billed
            assert response.status_code < 500, f"{route} answered {response.status_code}: {response.text[:300]}"
            return
        assert tokens is not None and usd is not None, f"a body {route} served was not bounded: {body}"
        record = billed_record(gw, key, response.headers["request-id"])
        used = {name: int(record[name]) for name in USAGE}
        assert sum(used.values()) <= tokens, \
            f"{route} billed {used} ({sum(used.values())} tokens), above the {tokens} reserved, for {body}"
        assert Decimal(str(record["cost_usd"])) <= usd, \
            f"{route} billed ${record['cost_usd']} ({used}), above the ${usd} reserved, for {body}"
        billed.append(record["request_id"])

    check()
    assert len(billed) >= EXAMPLES // 2, f"only {len(billed)} of {EXAMPLES} drawn bodies were served on {route}"
