"""Every provider family behind one endpoint, as scripts/serve offers them offline
(tests/support/family_fakes.py): each answers streamed and non-streamed through the
SDK, and one request falls back across three families."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from tests.support.family_fakes import (
    AZURE_MODELS, BEDROCK_MODELS, DIRECT_CLAUDE, GEMINI_MODELS, VERTEX_MODELS, family_gateway, start_family_fakes,
)

BEDROCK_CLAUDE = "bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0"
GEMINI = "gemini/gemini-2.5-flash"
VERTEX_CLAUDE = "vertex/claude-sonnet-4-5@20250929"


@pytest.fixture(scope="module")
def families(moto_endpoint):
    with ExitStack() as stack:
        yield start_family_fakes(stack)


@pytest.fixture
def client(moto_endpoint, fake, families):
    for family_fake in families.fakes.values():
        family_fake.clear_faults()
    with family_gateway(fake.url, families.providers, families.models) as (_, _, sdk):
        yield sdk


@pytest.mark.parametrize("model", sorted({**BEDROCK_MODELS, **GEMINI_MODELS, **AZURE_MODELS, **VERTEX_MODELS}))
def test_every_offline_family_model_answers_streamed_and_not(client, model):
    message = client.messages.create(model=model, max_tokens=50, messages=[{"role": "user", "content": "hello"}])
    assert message.model == model and message.content[0].text.endswith(": hello")
    with client.messages.stream(model=model, max_tokens=50, messages=[{"role": "user", "content": "hello"}]) as s:
        assert s.get_final_message().content[0].text == message.content[0].text


def assert_falls_back_along(client, chain: list[str], statuses: list[int]) -> None:
    """Anthropic first, then `chain` in order: the last one answers, the header lists every attempt."""
    raw = client.messages.with_raw_response.create(model=DIRECT_CLAUDE, max_tokens=50,
                                                   messages=[{"role": "user", "content": "hello"}],
                                                   extra_body={"fallbacks": chain})
    assert raw.parse().model == chain[-1]
    attempts = raw.headers["x-edenai-attempts"].split(", ")
    assert [a.split(";")[:2] for a in attempts] == [[model, f"status={status}"] for model, status
                                                    in zip([DIRECT_CLAUDE, *chain], statuses)]


def test_one_request_falls_back_from_anthropic_to_bedrock_claude_to_gemini(client, fake, families):
    fake.fail("claude-sonnet-4-5", status=529)
    families.fakes["bedrock"].error("anthropic.claude-sonnet-4-5-20250929-v1:0", "ServiceUnavailableException")
    assert_falls_back_along(client, [BEDROCK_CLAUDE, GEMINI], [529, 529, 200])


def test_one_request_falls_back_from_anthropic_to_claude_on_vertex_to_bedrock_claude(client, fake, families):
    fake.fail("claude-sonnet-4-5", status=529)
    families.fakes["vertex"].error("claude-sonnet-4-5@20250929", "RESOURCE_EXHAUSTED")
    assert_falls_back_along(client, [VERTEX_CLAUDE, BEDROCK_CLAUDE], [529, 429, 200])
