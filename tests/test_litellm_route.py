"""The litellm route does no per-request work litellm would repeat for nothing.

It serves the families whose translation the gateway takes from litellm
(Gemini, and any provider type without a module of its own,
such as vLLM's `hosted_vllm`, here against the fake's OpenAI endpoint).

litellm's Anthropic-to-OpenAI adapter asks for LiteLLM Proxy's router on
every call by importing `litellm.proxy.proxy_server`; outside the proxy that
import fails, and Python tries a failed import again each time (compiling
the proxy server's source on every request). The route answers it once.
"""

from __future__ import annotations

import importlib.abc
import sys

import anthropic
import pytest

from tests.support.stack import new_stack, providers_document, serve

VLLM = "vllm/llama-3.1-8b"


@pytest.fixture
def client(moto_endpoint, fake):
    stack = new_stack(fake.url)
    document = providers_document(fake.url, {VLLM: {}})
    document["providers"]["vllm"] = {"type": "hosted_vllm", "api_key": "sk-vllm-test", "api_base": fake.url + "/v1"}
    stack.put_providers(document)
    with serve(stack) as server:
        yield anthropic.Anthropic(api_key=stack.add_key(), base_url=server.url + "/v3", max_retries=0)


class ImportAttempts(importlib.abc.MetaPathFinder):
    """Records every time Python goes looking for a module of that name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.attempts = 0

    def find_spec(self, fullname, path, target=None):
        if fullname == self.name:
            self.attempts += 1
        return None  # let the real finders answer


def test_calls_through_litellm_never_look_for_the_proxy_server(client, fake):
    client.messages.create(model=VLLM, max_tokens=10, messages=[{"role": "user", "content": "warm up"}])
    watcher = ImportAttempts("litellm.proxy.proxy_server")
    sys.meta_path.insert(0, watcher)
    try:
        for n in range(3):
            message = client.messages.create(model=VLLM, max_tokens=10, messages=[{"role": "user", "content": f"hi {n}"}])
            assert message.content[0].text
    finally:
        sys.meta_path.remove(watcher)
    assert fake.count("llama-3.1-8b") == 4, "every call went through litellm to the provider"
    assert watcher.attempts == 0
    assert sys.modules["litellm.proxy.proxy_server"].llm_router is None
