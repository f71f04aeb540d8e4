"""Anthropic's stream events that a translated stream opens and ends with.

Pure and shared by the translators of other providers' streams (Chat Completions,
Converse): whatever the upstream's grammar, the client reads the same message_start,
and the same message_delta whose usage is the provider's where it reported one and
the gateway's estimate where it did not (flagged, so the ledger says so).
"""

from __future__ import annotations

from typing import Any, Mapping

from .chat_completions import estimated_output_tokens

Event = tuple[str, dict]


def message_start(message_id: str, model: str, input_estimate: int) -> list[Event]:
    """The first events: the message with the input the gateway expects, then a ping, as Anthropic sends."""
    started = {"id": message_id, "type": "message", "role": "assistant", "model": model,
               "content": [], "stop_reason": None, "stop_sequence": None,
               "usage": {"input_tokens": input_estimate, "output_tokens": 1,
                         "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}
    return [("message_start", {"type": "message_start", "message": started}), ("ping", {"type": "ping"})]


def settled_usage(reported: Mapping[str, Any] | None, input_estimate: int,
                  produced_bytes: int) -> tuple[dict, bool]:
    """The usage message_delta carries, and whether any of it is the gateway's estimate
    (no usage reported, or no output count though the model produced some)."""
    usage = dict(reported) if reported else {"input_tokens": input_estimate}
    estimated = not reported
    if not usage.get("output_tokens") and produced_bytes:
        usage["output_tokens"] = estimated_output_tokens(produced_bytes)
        estimated = True
    return usage, estimated


def message_end(stop_reason: str, usage: dict) -> list[Event]:
    return [
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                           "usage": usage}),
        ("message_stop", {"type": "message_stop"}),
    ]
