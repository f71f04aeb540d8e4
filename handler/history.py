"""Conversation histories that cross providers.

A fallback or a routed call may send a history written by one provider to
another. Anthropic rejects thinking blocks whose signature it did not issue
(or that have none); OpenAI-compatible servers have no place for thinking at
all. Such blocks are dropped rather than turned into a 400, and an assistant
turn left empty by that is dropped too.
"""

from __future__ import annotations

from typing import Any

THINKING_TYPES = frozenset({"thinking", "redacted_thinking"})


def _keeps(block: Any, *, anthropic: bool) -> bool:
    if not isinstance(block, dict) or block.get("type") not in THINKING_TYPES:
        return True
    if not anthropic:
        return False
    # Anthropic verifies signatures: an unsigned thinking block came from elsewhere.
    return bool(block.get("signature") if block["type"] == "thinking" else block.get("data"))


def adapt_messages(messages: list[dict], *, anthropic: bool) -> list[dict]:
    """The history without content the target provider cannot accept (a copy; the input is kept)."""
    adapted = []
    for message in messages:
        content = message.get("content")
        if message.get("role") != "assistant" or not isinstance(content, list):
            adapted.append(message)
            continue
        kept = [block for block in content if _keeps(block, anthropic=anthropic)]
        if len(kept) == len(content):
            adapted.append(message)
        elif kept:
            adapted.append({**message, "content": kept})
    return adapted
