"""OpenAI's Chat Completions, called directly, for every provider that speaks it.

OpenAI, Azure OpenAI's deployments and Vertex AI's OpenAI-compatible endpoint
differ only in the URL and the credential header: the family says those
(handler/families/), this module posts the translated body
(chat_completions.py) over the pooled client anthropic_api keeps, and
hands back an Anthropic message, or for a stream Anthropic's SSE bytes.
Failures are raised as httpx's exceptions or UpstreamStatus, as
anthropic_api's are, for `upstream.map_exception` to put in Anthropic's terms.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Mapping

import httpx

from . import chat_completions, sse
from .anthropic_api import json_answer, post

_DONE = "[DONE]"
# OpenAI's reasoning models refuse `max_tokens` and want `max_completion_tokens`.
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def max_tokens_field(model_name: str) -> str:
    """Which field carries the output limit: OpenAI's reasoning models take only the newer one,
    while many OpenAI-compatible servers know only the older (litellm's rule too)."""
    return "max_completion_tokens" if model_name.rpartition("/")[2].startswith(_REASONING_PREFIXES) else "max_tokens"


def chat_url(api_base: str) -> str:
    """`api_base` + /chat/completions, unless it already ends there."""
    base = api_base.rstrip("/")
    return base if base.endswith("/chat/completions") else base + "/chat/completions"


async def send(call: Mapping[str, Any], *, url: str, credential: Mapping[str, str]
               ) -> dict[str, Any] | AsyncIterator[bytes]:
    """The answer as an Anthropic message, or for a stream Anthropic's SSE bytes; a stream
    request answered with JSON (an error sent with a 200) gets the message, for the caller
    to check. `call["model"]` is `type/name`: the name is what the provider is sent."""
    body = chat_completions.request(call, max_tokens_field=max_tokens_field(str(call["model"])))
    model = body["model"]
    headers = {**(call.get("extra_headers") or {}), **credential, "content-type": "application/json",
               "accept": "text/event-stream" if body.get("stream") else "application/json"}
    response = await post(url, headers, json.dumps(body).encode(), timeout=call.get("timeout"))
    if body.get("stream") and response.headers.get("content-type", "").startswith("text/event-stream"):
        translator = chat_completions.StreamTranslator(model, chat_completions.estimated_input_tokens(body),
                                                       chat_completions.tool_names(call))
        return _anthropic_stream(response, translator)
    return chat_completions.message(await json_answer(response), model, chat_completions.tool_names(call))


def _translated(data: str, translator: chat_completions.StreamTranslator) -> bytes:
    """One chunk's Anthropic events. A malformed chunk goes on as a malformed event, so the
    relay ends the client's stream (or fails the attempt before content) and reads on."""
    if data == _DONE:
        return b""
    try:
        chunk = json.loads(data)
    except ValueError:
        chunk = None
    if not isinstance(chunk, dict):
        return b"event: content_block_delta\ndata: " + data.replace("\n", " ").encode() + b"\n\n"
    return b"".join(sse.encode(name, event) for name, event in translator.feed(chunk))


async def _anthropic_stream(response: httpx.Response,
                            translator: chat_completions.StreamTranslator) -> AsyncIterator[bytes]:
    """OpenAI's `data:` chunks as Anthropic's events, ended once the upstream is done."""
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
