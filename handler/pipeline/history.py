"""Conversation histories that cross providers.

A fallback or a routed call may send a history written by one provider to
another. Anthropic rejects thinking blocks whose signature it did not issue
(or that have none); OpenAI-compatible servers have no place for thinking at
all, nor does any translated route for a `fallback` block (the marker Anthropic's
server-side fallback puts where one model's output gives way to the next, which
the caller sends back with its turn and which is "not rendered into the prompt":
anthropic SDK BetaFallbackBlockParam). Such blocks are dropped rather than turned
into a 400, and an assistant turn left empty by that is dropped too. Tool ids the gateway gave an
OpenAI-compatible provider's calls go back to that kind of provider as its
own ids (translation/openai_shape.py), with the thought signature Gemini 3 gave a call
(translation/chat_completions.py sends it back as `extra_content`).
"""

from __future__ import annotations

from typing import Any

from ..translation.openai_shape import THOUGHT_SIGNATURE, provider_tool_id, thought_signature

THINKING_TYPES = frozenset({"thinking", "redacted_thinking"})
FALLBACK_TYPE = "fallback"


def _keeps(block: Any, *, anthropic: bool) -> bool:
    if isinstance(block, dict) and block.get("type") == FALLBACK_TYPE:
        return anthropic
    if not isinstance(block, dict) or block.get("type") not in THINKING_TYPES:
        return True
    if not anthropic:
        return False
    # Anthropic verifies signatures: an unsigned thinking block came from elsewhere.
    return bool(block.get("signature") if block["type"] == "thinking" else block.get("data"))


def _provider_ids(block: Any) -> Any:
    """A tool_use or tool_result block with the OpenAI-compatible provider's own tool id."""
    if not isinstance(block, dict):
        return block
    for key in ("id", "tool_use_id") if block.get("type") in ("tool_use", "tool_result") else ():
        if key in block and provider_tool_id(block[key]) != block[key]:
            mapped = {**block, key: provider_tool_id(block[key])}
            if key == "id" and thought_signature(block[key]):
                mapped[THOUGHT_SIGNATURE] = thought_signature(block[key])
            return mapped
    return block


def adapt_messages(messages: list[dict], *, anthropic: bool) -> list[dict]:
    """The history without content the target provider cannot accept (a copy; the input is kept)."""
    adapted = []
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            adapted.append(message)
            continue
        kept = [block for block in content if message.get("role") != "assistant" or _keeps(block, anthropic=anthropic)]
        if not anthropic:
            kept = [_provider_ids(block) for block in kept]
        if kept == content:
            adapted.append(message)
        elif kept:
            adapted.append({**message, "content": kept})
    return adapted
