"""@edenai routing as pure functions, over catalogues built here.

Filtering (what cannot serve a request, and why), ranking by policy, the
order of attempts with explicit fallbacks, the circuit breaker, and the
history adaptation a cross-provider fallback needs.
"""

from __future__ import annotations

from decimal import Decimal
from types import MappingProxyType

import pytest

from handler.pipeline.breaker import ModelHealth
from handler.protocol.errors import GatewayError
from handler.pipeline.planning import plan_request
from handler.pipeline.history import adapt_messages
from handler.keys.store import ApiKey
from handler.providers.catalogue import Catalogue, Model, Provider
from handler.pipeline.routing import Needs, needs_of, rank, route, unfit_reason

ANTHROPIC = Provider("anthropic", "anthropic")
OPENAI = Provider("openai", "openai")
FULL = {"supports_function_calling": True, "supports_vision": True, "supports_pdf_input": True,
        "supports_reasoning": True, "max_input_tokens": 200_000, "max_output_tokens": 64_000}


def model(model_id, provider=ANTHROPIC, **info):
    return Model(model_id, provider, model_id.split("/")[1], MappingProxyType(info))


SONNET = model("anthropic/sonnet", **FULL, input_cost_per_token=3e-6, output_cost_per_token=1.5e-5)
HAIKU = model("anthropic/haiku", **FULL, input_cost_per_token=1e-6, output_cost_per_token=5e-6)
MINI = model("openai/mini", OPENAI, supports_function_calling=True, supports_vision=True,
             max_input_tokens=128_000, max_output_tokens=16_384,
             input_cost_per_token=1.5e-7, output_cost_per_token=6e-7)
TEXT_ONLY = model("openai/text", OPENAI, supports_function_calling=False, max_input_tokens=8_000,
                  max_output_tokens=4_096, input_cost_per_token=1e-8, output_cost_per_token=1e-8)
UNPRICED = model("openai/house", OPENAI, supports_function_calling=True)
CATALOGUE = Catalogue(MappingProxyType({"anthropic": ANTHROPIC, "openai": OPENAI}),
                      MappingProxyType({m.id: m for m in (SONNET, HAIKU, MINI, TEXT_ONLY, UNPRICED)}))


@pytest.mark.parametrize("candidate, needs, reason", [
    (TEXT_ONLY, Needs(tools=True), "no function calling"),
    (TEXT_ONLY, Needs(images=True), "no vision"),
    (TEXT_ONLY, Needs(documents=True), "no document input"),
    (MINI, Needs(thinking=True), "no extended thinking"),
    (TEXT_ONLY, Needs(input_tokens=7_500, max_tokens=1_000), "context window 8000 < 7500 input + 1000 max_tokens"),
    (MINI, Needs(max_tokens=20_000), None),  # clamped to its 16384, not dropped
    (TEXT_ONLY, Needs(input_tokens=3_000, max_tokens=32_000), None),  # 3000 + 4096 (clamped) fit in 8000
    (MINI, Needs(structured=True), "structured output unknown"),
    (model("openai/old", OPENAI, supports_response_schema=False), Needs(structured=True),
     "no structured output (JSON schema)"),
    (model("openai/new", OPENAI, supports_response_schema=True), Needs(structured=True), None),
    (SONNET, Needs(adaptive_thinking=True), "no adaptive thinking"),
    (model("anthropic/opus", supports_adaptive_thinking=True), Needs(adaptive_thinking=True), None),
    (MINI, Needs(adaptive_thinking=True), None),  # dropped visibly from its call instead
    (SONNET, Needs(tools=True, images=True, documents=True, thinking=True, input_tokens=100_000), None),
    (TEXT_ONLY, Needs(input_tokens=10, max_tokens=100), None),
])
def test_a_candidate_is_dropped_only_for_what_it_cannot_do(candidate, needs, reason):
    assert unfit_reason(candidate, needs) == reason


def test_needs_are_read_from_the_request():
    body = {"tools": [{"name": "t"}], "thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 50,
            "messages": [{"role": "user", "content": [
                {"type": "image", "source": {}},
                {"type": "tool_result", "tool_use_id": "x", "content": [{"type": "document", "source": {}}]}]}]}
    assert needs_of(body, 123) == Needs(True, True, True, True, 123, 50)
    assert needs_of({"messages": [{"role": "user", "content": "hi"}]}, 1) == Needs(input_tokens=1)


def test_cheapest_ranks_by_this_requests_estimated_cost_and_unpriced_last():
    needs = Needs(input_tokens=1000, max_tokens=100)
    assert [m.id for m in rank([SONNET, UNPRICED, HAIKU, MINI], needs, "cheapest", lambda _: None)] == \
        ["openai/mini", "anthropic/haiku", "anthropic/sonnet", "openai/house"]


def test_fastest_ranks_by_recent_latency_and_order_keeps_the_given_order():
    latency = {"anthropic/sonnet": 300.0, "anthropic/haiku": 900.0, "openai/mini": 500.0}.get
    assert [m.id for m in rank([HAIKU, MINI, SONNET], Needs(), "fastest", latency)] == \
        ["anthropic/sonnet", "openai/mini", "anthropic/haiku"]
    assert rank([HAIKU, MINI, SONNET], Needs(), "order", latency) == [HAIKU, MINI, SONNET]


