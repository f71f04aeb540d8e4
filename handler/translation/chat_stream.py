"""A Chat Completions stream as Anthropic's stream events.

Pure: chunks in, (event name, data) pairs out. Anthropic's grammar is blocks
one after another, each opened, filled and closed: reasoning, text and each
tool call become a block in the order they arrive. OpenAI sends its finish
reason, then (asked with include_usage) a last chunk with the usage:
message_delta waits for the end of the stream, or `[DONE]`, so it carries
both. A stream that ends without a finish reason never gets message_stop, so
the relay sees it was cut. Where the provider reports no usage, or none for
what it produced, the figures are estimated and `usage_estimated` says so.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..protocol.errors import GatewayError
from .chat_completions import (
    stop_reason,
    text_of,
    thinking_of,
    tool_use,
    usage,
)
from .openai_shape import message_id
from .stream_events import Event, message_end, message_start, settled_usage


def anthropic_error_type(provider_type: Any) -> str:
    """An OpenAI-style error type as one of Anthropic's, which clients switch on."""
    said = str(provider_type or "").lower()
    if "rate_limit" in said or "quota" in said:
        return "rate_limit_error"
    if "overloaded" in said or "unavailable" in said:
        return "overloaded_error"
    if "invalid_request" in said:
        return "invalid_request_error"
    return "api_error"


class StreamTranslator:
    def __init__(self, model: str, input_estimate: int, names: Mapping[str, str] = {}) -> None:  # noqa: B006
        self._model = model
        self._names = names
        self._input_estimate = input_estimate
        self._started = False
        self._block: tuple[Any, ...] | None = None  # ("text" | "thinking", None) or ("tool", index, id)
        self._closed_tools: set[Any] = set()
        self._index = -1
        self._finish_reason: Any = None
        self._stop_reason: str | None = None
        self._called_tools = False
        self._usage: dict[str, int] | None = None
        self._produced_bytes = 0
        self.finished = False
        self.usage_estimated = False

    def _start(self, chunk: Mapping[str, Any]) -> list[Event]:
        self._started = True
        return message_start(message_id(chunk.get("id")), self._model, self._input_estimate)

    def _close(self) -> list[Event]:
        if self._block is None:
            return []
        if self._block[0] == "tool":
            self._closed_tools.add(self._block[1:])
        self._block = None
        return [("content_block_stop", {"type": "content_block_stop", "index": self._index})]

    def _open(self, block: tuple[str, Any], content_block: dict) -> list[Event]:
        events = self._close()
        self._block, self._index = block, self._index + 1
        return events + [("content_block_start", {"type": "content_block_start", "index": self._index,
                                                  "content_block": content_block})]

    def _delta(self, delta: dict, produced: str) -> Event:
        self._produced_bytes += len(produced.encode())
        return "content_block_delta", {"type": "content_block_delta", "index": self._index, "delta": delta}

    def feed(self, chunk: Mapping[str, Any]) -> list[Event]:
        """The events one chunk makes; an error chunk is an error event (the relay ends the
        client's stream with it, or fails the attempt before any content)."""
        if isinstance(chunk.get("error"), Mapping):
            error = chunk["error"]
            return [("error", {"type": "error", "error": {"type": anthropic_error_type(error.get("type")),
                                                          "message": str(error.get("message") or "")}})]
        events = [] if self._started else self._start(chunk)
        if isinstance(chunk.get("usage"), Mapping):
            self._usage = usage(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if isinstance(choice, Mapping) and choice.get("index", 0) == 0:
                events += self._choice(choice)
        return events

    def _choice(self, choice: Mapping[str, Any]) -> list[Event]:
        events: list[Event] = []
        delta = choice.get("delta") if isinstance(choice.get("delta"), Mapping) else {}
        thinking = thinking_of(delta)
        if thinking:
            if self._block != ("thinking", None):
                events += self._open(("thinking", None), {"type": "thinking", "thinking": "", "signature": ""})
            events.append(self._delta({"type": "thinking_delta", "thinking": thinking}, thinking))
        for name in ("content", "refusal"):
            text = text_of(delta.get(name))
            if text:
                if self._block != ("text", None):
                    events += self._open(("text", None), {"type": "text", "text": ""})
                events.append(self._delta({"type": "text_delta", "text": text}, text))
                if name == "refusal":
                    self._stop_reason = "refusal"
        for call in delta.get("tool_calls") or []:
            if isinstance(call, Mapping):
                events += self._tool_call(call)
        if choice.get("finish_reason"):
            events += self._close()
            self._finish_reason = choice["finish_reason"]
        return events

    def _tool_call(self, call: Mapping[str, Any]) -> list[Event]:
        """A tool call's piece. A call starts with its id or name, at a new index or (Gemini,
        which sends no index) with a new id; its arguments follow, in order. A piece for a
        call already closed cannot be placed (Anthropic's blocks do not reopen): an error."""
        events: list[Event] = []
        function = call.get("function") if isinstance(call.get("function"), Mapping) else {}
        index, call_id = call.get("index", 0), call.get("id")
        current = self._block if self._block and self._block[0] == "tool" else None
        if (call_id or function.get("name")) and (current is None or current[1] != index
                                                   or (call_id and current[2] not in (None, call_id))):
            if (index, call_id) in self._closed_tools:
                raise GatewayError(502, "The upstream model interleaved its tool calls.", error_type="api_error")
            events += self._open(("tool", index, call_id), tool_use(call, self._names))
            self._called_tools = True
        arguments = function.get("arguments")
        if not isinstance(arguments, str) or not arguments:
            return events
        if self._block is None or self._block[0] != "tool" or self._block[1] != index:
            raise GatewayError(502, "The upstream model sent arguments for a tool call it had closed.",
                               error_type="api_error")
        events.append(self._delta({"type": "input_json_delta", "partial_json": arguments}, arguments))
        return events

    def finish(self) -> list[Event]:
        """The events that end the message, once the upstream is done; none if it never said
        it had finished (the relay then reports the stream as cut)."""
        if not self._started or self._finish_reason is None or self.finished:
            return []
        self.finished = True
        reason = self._stop_reason or stop_reason(self._finish_reason, called_tools=self._called_tools)
        reported, estimated = settled_usage(self._usage, self._input_estimate, self._produced_bytes)
        self.usage_estimated = self.usage_estimated or estimated
        return self._close() + message_end(reason, reported)
