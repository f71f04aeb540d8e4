"""POST /v3/v1/messages accepts exactly the seed's body and refuses the rest clearly.

Schema violations answer 422 in FastAPI's HTTPValidationError shape (the
seed says so); transport-level problems (JSON, content type, size) answer
4xx in Anthropic's envelope. None of them reaches the upstream.
"""

from __future__ import annotations

import httpx
import pytest

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def post(server, api_key):
    def _post(body=None, *, content=None, headers=None):
        all_headers = {"x-api-key": api_key, **(headers or {})}
        return httpx.post(f"{server.url}/v3/v1/messages", json=body, content=content,
                          headers=all_headers, timeout=20)
    return _post


def body(**fields):
    return {"model": "anthropic/claude-sonnet-4-5", "messages": MESSAGES, **fields}


@pytest.mark.parametrize(
    "fields, loc",
    [
        ({"max_tokens": 0}, ["body", "max_tokens"]),
        ({"max_tokens": "5"}, ["body", "max_tokens"]),
        ({"temperature": 2.01}, ["body", "temperature"]),
        ({"temperature": -0.1}, ["body", "temperature"]),
        ({"top_p": 1.5}, ["body", "top_p"]),
        ({"top_k": 1.5}, ["body", "top_k"]),
        ({"stream": "yes"}, ["body", "stream"]),
        ({"fallbacks": ["a/b", "c/d", "e/f", "g/h"]}, ["body", "fallbacks"]),
        ({"router_candidates": "openai/gpt-4o"}, ["body", "router_candidates"]),
        ({"stop_sequences": "STOP"}, ["body", "stop_sequences"]),
        ({"tools": {"name": "x"}}, ["body", "tools"]),
        ({"system": 5}, ["body", "system"]),
        ({"extra_headers": {"x-a": 1}}, ["body", "extra_headers", "x-a"]),
        ({"messages": [{"role": "tool", "content": "hi"}]}, ["body", "messages", 0, "role"]),
        ({"messages": [{"role": "user"}]}, ["body", "messages", 0, "content"]),
        ({"messages": [{"role": "user", "content": [{"text": "no type"}]}]},
         ["body", "messages", 0, "content"]),
        ({"messages": "hi"}, ["body", "messages"]),
    ],
)
def test_a_body_that_breaks_the_spec_gets_422_naming_the_field(post, fake, fields, loc):
    response = post(body(**fields))
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert all({"loc", "msg", "type"} <= set(error) for error in detail)
    assert any(error["loc"][: len(loc)] == loc for error in detail), detail
    assert response.headers["request-id"].startswith("req_")
    assert fake.count() == 0


@pytest.mark.parametrize("missing", ["model", "messages"])
def test_required_fields_are_required(post, fake, missing):
    document = body()
    del document[missing]
    response = post(document)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", missing]
    assert fake.count() == 0


def test_bounds_are_inclusive_and_extra_fields_are_allowed(post, fake):
    response = post(body(max_tokens=1, temperature=2, top_p=0, fallbacks=["openai/gpt-4o", "openai/gpt-4o-mini",
                                                                            "anthropic/claude-haiku-4-5"],
                         some_future_field={"x": 1}))
    assert response.status_code == 200, response.text
    assert fake.count() == 1


def test_max_tokens_defaults_to_1024(post, fake):
    assert post(body()).status_code == 200
    assert fake.last().body["max_tokens"] == 1024


@pytest.mark.parametrize(
    "content, status, needle",
    [
        (b'{"model": "x", "messages": [', 400, "Malformed JSON"),
        (b"", 400, "empty"),
        (b'{"model": "a", "model": "b", "messages": []}', 400, "duplicate key"),
        (b'{"model": "a", "messages": [], "temperature": NaN}', 400, "NaN"),
        (b'{"model": "a", "messages": [], "temperature": Infinity}', 400, "Infinity"),
        (b'{"model": "\xff\xfe", "messages": []}', 400, "UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "nested"),
    ],
)
def test_malformed_json_gets_400_in_anthropic_envelope(post, fake, content, status, needle):
    response = post(content=content, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert needle in error["error"]["message"]
    assert fake.count() == 0


def test_a_wrong_content_type_gets_415(post, fake):
    response = post(content=b"model=x", headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert fake.count() == 0


def test_a_body_over_10_mb_gets_413(post, fake):
    big = body(messages=[{"role": "user", "content": "x" * (10 * 1024 * 1024 + 1)}])
    response = post(big)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"
    assert fake.count() == 0


def test_a_chunked_body_over_the_cap_is_cut_off_while_reading(post, fake):
    def chunks():
        for _ in range(11):
            yield b" " * (1024 * 1024)
    response = post(content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert fake.count() == 0


def test_unknown_routes_get_404_in_anthropic_envelope(server):
    response = httpx.get(f"{server.url}/v3/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"type": "error", "error": {"type": "not_found_error", "message": "Not found."}}
    assert response.headers["request-id"].startswith("req_")


def test_wrong_method_gets_405_in_anthropic_envelope(server):
    response = httpx.get(f"{server.url}/v3/v1/messages")
    assert response.status_code == 405
    assert response.json()["type"] == "error"


def test_a_body_faulty_at_its_head_and_in_a_later_message_is_told_of_its_head_only(post, fake):
    """The schema is judged slice by slice, the body's head (its fields and first message) first:
    a caller is told what is wrong there, and a later message's fault only once the head is right.
    A small body gets the same answer as a large one (validate's one-slice path must not list more)."""
    faulty = body(max_tokens=0, messages=[*MESSAGES, {"role": "tool", "content": "hi"}])
    response = post(faulty)
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [["body", "max_tokens"]], (
        "the caller was told of other faults than its body's head's")
    fixed = post({**faulty, "max_tokens": 5})
    assert fixed.status_code == 422, fixed.text
    assert [error["loc"] for error in fixed.json()["detail"]] == [["body", "messages", 1, "role"]], (
        "once the head is right, the caller was not told where the later message is wrong")
    assert fake.count() == 0
