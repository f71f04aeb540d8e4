"""Answers translated from OpenAI-compatible providers, in the shape Anthropic's clients expect.

litellm's translation keeps the provider's ids (`chatcmpl-…`, `call_…`), sends
no `ping` and leaves `stop_sequence` out of `message_delta.delta`; Claude
Code and the SDKs expect `msg_…` and `toolu_…` ids, a ping after
message_start and the key present. Pure: one answer, or one stream of SSE
bytes, in; the same answer out with those fixed.

Tool ids must survive a round trip: the id a client sends back in its
tool_result has to reach the provider as the provider's own id. The gateway
keeps no state between requests, so the provider's id is carried inside
ours: `toolu_edenai_` + its base64url, which `provider_tool_id` reverses
(pipeline/history.py applies it to histories bound for these providers).
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from typing import Any, AsyncIterator

from ..protocol import sse

TOOL_ID_PREFIX = "toolu_edenai_"
# Between a provider's call id and the thought signature Gemini 3 attached to the call
# (pipeline/history.py hands it back as THOUGHT_SIGNATURE on the tool_use block).
_SIGNED = "\x1f"
THOUGHT_SIGNATURE = "_edenai_thought_signature"
_NOT_ID = re.compile(r"[^A-Za-z0-9_]")


def message_id(provider_id: Any) -> str:
    """`msg_` + the provider's id; a fresh one where it gave none (Azure's streams, Gemini)."""
    text = _NOT_ID.sub("", str(provider_id or ""))
    if not text:
        return "msg_" + uuid.uuid4().hex[:24]
    return text if text.startswith("msg_") else "msg_" + text


def anthropic_tool_id(provider_id: Any, thought_signature: str | None = None) -> str:
    """`toolu_` carrying the provider's id (and the call's thought signature, which Gemini 3
    must be given back); a fresh one where it gave none, so two calls never share an id
    (their results would go to the wrong call)."""
    text = str(provider_id or "")
    if not text:
        text = "call_" + uuid.uuid4().hex[:24]
    elif text.startswith("toolu_") and not thought_signature:
        return text
    carried = text + _SIGNED + thought_signature if thought_signature else text
    return TOOL_ID_PREFIX + base64.urlsafe_b64encode(carried.encode()).decode().rstrip("=")


def _carried(tool_id: Any) -> tuple[Any, str | None]:
    if not isinstance(tool_id, str) or not tool_id.startswith(TOOL_ID_PREFIX):
        return tool_id, None
    encoded = tool_id[len(TOOL_ID_PREFIX):]
    try:
        carried = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, ValueError):
        return tool_id, None
    provider_id, _, signature = carried.partition(_SIGNED)
    return provider_id, signature or None


def provider_tool_id(tool_id: Any) -> Any:
    """The provider's own id inside one of ours; any other id as it is."""
    return _carried(tool_id)[0]


def thought_signature(tool_id: Any) -> str | None:
    """The thought signature carried in one of our tool ids, if the call had one."""
    return _carried(tool_id)[1]


def _block(block: Any) -> Any:
    if isinstance(block, dict) and block.get("type") == "tool_use" and "id" in block:
        return {**block, "id": anthropic_tool_id(block["id"])}
    return block


def message(answer: dict[str, Any]) -> dict[str, Any]:
    """A non-streamed answer with Anthropic's ids; an error body is left for the caller to check."""
    if answer.get("type") == "error" or not isinstance(answer.get("content"), list):
        return answer
    return {**answer, "id": message_id(answer.get("id")), "content": [_block(b) for b in answer["content"]],
            "stop_sequence": answer.get("stop_sequence")}


def _as_bytes(chunk: Any) -> bytes:
    if isinstance(chunk, str):
        return chunk.encode()
    if isinstance(chunk, dict):
        return sse.encode(chunk.get("type", "message"), chunk)
    return bytes(chunk)


def _event(event: sse.Event) -> list[bytes]:
    try:
        data = event.json()
    except ValueError:
        return [event.raw]  # the relay reports it
    if not isinstance(data, dict):
        return [event.raw]
    if event.name == "message_start" and isinstance(data.get("message"), dict):
        data["message"]["id"] = message_id(data["message"].get("id"))
        return [sse.encode(event.name, data), sse.encode("ping", {"type": "ping"})]
    if event.name == "content_block_start":
        data["content_block"] = _block(data.get("content_block"))
        return [sse.encode(event.name, data)]
    if event.name == "message_delta" and isinstance(data.get("delta"), dict):
        data["delta"].setdefault("stop_sequence", None)
        return [sse.encode(event.name, data)]
    if event.name == "ping":
        return []  # ours follows message_start; another would be a second one
    return [event.raw]


async def stream(chunks: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    """The stream's events with Anthropic's ids, a ping after message_start, stop_sequence present."""
    parser = sse.Parser()
    try:
        async for chunk in chunks:
            for event in parser.feed(_as_bytes(chunk)):
                for item in _event(event):
                    yield item
        for event in parser.flush():
            for item in _event(event):
                yield item
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
