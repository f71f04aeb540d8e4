"""The fake Azure OpenAI resource is faithful: litellm's Azure route (the openai SDK's
AzureOpenAI client) reaches its deployments with the key and the api-version."""

from __future__ import annotations

import asyncio
import json

import litellm
import pytest

from tests.support.fake_azure import FakeAzure

KEY = "azure-fake-key-0004"
VERSION = "2024-10-21"
TOOL = {"type": "function", "function": {"name": "lookup", "description": "Look a thing up.",
                                         "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}
LOOP = asyncio.new_event_loop()


@pytest.fixture(scope="module")
def azure():
    with FakeAzure(api_key=KEY, api_versions={VERSION}, deployments={"prod-chat"}) as fake:
        yield fake


def complete(azure, api_version=VERSION, **kwargs):
    return LOOP.run_until_complete(litellm.acompletion(
        model="azure/prod-chat", api_key=KEY, api_base=azure.url, api_version=api_version, max_tokens=50,
        max_retries=0, num_retries=0, **kwargs))


def test_litellm_calls_the_deployment_with_key_and_version(azure):
    response = complete(azure, messages=[{"role": "user", "content": "hello there"}])
    assert response.choices[0].message.content == "Hello from prod-chat: hello there"
    sent = azure.last()
    assert sent.path == f"/openai/deployments/prod-chat/chat/completions?api-version={VERSION}"
    assert sent.headers["api-key"] == KEY and "authorization" not in sent.headers


def test_litellm_streams_and_round_trips_a_tool(azure):
    async def stream():
        chunks = await litellm.acompletion(model="azure/prod-chat", api_key=KEY, api_base=azure.url,
                                           api_version=VERSION, max_tokens=50, stream=True, max_retries=0,
                                           messages=[{"role": "user", "content": "hello there"}])
        return [c async for c in chunks]
    chunks = LOOP.run_until_complete(stream())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from prod-chat: hello there"
    first = complete(azure, tools=[TOOL], messages=[{"role": "user", "content": "find cats"}])
    call = first.choices[0].message.tool_calls[0]
    assert json.loads(call.function.arguments) == {"query": "find cats"}
    second = complete(azure, tools=[TOOL], messages=[
        {"role": "user", "content": "find cats"},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "three cats"}])
    assert second.choices[0].message.content == "Tool said: three cats"


def test_an_unserved_api_version_is_refused(azure):
    with pytest.raises(litellm.NotFoundError) as raised:
        complete(azure, api_version="2099-01-01", messages=[{"role": "user", "content": "hi"}])
    assert "API version 2099-01-01 is not supported" in str(raised.value)
