"""A direct call's body reaches the provider as the same JSON document it was before orjson wrote it.

The bytes are orjson's (compact, UTF-8 unescaped, floats in their shortest form) where they hold
the same document as json.dumps's, and json.dumps's otherwise (providers/call_body.py): the
provider reads the same request, never a larger one.
"""

from __future__ import annotations

import json

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from handler.providers.call_body import call_body

CLAUDE = "anthropic/claude-sonnet-4-5"

BODIES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**63, max_value=2**80)
    | st.floats(allow_nan=False)  # a caller's NaN is refused at the door; 1e400 parses to an infinity
    | st.text(st.characters(codec=None)),  # every code point, lone surrogates included
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=30)


def floats(value) -> int:
    if isinstance(value, dict):
        return sum(map(floats, value.values()))
    if isinstance(value, list):
        return sum(map(floats, value))
    return isinstance(value, float)


@settings(max_examples=1500, deadline=None)
@given(BODIES)
def test_any_body_reaches_the_provider_as_the_same_document_and_no_larger(body):
    before = json.dumps(body).encode()
    sent = call_body(body)
    assert json.loads(sent) == json.loads(before), "the provider would have read another request"
    # orjson writes 1e-05 as 0.00001: two bytes more, where the separators save one or two
    assert len(sent) <= len(before) + 2 * floats(body), "the provider would have got a larger request"


def test_claude_codes_requests_reach_the_provider_as_the_same_documents():
    with open("tests/data/claude-code-2.1.332.jsonl", encoding="utf-8") as rows:
        bodies = [json.loads(row)["body"] for row in rows]
    for body in bodies:
        assert json.loads(call_body(body)) == body, "a Claude Code request would have reached the provider changed"


def test_a_callers_text_numbers_and_infinity_reach_the_provider_as_sent(server, api_key, fake):
    raw = ('{"model": "%s", "max_tokens": 50, "temperature": 0.7, "top_p": 1e-05,'
           ' "metadata": {"user_id": "caf\\u00e9 \u65e5\u672c \U0001f600 a\\/b"},'
           ' "messages": [{"role": "user", "content": "\u00e9\u2014 \\"q\\" \\\\ null"}],'
           ' "future_field": {"big": 1e400, "list": [1, -0.0, true]}}' % CLAUDE)
    answer = httpx.post(f"{server.url}/v3/v1/messages", content=raw.encode(), timeout=20,
                        headers={"x-api-key": api_key, "content-type": "application/json"})
    sent = {**json.loads(raw), "model": "claude-sonnet-4-5", "stream": False}  # the provider's name; stream said
    assert fake.last().body == sent, "the provider got another request than the caller's"
    assert answer.status_code in (200, 400), answer.text
