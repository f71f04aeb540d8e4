"""GET /v3/v1/models and POST /v3/v1/messages/count_tokens, as the Anthropic SDK calls them.

The model list is Anthropic's shape, paginated, limited to what the key may
use, with @edenai in it; token counts come from the provider's own counting
where litellm has one, and a header says which method counted.
"""

from __future__ import annotations

import logging

import anthropic
import httpx
import pytest
from anthropic.types import ModelInfo

from tests.support.stack import new_stack, serve

CLAUDE = "anthropic/claude-sonnet-4-5"
GPT = "openai/gpt-4o-mini"
ALL = ["@edenai", "anthropic/claude-haiku-4-5", "anthropic/claude-sonnet-4-5", "openai/gpt-4o", "openai/gpt-4o-mini"]


def test_the_sdk_lists_every_model_the_key_may_use(client):
    models = list(client.models.list())
    assert [m.id for m in models] == ALL
    sonnet = next(m for m in models if m.id == CLAUDE)
    assert sonnet.type == "model" and sonnet.display_name and sonnet.lifecycle == "active"
    assert sonnet.created_at.year == 1970  # the price map has no release dates
    assert (sonnet.max_input_tokens, sonnet.max_tokens) == (200_000, 64_000)
    assert sonnet.capabilities.thinking.supported and sonnet.capabilities.image_input.supported
    gpt = next(m for m in models if m.id == GPT)
    assert not gpt.capabilities.thinking.supported


def test_every_model_object_parses_strictly_with_the_sdk_type(server, api_key):
    page = httpx.get(f"{server.url}/v3/v1/models", headers={"x-api-key": api_key}).json()
    for entry in page["data"]:
        ModelInfo.model_validate(entry, strict=False)  # created_at is a string on the wire
        assert set(entry) >= {"type", "id", "display_name", "created_at", "lifecycle"}


def test_the_list_is_paginated_with_after_id_and_before_id(client):
    first = client.models.list(limit=2)
    assert [m.id for m in first.data] == ALL[:2] and first.has_more and first.last_id == ALL[1]
    second = client.models.list(limit=2, after_id=first.last_id)
    assert [m.id for m in second.data] == ALL[2:4]
    back = client.models.list(limit=2, before_id=ALL[4])
    assert [m.id for m in back.data] == ALL[2:4] and back.has_more
    assert [m.id for m in client.models.list(limit=50)] == ALL


def test_the_list_shows_only_what_the_key_may_use(server, stack):
    key = stack.add_key(models=["openai/*"])
    client = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0)
    assert [m.id for m in client.models.list()] == ["@edenai", "openai/gpt-4o", "openai/gpt-4o-mini"]


def test_one_model_can_be_retrieved(client):
    assert client.models.retrieve(CLAUDE).id == CLAUDE
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("anthropic/not-a-model")


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"after_id": "nope/nope"},
                                    {"after_id": CLAUDE, "before_id": GPT},
                                    # given twice: which one the caller meant is not ours to guess
                                    [("after_id", CLAUDE), ("after_id", "")], [("limit", "5"), ("limit", "7")]])
def test_bad_pagination_is_a_400(server, api_key, params):
    response = httpx.get(f"{server.url}/v3/v1/models", params=params, headers={"x-api-key": api_key})
    assert response.status_code == 400 and response.json()["type"] == "error"


def test_tokens_are_counted_by_anthropic_for_anthropic_models(client, fake):
    raw = client.messages.with_raw_response.count_tokens(
        model=CLAUDE, system="be brief", messages=[{"role": "user", "content": "hello there friend"}])
    assert raw.parse().input_tokens == 5  # the fake counts words: system + message
    assert raw.headers["x-edenai-token-count-method"] == "anthropic_api"
    sent = fake.last()
    assert sent.path == "/v1/messages/count_tokens" and sent.body["model"] == "claude-sonnet-4-5"


def test_tokens_fall_back_to_the_local_tokenizer_and_say_so(client):
    raw = client.messages.with_raw_response.count_tokens(
        model=GPT, messages=[{"role": "user", "content": "hello there friend"}])
    assert raw.parse().input_tokens > 0
    assert raw.headers["x-edenai-token-count-method"] == "local_tokenizer"


def test_an_openai_compatible_count_logs_nothing_alarming_and_asks_no_upstream(client, fake, caplog):
    """An OpenAI-compatible server need not have OpenAI's `POST /v1/responses/input_tokens`
    (vLLM, Ollama do not): litellm's acount_tokens asked it first, logged the 404 as
    `LiteLLM:ERROR ... OpenAI API error` and a WARNING, then counted locally anyway."""
    caplog.set_level(logging.WARNING)
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):  # litellm's own handler, no propagation
        logging.getLogger(name).addHandler(caplog.handler)
    try:
        counted = client.messages.count_tokens(
            model=GPT, system="be brief", messages=[{"role": "user", "content": "hello there friend"}])
    finally:
        for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
            logging.getLogger(name).removeHandler(caplog.handler)
    assert counted.input_tokens > 0
    alarming = [f"{r.name}:{r.levelname} {r.getMessage()[:200]}" for r in caplog.records
                if r.levelno >= logging.WARNING]
    assert alarming == [], f"a successful count logged: {alarming}"
    assert [r.path for r in fake.snapshot()] == [], "the count asked the provider, which may not have the endpoint"


def test_count_tokens_validates_and_authorises_like_messages(server, api_key):
    url = f"{server.url}/v3/v1/messages/count_tokens"
    assert httpx.post(url, json={"model": CLAUDE}, headers={"x-api-key": api_key}).status_code == 422
    assert httpx.post(url, json={"model": CLAUDE, "messages": []}).status_code == 401
    router = httpx.post(url, json={"model": "@edenai", "messages": [{"role": "user", "content": "x"}]},
                        headers={"x-api-key": api_key})
    assert router.status_code == 400 and "concrete model" in router.json()["error"]["message"]


def test_count_tokens_honours_the_key_allow_list(server, stack, fake):
    key = stack.add_key(models=["anthropic/claude-haiku*"])
    client = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0)
    fake.clear()
    for model in (CLAUDE, "openai/gpt-4o"):
        with pytest.raises(anthropic.PermissionDeniedError, match="may not use model"):
            client.messages.count_tokens(model=model, messages=[{"role": "user", "content": "hi"}])
    assert fake.count() == 0, "a refused count still spent the provider's rate limit with the gateway's key"
    allowed = client.messages.count_tokens(model="anthropic/claude-haiku-4-5",
                                           messages=[{"role": "user", "content": "hi"}])
    assert allowed.input_tokens == 1


def test_count_tokens_calls_count_against_the_keys_rpm(server, stack, fake):
    key = stack.add_key(limits={"rpm": 5})
    url = f"{server.url}/v3/v1/messages/count_tokens"
    body = {"model": CLAUDE, "messages": [{"role": "user", "content": "hello"}]}
    statuses = [httpx.post(url, json=body, headers={"x-api-key": key}).status_code for _ in range(8)]
    assert statuses == [200] * 5 + [429] * 3, f"an rpm-5 key's counts were answered as {statuses}"
    assert fake.count() == 5
    message = httpx.post(f"{server.url}/v3/v1/messages", headers={"x-api-key": key},
                         json={**body, "max_tokens": 10})
    assert message.status_code == 429, "the minute's counts should have used the key's rpm"
