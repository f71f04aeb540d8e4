"""Every refusal answers in its route's documented shape, whatever is malformed.

The seed documents one answer in FastAPI's shape: a request body that breaks
the spec gets 422 `HTTPValidationError` (`{"detail": [{loc, msg, type}]}`),
on `POST /v3/v1/messages` and `/v3/v1/messages/count_tokens`. Everything else
is Anthropic's envelope `{"type": "error", "error": {"type", "message"}}`
(DESIGN.md), query and path parameters included: a `limit` that is not an
integer is a 400 naming it, as Anthropic names a field
(`limit: Input should be a valid integer...`), never FastAPI's own 422.
"""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handler.app import create_app

CLAUDE = "anthropic/claude-sonnet-4-5"
BODY_ROUTES = ("/v3/v1/messages", "/v3/v1/messages/count_tokens")
VALID = {"model": CLAUDE, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                           max_leaves=6)
# A valid body with one field left out or replaced, at the top or inside its first message.
malformed_bodies = st.one_of(
    st.sampled_from(sorted(VALID)).map(lambda name: {k: v for k, v in VALID.items() if k != name}),
    st.tuples(st.sampled_from(sorted(VALID)), json_values).map(lambda pair: {**VALID, pair[0]: pair[1]}),
    st.tuples(st.sampled_from(["role", "content"]), st.booleans(), json_values).map(
        lambda t: {**VALID, "messages": [{**({} if t[1] else {"role": "user", "content": "hi"}), t[0]: t[2]}]}),
    json_values,
)
query_values = st.text(st.characters(codec="ascii", exclude_categories=("Cc",)), max_size=6) | \
    st.integers(-5, 5000).map(str)


def assert_anthropic_error(response: httpx.Response) -> None:
    body = response.json()
    assert body.get("type") == "error" and set(body.get("error", {})) == {"type", "message"}, \
        f"{response.request.method} {response.request.url} answered {response.status_code} outside Anthropic's envelope: {body}"


def assert_documented_shape(response: httpx.Response, *, body_route: bool) -> None:
    if response.status_code < 400:
        return
    if response.status_code == 422 and body_route:
        detail = response.json().get("detail")
        assert isinstance(detail, list) and detail and all(
            isinstance(e.get("loc"), list) and e["loc"][:1] == ["body"] and isinstance(e.get("msg"), str)
            for e in detail), f"a 422 outside HTTPValidationError's shape: {response.text}"
        return
    assert response.status_code != 422, f"{response.request.url} answered FastAPI's own 422: {response.text}"
    assert_anthropic_error(response)


@pytest.fixture
def http(server, api_key):
    with httpx.Client(base_url=server.url, headers={"x-api-key": api_key}, timeout=30) as client:
        yield client


def test_a_models_limit_that_is_not_an_integer_is_anthropics_400_naming_it(http):
    response = http.get("/v3/v1/models", params={"limit": "ten"})
    assert response.status_code == 400, f"the caller saw {response.status_code}: {response.text}"
    assert_anthropic_error(response)
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("limit: Input should be a valid integer"), error["message"]
    assert response.headers["x-should-retry"] == "false" and response.headers["request-id"]


def test_a_message_without_content_is_the_seeds_422_naming_the_field(http):
    for route in BODY_ROUTES:
        response = http.post(route, json={**VALID, "messages": [{"role": "user"}]})
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", "messages", 0, "content"]


def test_the_document_promises_422_only_where_a_body_is_validated():
    document = create_app().openapi()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if "422" in operation["responses"]:
                assert "requestBody" in operation, f"{method.upper()} {path} documents a 422 it never gives"


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(route=st.sampled_from(BODY_ROUTES), body=malformed_bodies)
def test_every_malformed_body_is_refused_in_a_documented_shape(http, fake, route, body):
    response = http.post(route, json=body)
    assert response.status_code < 500, response.text
    assert_documented_shape(response, body_route=True)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(params=st.dictionaries(st.sampled_from(["limit", "before_id", "after_id", "month"]), query_values, max_size=3),
       path=st.sampled_from(["/v3/v1/models", "/v3/usage", "/v3/v1/models/x", f"/v3/v1/models/{CLAUDE}"]),
       keyed=st.booleans())
def test_every_malformed_query_is_refused_in_anthropics_envelope(http, path, params, keyed):
    headers = {} if keyed else {"x-api-key": ""}
    response = http.get(path, params=params, headers=headers)
    assert response.status_code < 500, response.text
    assert_documented_shape(response, body_route=False)
