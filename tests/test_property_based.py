"""Generated input: schemathesis drives every route from the app's own OpenAPI document.

At least 1,000 generated requests per operation (fewer only where the
schema admits fewer distinct inputs): no 5xx, every response within its
documented status, content type and schema, and every upstream call metered.
Arbitrary strings almost never name a catalogue model, so a second run draws
message requests from the schema's valid space with a catalogue model (and
catalogue fallbacks): a known share of those must reach the fake upstream and
be answered 200 (checked against the response schema), so the metering check
compares real calls with real records, not 0 with 0.
Schemathesis's "schema-valid data is accepted" check is off: the schema says
`model` is any string, but only catalogue models are, and the 400 that names
the unknown model is the right answer. Its "auth is not ignored" check is
off too: it replays a request with our key still attached (we pass it as a
header) and expects a 401; test_auth.py covers authentication.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from handler.app import create_app
from tests.support.stack import TEST_MODELS, new_stack, serve

EXAMPLES = 1000
VALID_EXAMPLES = 300
# Of 300 drawn requests about 150 pass the content checks (the schema admits
# content block types the gateway refuses with 400, and JSON it will not parse); those reach the fake.
MIN_REACHED = 100
CATALOGUE = sorted(TEST_MODELS)
CALL_TIMEOUT = 60  # the first OpenAI-type request imports litellm: seconds on a loaded machine


# The document needs no AWS: the app is built here only to read it (no network at init).
schema = schemathesis.openapi.from_dict(create_app().openapi())


@pytest.fixture(scope="module")
def gateway(moto_endpoint, _fake_session):
    """One gateway under uvicorn for the whole generated run, so metering can be checked at the end."""
    stack = new_stack(_fake_session.url)
    key = stack.add_key(name="schemathesis")
    _fake_session.clear_faults()
    _fake_session.clear()  # count only this run's upstream calls
    with serve(stack) as server:
        yield stack, key, server


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_generated_requests_get_documented_answers_and_never_a_5xx(case, gateway):
    _, key, server = gateway
    response = case.call_and_validate(base_url=server.url, headers={"x-api-key": key},
                                      timeout=CALL_TIMEOUT,
                                      excluded_checks=[positive_data_acceptance, ignored_auth])
    assert response.status_code < 500 or response.status_code in (502, 504, 529), response.text


valid_statuses: Counter = Counter()


@st.composite
def valid_message_cases(draw):
    """A schema-valid message request naming catalogue models only."""
    case = draw(schema["/v3/v1/messages"]["POST"].as_strategy(generation_mode=GenerationMode.POSITIVE))
    models = draw(st.permutations(CATALOGUE))
    body = {**case.body, "model": models[0]}
    body.pop("router_candidates", None)
    if not body.get("messages"):  # the schema allows none; the API needs one
        body["messages"] = [{"role": "user", "content": draw(st.text(min_size=1))}]
    if "fallbacks" in body:
        body["fallbacks"] = models[1:1 + draw(st.integers(0, 2))]
    if body.get("tool_choice") is not None:  # the schema's "any object" is mostly not a choice
        body["tool_choice"] = draw(st.sampled_from([{"type": "auto"}, {"type": "any"}, {"type": "none"}]))
    case.body = body
    # The key is the test's: a generated Authorization header would name another.
    case.headers = {name: value for name, value in (case.headers or {}).items()
                    if name.lower() not in ("authorization", "x-api-key")}
    return case


@settings(max_examples=VALID_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(case=valid_message_cases())
def test_valid_message_requests_reach_the_upstream_and_get_documented_answers(case, gateway):
    _, key, server = gateway
    response = case.call_and_validate(base_url=server.url, headers={"x-api-key": key},
                                      timeout=CALL_TIMEOUT,
                                      excluded_checks=[positive_data_acceptance, ignored_auth])
    valid_statuses[response.status_code] += 1
    # 400: content the gateway refuses; 422: numbers like `1.0` that JSON Schema calls integers.
    assert response.status_code in (200, 400, 422), response.text


def test_every_upstream_call_of_the_generated_run_was_metered(gateway, _fake_session):
    stack, key, _ = gateway
    answered = valid_statuses[200]
    assert answered >= MIN_REACHED, (
        f"only {answered} generated requests were answered 200 ({dict(valid_statuses)}): "
        "metering and the 200 schema were barely exercised")
    print(f"\nvalid-space statuses: {dict(valid_statuses)}")
    calls = [r for r in _fake_session.snapshot()
             if r.path.endswith(("/v1/messages", "/chat/completions")) and not r.path.endswith("count_tokens")]
    assert len(calls) >= answered, "every 200 was one upstream call at least"
    records = stack.records(key, answered)
    assert len(records) >= answered
    attempts = sum(len(record["attempts"]) for record in records)
    assert attempts == len(calls), f"{len(calls)} upstream calls, {attempts} metered attempts"