def test_route_explains_its_choice_and_keeps_the_next_candidates_as_fallbacks():
    routed = route([SONNET, HAIKU, MINI, TEXT_ONLY], {}, Needs(tools=True), policy="cheapest", is_open=lambda _: False)
    assert [m.id for m in routed.models] == ["openai/mini", "anthropic/haiku", "anthropic/sonnet"]
    assert routed.dropped == {"openai/text": "no function calling"}
    assert routed.reason.startswith("policy=cheapest; chose openai/mini (estimated $")
    assert "of 3 fit; dropped 1" in routed.reason


def test_route_with_nothing_left_says_why_each_was_dropped():
    with pytest.raises(GatewayError) as caught:
        route([MINI, TEXT_ONLY], {}, Needs(thinking=True), policy="cheapest", is_open=lambda m: m == "openai/text")
    assert caught.value.status == 400
    assert caught.value.message == ("@edenai: no candidate model can serve this request "
                                    "(openai/mini: no extended thinking; openai/text: recently failing (circuit open)).")


KEY = ApiKey("k_1", "test")


def test_plan_for_edenai_puts_explicit_fallbacks_right_after_the_routed_choice():
    body = {"model": "@edenai", "fallbacks": ["anthropic/sonnet"], "messages": [{"role": "user", "content": "hi"}],
            "router_candidates": ["anthropic/sonnet", "anthropic/haiku", "openai/mini"]}
    plan = plan_request(CATALOGUE, KEY, body, policy="cheapest", health=ModelHealth())
    assert [m.id for m in plan.models] == ["openai/mini", "anthropic/sonnet", "anthropic/haiku"]
    assert plan.route_reason.startswith("policy=cheapest; chose openai/mini")


def test_plan_for_edenai_defaults_to_every_model_the_key_may_use():
    key = ApiKey("k_2", "anthropic only", models=("anthropic/*",))
    plan = plan_request(CATALOGUE, key, {"model": "@edenai", "messages": []}, policy="cheapest", health=ModelHealth())
    assert [m.id for m in plan.models] == ["anthropic/haiku", "anthropic/sonnet"]


@pytest.mark.parametrize("body, status, needle", [
    ({"router_candidates": ["openai/mini", "openai/mini"]}, 400, "only once"),
    ({"router_candidates": ["openai/nope"]}, 404, "not in this gateway's catalogue"),
    ({"router_candidates": ["mini-without-provider/"]}, 400, "Malformed model id"),
    ({"fallbacks": ["openai/mini", "openai/mini"]}, 400, "only once"),
])
def test_bad_candidates_are_clear_errors(body, status, needle):
    with pytest.raises(GatewayError) as caught:
        plan_request(CATALOGUE, KEY, {"model": "@edenai", "messages": [], **body}, policy="cheapest",
                     health=ModelHealth())
    assert caught.value.status == status and needle in caught.value.message


def test_a_candidate_the_key_may_not_use_is_a_403():
    key = ApiKey("k_3", "anthropic only", models=("anthropic/*",))
    with pytest.raises(GatewayError) as caught:
        plan_request(CATALOGUE, key, {"model": "@edenai", "messages": [], "router_candidates": ["openai/mini"]},
                     policy="cheapest", health=ModelHealth())
    assert caught.value.status == 403


def test_the_breaker_opens_after_repeated_failures_and_half_opens_after_the_cooldown():
    now = [0.0]
    health = ModelHealth(threshold=3, cooldown=30, clock=lambda: now[0])
    for _ in range(2):
        health.record_failure("m")
    assert not health.is_open("m")
    health.record_failure("m")
    assert health.is_open("m")
    now[0] = 31
    assert not health.is_open("m")          # half-open: one request may try
    health.record_failure("m")
    assert health.is_open("m")              # and one more failure re-opens it
    now[0] = 62
    health.record_success("m", 120.0)
    assert not health.is_open("m") and health.latency_ms("m") == 120.0


def test_latency_is_a_moving_average():
    health = ModelHealth()
    health.record_success("m", 100.0)
    health.record_success("m", 200.0)
    assert health.latency_ms("m") == pytest.approx(120.0)


SIGNED = {"type": "thinking", "thinking": "hmm", "signature": "sig"}
UNSIGNED = {"type": "thinking", "thinking": "hmm"}
REDACTED = {"type": "redacted_thinking", "data": "opaque"}
TEXT = {"type": "text", "text": "answer"}


def test_thinking_never_reaches_an_openai_provider():
    history = [{"role": "user", "content": "q"}, {"role": "assistant", "content": [SIGNED, REDACTED, TEXT]},
               {"role": "assistant", "content": [SIGNED]}, {"role": "user", "content": "more"}]
    assert adapt_messages(history, anthropic=False) == [
        {"role": "user", "content": "q"}, {"role": "assistant", "content": [TEXT]}, {"role": "user", "content": "more"}]
    assert history[1]["content"] == [SIGNED, REDACTED, TEXT]  # the caller's copy is untouched


def test_anthropic_gets_signed_thinking_and_loses_unsigned_blocks():
    history = [{"role": "assistant", "content": [UNSIGNED, SIGNED, REDACTED, TEXT]}]
    assert adapt_messages(history, anthropic=True) == [{"role": "assistant", "content": [SIGNED, REDACTED, TEXT]}]
