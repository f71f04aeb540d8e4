"""Bedrock's Converse and ConverseStream, called directly, for every model but Claude.

Amazon Nova, Meta Llama, Mistral, DeepSeek ... all answer Converse. litellm
speaks it too, but importing litellm costs about 2 s and 150 MB on the first
such request, and its per-call layers most of the route's added latency
(README, Benchmark); a deployment whose providers are all Bedrock now never
imports it. The request is translated by translation/converse.py, signed and
sent as the Claude route sends InvokeModel (bedrock_api: SigV4 from the
default chain, Bedrock's named errors), and the stream's event-stream frames
(botocore's decoder) become Anthropic's SSE (translation/converse_stream.py).
Bedrock's CountTokens counts for Claude only: these models are counted at the
gateway (providers/local_tokenizer.py).
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Mapping

import httpx
from botocore.eventstream import EventStreamBuffer, ParserError

from ..protocol import sse
from ..protocol.errors import GatewayError
from ..translation import converse
from ..translation.chat_completions import tool_names
from ..translation.converse_stream import ConverseStreamTranslator
from . import anthropic_api, bedrock_api, local_tokenizer
from .answer import Answer

_JSON = {"content-type": "application/json", "accept": "application/json"}


class ConverseStream:
    """Anthropic's SSE bytes from a ConverseStream response; `usage_estimated` says, once it has
    ended, that Bedrock did not report all of its usage (the relay flags it)."""

    def __init__(self, response: Answer | httpx.Response, translator: ConverseStreamTranslator) -> None:
        self._translator = translator
        self._events = _anthropic_stream(response, translator)

    @property
    def usage_estimated(self) -> bool:
        return self._translator.usage_estimated

    def __aiter__(self) -> "ConverseStream":
        return self

    async def __anext__(self) -> bytes:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        await self._events.aclose()


def _encoded(events) -> bytes:
    return b"".join(sse.encode(name, event) for name, event in events)


async def _anthropic_stream(response: Answer | httpx.Response, translator: ConverseStreamTranslator) -> AsyncIterator[bytes]:
    decoder = EventStreamBuffer()
    try:
        async for chunk in response.aiter_raw():
            decoder.add_data(chunk)
            out = b""
            try:
                for frame in decoder:
                    bedrock_api.raise_if_exception(frame)
                    out += _encoded(translator.feed(str(frame.headers.get(":event-type")), json.loads(frame.payload)))
            except (ParserError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise GatewayError(502, f"Bedrock's stream is not well-formed: {exc}", error_type="api_error") from None
            if out:
                yield out
        out = _encoded(translator.finish())
        if out:
            yield out
    finally:
        await response.aclose()


async def send(call: Mapping[str, Any]) -> dict[str, Any] | ConverseStream:
    """The answer as an Anthropic message, or for a stream Anthropic's SSE bytes."""
    body = converse.request(call)
    model, names = str(call["model"]).partition("/")[2], tool_names(call)
    stream = bool(call.get("stream"))
    url = bedrock_api.model_url(call, "converse-stream" if stream else "converse")
    response = await bedrock_api.signed_post(call, url, dict(_JSON), json.dumps(body).encode())
    if stream:
        return ConverseStream(response, ConverseStreamTranslator(model, converse.estimated_input_tokens(body), names,
                                                                 structured=converse.structured(call)))
    answer = await anthropic_api.json_answer(response)
    return converse.message(answer, model, names, converse.estimated_input_tokens(body))


def count_locally(call: Mapping[str, Any]) -> int:
    """The call's input tokens by the gateway's own tokenizer: Bedrock's CountTokens counts for
    Claude only (providers/local_tokenizer.py)."""
    return converse.counted_tokens(call, local_tokenizer.count)
