"""The fake Vertex AI refuses what Claude behind Vertex refuses (tests/support/fake_vertex.py)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.fake_vertex import VERTEX_ANTHROPIC_VERSION, FakeVertex

MODEL = "claude-sonnet-4-5@20250929"
USE = {"type": "tool_use", "id": "toolu_vrtx_1", "name": "lookup", "input": {}}


@pytest.fixture(scope="module")
def vertex():
    with FakeVertex() as fake:
        fake.tokens["ya29.test"] = time.time() + 3600  # a token as its exchange issues one
        yield fake


def raw_predict(vertex, body):
    url = (f"{vertex.url}/v1/projects/{vertex.project}/locations/{vertex.location}/publishers/anthropic/models/"
           f"{MODEL}:rawPredict")
    return httpx.post(url, headers={"authorization": "Bearer ya29.test"},
                      json={"anthropic_version": VERTEX_ANTHROPIC_VERSION, **body})


@pytest.mark.parametrize("body, message", [
    ({"messages": [{"role": "user", "content": "hi"}]}, "max_tokens: Field required"),
    ({"max_tokens": 20, "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [USE]},
                                     {"role": "user", "content": "and?"}]},
     "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_vrtx_1. Each "
     "`tool_use` block must have a corresponding `tool_result` block in the next message."),
], ids=["no max_tokens", "unanswered tool_use"])
def test_claude_on_vertex_refuses_what_claude_refuses(vertex, body, message):
    response = raw_predict(vertex, body)
    assert (response.status_code, response.json()["error"]["message"]) == (400, message)
    answered = raw_predict(vertex, {"max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]})
    assert answered.status_code == 200, answered.text
