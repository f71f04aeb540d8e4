"""The litellm route: every provider that does not speak Anthropic's API.

Imported on the first call that needs it (`import litellm` costs about 2 s
and 150 MB), so a gateway that serves only Anthropic-type providers never
pays for it; SnapStart imports it at init instead (runtime/snapstart.py).
"""

from __future__ import annotations

import sys
import types
from typing import Any

import litellm

from ..translation import openai_shape

litellm.use_chat_completions_url_for_anthropic_messages = True
litellm.suppress_debug_info = True
litellm.telemetry = False
litellm.drop_params = True
# OpenAI-compatible streams otherwise start with input_tokens 0 in message_start; the real
# figure still arrives in message_delta, and metering takes that one.
litellm.anthropic_messages_estimate_initial_input_tokens = True


# litellm's Anthropic-to-OpenAI adapter asks for LiteLLM Proxy's router on every call
# (`from litellm.proxy.proxy_server import llm_router`, litellm/llms/anthropic/messages/
# adapters/handler.py). Outside the proxy that import fails (its extra is not installed),
# and a failed import is tried again each time: proxy_server.py was compiled anew on every
# request, a third of the gateway's CPU on this route (py-spy). The gateway is not the
# proxy and has no proxy router: this module says so once.
NOT_THE_PROXY = types.ModuleType("litellm.proxy.proxy_server", "Stand-in: this process is not LiteLLM Proxy.")
NOT_THE_PROXY.llm_router = None
sys.modules.setdefault(NOT_THE_PROXY.__name__, NOT_THE_PROXY)


async def create(kwargs: dict[str, Any]) -> Any:
    """A message (or its stream) in Anthropic's format and ids, whatever the provider speaks."""
    result = await litellm.anthropic.messages.acreate(**kwargs)
    if isinstance(result, dict):
        return openai_shape.message(result)
    if hasattr(result, "__aiter__"):
        return openai_shape.stream(result)
    return openai_shape.message(dict(result))


async def count_tokens(kwargs: dict[str, Any]) -> Any:
    return await litellm.acount_tokens(**kwargs)


def count_locally(kwargs: dict[str, Any]) -> int:
    """litellm's local tokenizer, for providers whose own counting litellm cannot reach."""
    system = kwargs.get("system")
    prefix = [{"role": "system", "content": system}] if system else []
    return litellm.token_counter(model=kwargs["model"], messages=prefix + list(kwargs["messages"]),
                                 tools=kwargs.get("tools"))
