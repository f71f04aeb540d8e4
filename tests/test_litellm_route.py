"""The litellm route does no per-request work litellm would repeat for nothing.

litellm's Anthropic-to-OpenAI adapter asks for LiteLLM Proxy's router on
every call by importing `litellm.proxy.proxy_server`; outside the proxy that
import fails, and Python tries a failed import again each time (compiling
the proxy server's source on every request). The route answers it once.
"""

from __future__ import annotations

import importlib.abc
import sys

GPT = "openai/gpt-4o-mini"


class ImportAttempts(importlib.abc.MetaPathFinder):
    """Records every time Python goes looking for a module of that name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.attempts = 0

    def find_spec(self, fullname, path, target=None):
        if fullname == self.name:
            self.attempts += 1
        return None  # let the real finders answer


def test_openai_compatible_calls_never_look_for_the_proxy_server(client):
    client.messages.create(model=GPT, max_tokens=10, messages=[{"role": "user", "content": "warm up"}])
    watcher = ImportAttempts("litellm.proxy.proxy_server")
    sys.meta_path.insert(0, watcher)
    try:
        for n in range(3):
            message = client.messages.create(model=GPT, max_tokens=10, messages=[{"role": "user", "content": f"hi {n}"}])
            assert message.content[0].text
    finally:
        sys.meta_path.remove(watcher)
    assert watcher.attempts == 0
    assert sys.modules["litellm.proxy.proxy_server"].llm_router is None
