"""Generated input: schemathesis drives every route from the app's own OpenAPI document.

At least 1,000 generated requests per operation (fewer only where the
schema admits fewer distinct inputs): no 5xx, every response within its
documented status, content type and schema, and every upstream call metered.
Schemathesis's "schema-valid data is accepted" check is off: the schema says
`model` is any string, but only catalogue models are, and the 400 that names
the unknown model is the right answer. Its "auth is not ignored" check is
off too: it replays a request with our key still attached (we pass it as a
header) and expects a 401; test_auth.py covers authentication.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from handler.app import create_app
from tests.support.stack import new_stack, serve

EXAMPLES = 1000


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
                                      excluded_checks=[positive_data_acceptance, ignored_auth])
    assert response.status_code < 500 or response.status_code in (502, 504, 529), response.text


def test_every_upstream_call_of_the_generated_run_was_metered(gateway, _fake_session):
    stack, key, _ = gateway
    calls = [r for r in _fake_session.snapshot()
             if r.path.endswith(("/v1/messages", "/chat/completions")) and not r.path.endswith("count_tokens")]
    records = stack.records(key, 0)
    attempts = sum(len(record["attempts"]) for record in records)
    assert attempts == len(calls)
