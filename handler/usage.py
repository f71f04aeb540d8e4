"""Token usage as Anthropic reports it, accumulated from a message or a stream.

Anthropic's `input_tokens` excludes cache reads and writes; the stream sends
input and cache figures in message_start and cumulative output (sometimes
updated input) in message_delta. Only the latest figure of each counts, so a
stream and the same non-streamed message meter identically.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def update(self, reported: Mapping[str, Any] | None) -> None:
        """Take every figure the upstream reported; figures are cumulative, not deltas."""
        for f in fields(self):
            value = (reported or {}).get(f.name)
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(self, f.name, value)

    @classmethod
    def of(cls, reported: Mapping[str, Any] | None) -> "Usage":
        usage = cls()
        usage.update(reported)
        return usage

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
