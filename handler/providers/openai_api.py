"""OpenAI's Chat Completions, called directly, for every provider that speaks it.

OpenAI, Azure OpenAI's deployments and Vertex AI's OpenAI-compatible endpoint
differ only in the URL and the credential header: the family says those
(handler/providers/families/), this module posts the translated body
(translation/chat_completions.py) over the pooled client anthropic_api keeps, and
hands back an Anthropic message, or for a stream Anthropic's SSE bytes
(translation/chat_stream.py). Failures are raised as httpx's exceptions or
UpstreamStatus, as anthropic_api's are, for `upstream.map_exception` to put
in Anthropic's terms.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Mapping

import httpx

from ..protocol import sse
from ..translation import chat_completions
from ..translation.chat_stream import StreamTranslator
from .anthropic_api import json_answer, post
from .call_body import call_body
from .answer import Answer

_DONE = "[DONE]"
# OpenAI's reasoning models refuse `max_tokens` and want `max_completion_tokens`.
REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def is_reasoning_model(model_name: str) -> bool:
    """OpenAI's reasoning models, by name (litellm's rule): they take `max_completion_tokens`
    only, and refuse sampling fields (providers/families/openai.py)."""
    return model_name.rpartition("/")[2].startswith(REASONING_PREFIXES)


def chat_url(api_base: str) -> str:
    """`api_base` + /chat/completions, unless it already ends there."""
    base = api_base.rstrip("/")
    return base if base.endswith("/chat/completions") else base + "/chat/completions"


class TranslatedStream:
    """Anthropic's SSE bytes from a Chat Completions response; `usage_estimated` says, once
    it has ended, that the provider did not report all of its usage (the relay flags it)."""

    def __init__(self, response: Answer | httpx.Response, translator: StreamTranslator) -> None:
        self._translator = translator
        self._events = _anthropic_stream(response, translator)

    @property
    def usage_estimated(self) -> bool:
        return self._translator.usage_estimated

    def __aiter__(self) -> "TranslatedStream":
        return self

    async def __anext__(self) -> bytes:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        await self._events.aclose()


async def send(call: Mapping[str, Any], *, url: str, credential: Mapping[str, str]
               ) -> dict[str, Any] | TranslatedStream:
    """The answer as an Anthropic message, or for a stream Anthropic's SSE bytes; a stream
    request answered with JSON (an error sent with a 200) gets the message, for the caller
    to check. `call["model"]` is `type/name`: the name is what the provider is sent."""
    body = chat_completions.request(call)
    model, names = body["model"], chat_completions.tool_names(call)
    headers = {**(call.get("extra_headers") or {}), **credential, "content-type": "application/json",
               "accept": "text/event-stream" if body.get("stream") else "application/json"}
    response = await post(url, headers, call_body(body), timeout=call.get("timeout"))
    if body.get("stream") and response.headers.get("content-type", "").startswith("text/event-stream"):
        return TranslatedStream(response, StreamTranslator(model, chat_completions.estimated_input_tokens(body), names))
    return chat_completions.message(await json_answer(response), model, names,
                                    lambda: chat_completions.estimated_input_tokens(body))


def _translated(data: str, translator: StreamTranslator) -> bytes:
    """One chunk's Anthropic events. A malformed chunk goes on as a malformed event, so the
    relay ends the client's stream (or fails the attempt before content) and reads on."""
    if data == _DONE:
        return b"".join(sse.encode(name, event) for name, event in translator.finish())
    try:
        chunk = json.loads(data)
    except ValueError:
        chunk = None
    if not isinstance(chunk, dict):
        return b"event: content_block_delta\ndata: " + data.replace("\n", " ").encode() + b"\n\n"
    return b"".join(sse.encode(name, event) for name, event in translator.feed(chunk))


async def _anthropic_stream(response: Answer | httpx.Response, translator: StreamTranslator) -> AsyncIterator[bytes]:
    """OpenAI's `data:` chunks as Anthropic's events, ended at `[DONE]` or the body's end."""
    parser = sse.DataParser()
    try:
        async for raw in response.aiter_bytes():
            out = b"".join(_translated(data, translator) for data in parser.feed(raw))
            if out:
                yield out
        out = b"".join(_translated(data, translator) for data in parser.flush())
        out += b"".join(sse.encode(name, event) for name, event in translator.finish())
        if out:
            yield out
    finally:
        await response.aclose()
