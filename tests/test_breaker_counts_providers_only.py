"""The shared circuit breaker moves on a provider's own answer only.

An HTTP status the provider returned, a timeout or a failed connection to it
count; what the gateway or litellm decided before or without the provider
is the caller's 400, reaches no provider, and takes the model out of no
other key's @edenai routing: a tool_result that answers no tool_use (the
gateway's own check, before any call), and a history litellm will not build
for Gemini though the gateway lets it through (providers/local_failure.py
reads litellm's traceback for that: the test fails when litellm's frames move).
"""

from __future__ import annotations

import httpx
import pytest

from handler.pipeline.breaker import provider_failure
from handler.providers.upstream import map_exception
from tests.support.fake_gemini import FakeGemini
from tests.support.family_fakes import DIRECT_CLAUDE, GEMINI_TEST_KEY, family_gateway

GEMINI = "gemini/gemini-2.5-flash"
ORPHAN_RESULT = [
    {"role": "user", "content": "what is the weather?"},
    {"role": "assistant", "content": "let me look"},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_nowhere", "content": "sunny"}]},
]
# One assistant turn in two messages (Anthropic combines them; the gateway's check does too),
# which litellm gives Gemini as two, answering the first call from the second: "Missing
# corresponding tool call for tool response message" (litellm_core_utils/prompt_templates/factory.py).
SPLIT_TURN = [
    {"role": "user", "content": "weather and time?"},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_a", "name": "weather", "input": {}}]},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_b", "name": "clock", "input": {}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_a", "content": "sunny"},
                                 {"type": "tool_result", "tool_use_id": "toolu_b", "content": "noon"}]},
]
TOOLS = [{"name": name, "description": f"the {name}", "input_schema": {"type": "object", "properties": {}}}
         for name in ("weather", "clock")]


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


def post(client, key, **body):
    payload = {"max_tokens": 20, **body}
    return httpx.post(str(client.base_url).rstrip("/") + "/v1/messages", json=payload,
                      headers={"x-api-key": key}, timeout=30)


def assert_three_refusals_open_no_circuit(stack, client, gemini, messages, wording: str) -> None:
    """Three of one key's requests refused before Gemini, then another key's @edenai request."""
    attacker, victim = stack.add_key(name="attacker"), stack.add_key(name="victim")
    for _ in range(3):
        response = post(client, attacker, model=GEMINI, tools=TOOLS, messages=messages)
        assert response.status_code == 400, f"a refusal before Gemini answered {response.status_code}: {response.text}"
        assert response.json()["error"]["type"] == "invalid_request_error"
        assert response.json()["error"]["message"].startswith(wording), response.json()["error"]["message"]
        assert response.headers["x-should-retry"] == "false"
    assert gemini.count() == 0, "a request refused before Gemini reached it"
    routed = post(client, victim, model="@edenai", router_candidates=[GEMINI, DIRECT_CLAUDE],
                  messages=[{"role": "user", "content": "hello"}])
    assert routed.status_code == 200, routed.text
    assert routed.json()["model"] == GEMINI, \
        f"another key's @edenai request was steered away: {routed.headers.get('x-edenai-route')}"
    assert "circuit open" not in routed.headers.get("x-edenai-route", "")


def test_three_tool_results_answering_no_tool_use_are_the_callers_400s_and_open_no_circuit(gateway, gemini):
    stack, _, client = gateway
    assert_three_refusals_open_no_circuit(stack, client, gemini, ORPHAN_RESULT,
                                          "messages.2.content.0: unexpected `tool_use_id` found in `tool_result`")


def test_three_histories_litellm_refuses_to_build_are_the_callers_400s_and_open_no_circuit(gateway, gemini):
    stack, _, client = gateway
    assert_three_refusals_open_no_circuit(stack, client, gemini, SPLIT_TURN,
                                          "The request cannot be sent to this model: Missing corresponding tool call")


def test_gemini_failing_with_its_own_503s_still_opens_the_circuit(gateway, gemini):
    stack, _, client = gateway
    key = stack.add_key(name="k")
    gemini.error("gemini-2.5-flash", "UNAVAILABLE", times=3)
    for _ in range(3):
        assert post(client, key, model=GEMINI, messages=[{"role": "user", "content": "hi"}]).status_code >= 500
    routed = post(client, key, model="@edenai", router_candidates=[GEMINI, DIRECT_CLAUDE],
                  messages=[{"role": "user", "content": "hello"}])
    assert routed.json()["model"] == DIRECT_CLAUDE
    assert "circuit open" in routed.headers.get("x-edenai-route", ""), routed.headers.get("x-edenai-route")


def _raised(inner: BaseException, outer: str) -> BaseException:
    """`outer` raised while handling `inner`, as litellm wraps what it catches."""
    try:
        try:
            raise inner
        except BaseException:  # noqa: BLE001
            raise Exception(outer)  # noqa: TRY002
    except Exception as wrapped:  # noqa: BLE001
        return wrapped


def test_a_recursion_error_is_the_gateways_500_that_moves_no_breaker():
    error = map_exception(_raised(RecursionError("maximum recursion depth exceeded"),
                                  "litellm.APIConnectionError: maximum recursion depth exceeded"))
    assert error.status == 500 and "gateway fault" in error.message, error.message
    assert not provider_failure(error), "a gateway fault counted against the model"


def test_a_connection_failure_reaching_the_provider_still_counts():
    error = map_exception(_raised(httpx.ConnectError("connection refused"),
                                  "litellm.APIConnectionError: connection refused"))
    assert error.status == 502 and provider_failure(error)
