"""Token usage as Anthropic reports it, accumulated from a message or a stream.

Anthropic's `input_tokens` excludes cache reads and writes; the stream sends
input and cache figures in message_start and cumulative output (sometimes
updated input) in message_delta. Only the latest figure of each counts, so a
stream and the same non-streamed message meter identically. Server tools
(web search, web fetch, code execution) are reported apart, as counts of
uses in `server_tool_use`, and are billed per use, not per token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

TOKEN_NAMES = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
# Set on an answer whose usage a translation had to estimate (the provider reported none):
# the gateway takes it off before the caller sees the answer and flags the ledger entry.
ESTIMATED = "_edenai_usage_estimated"


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    # e.g. {"web_search_requests": 3}: uses of each server tool, cumulative like the tokens.
    server_tool_use: dict[str, int] = field(default_factory=dict)

    def update(self, reported: Mapping[str, Any] | None) -> None:
        """Take every figure the upstream reported; figures are cumulative, not deltas."""
        reported = reported or {}
        for name in TOKEN_NAMES:
            if _count(reported.get(name)):
                setattr(self, name, reported[name])
        tools = reported.get("server_tool_use")
        if isinstance(tools, Mapping):
            self.server_tool_use.update({name: value for name, value in tools.items()
                                         if isinstance(name, str) and _count(value)})

    @classmethod
    def of(cls, reported: Mapping[str, Any] | None) -> "Usage":
        usage = cls()
        usage.update(reported)
        return usage

    def as_dict(self) -> dict[str, int]:
        """The token figures (server tool uses are not tokens)."""
        return {name: getattr(self, name) for name in TOKEN_NAMES}

    def plus(self, other: "Usage") -> "Usage":
        """Both usages together: one request's attempts that each reported what they used."""
        tools = dict(self.server_tool_use)
        for name, uses in other.server_tool_use.items():
            tools[name] = tools.get(name, 0) + uses
        return Usage(*(getattr(self, name) + getattr(other, name) for name in TOKEN_NAMES), tools)


def fallback_iterations(declined: list[tuple[str, Usage]], serving: str, reported: Mapping[str, Any]) -> list[dict]:
    """`usage.iterations` of an answer a fallback served after models declined, as Anthropic's
    server-side fallback reports it (anthropic SDK BetaIterationsUsage): a `message` entry per
    declined hop, the serving model's own earlier iterations (a server tool loop's), then its
    terminal `fallback_message` entry (BetaFallbackMessageIterationUsage: "Whether a fallback
    model served the response is signalled by the presence of this entry"). `reported` is the
    serving model's usage as it reported it."""
    own = [dict(item) for item in reported.get("iterations") or [] if isinstance(item, Mapping)]
    terminal = own[-1] if own else Usage.of(reported).as_dict()
    return [*({"type": "message", "model": model, **usage.as_dict()} for model, usage in declined),
            *own[:-1], {**terminal, "type": "fallback_message", "model": serving}]
