"""A ConverseStream as Anthropic's stream events.

Pure: Converse's events (messageStart, contentBlockStart, contentBlockDelta,
contentBlockStop, messageStop, metadata; botocore: ConverseStreamOutput) in,
(event name, data) pairs out. Converse numbers its blocks as Anthropic does,
but opens only a tool call with contentBlockStart: a text or reasoning block
begins with its first delta. messageStop says why the model stopped and
metadata, after it, the usage: message_delta waits for metadata (or the end of
the stream), so it carries both. A stream that ends without messageStop never
gets message_stop, so the relay sees it was cut.
"""

from __future__ import annotations

from typing import Any, Mapping

from .converse import FORMAT_TOOL, stop_reason, tool_use, usage
from .openai_shape import message_id
from .stream_events import Event, message_end, message_start, settled_usage


class ConverseStreamTranslator:
    def __init__(self, model: str, input_estimate: int, names: Mapping[str, str] = {},  # noqa: B006
                 structured: bool = False) -> None:
        self._model = model
        # A structured-output request: the forced tool's input is the answer, the model's own words are not.
        self._structured = structured
        self._names = names
        self._input_estimate = input_estimate
        self._started = False
        self._open: tuple[Any, str] | None = None  # (Converse's block index, "text" | "thinking" | "tool" | "format")
        self._index = -1
        self._stop: Any = None
        self._called_tools = False
        self._usage: dict[str, int] | None = None
        self._produced_bytes = 0
        self.finished = False
        self.usage_estimated = False

    def _start(self) -> list[Event]:
        self._started = True
        return message_start(message_id(None), self._model, self._input_estimate)

    def _close(self) -> list[Event]:
        if self._open is None:
            return []
        self._open = None
        return [("content_block_stop", {"type": "content_block_stop", "index": self._index})]

    def _begin(self, converse_index: Any, kind: str, content_block: dict) -> list[Event]:
        events = self._close()
        self._open, self._index = (converse_index, kind), self._index + 1
        return events + [("content_block_start", {"type": "content_block_start", "index": self._index,
                                                  "content_block": content_block})]

    def _delta(self, delta: dict, produced: str) -> Event:
        self._produced_bytes += len(produced.encode())
        return "content_block_delta", {"type": "content_block_delta", "index": self._index, "delta": delta}

    def feed(self, name: str, event: Mapping[str, Any]) -> list[Event]:
        """The events one Converse event makes."""
        events = [] if self._started else self._start()
        index = event.get("contentBlockIndex")
        if name == "contentBlockStart":
            call = (event.get("start") or {}).get("toolUse")
            if isinstance(call, Mapping):
                if call.get("name") == FORMAT_TOOL:  # the structured answer: its input is the text
                    events += self._begin(index, "format", {"type": "text", "text": ""})
                else:
                    self._called_tools = True
                    events += self._begin(index, "tool", tool_use(call.get("toolUseId"), call.get("name"), self._names))
        elif name == "contentBlockDelta":
            events += self._piece(index, event.get("delta") if isinstance(event.get("delta"), Mapping) else {})
        elif name == "contentBlockStop":
            if self._open is not None and self._open[0] == index:
                events += self._close()
        elif name == "messageStop":
            events += self._close()
            self._stop = event.get("stopReason") or "end_turn"
        elif name == "metadata":
            self._usage = usage(event.get("usage"))
            events += self.finish()
        return events

    def _piece(self, index: Any, delta: Mapping[str, Any]) -> list[Event]:
        events: list[Event] = []
        text = delta.get("text")
        if isinstance(text, str) and text and not self._structured:
            if self._open != (index, "text"):
                events += self._begin(index, "text", {"type": "text", "text": ""})
            events.append(self._delta({"type": "text_delta", "text": text}, text))
        call = delta.get("toolUse")
        if isinstance(call, Mapping) and isinstance(call.get("input"), str) and call["input"]:
            if self._open == (index, "format"):
                events.append(self._delta({"type": "text_delta", "text": call["input"]}, call["input"]))
            elif self._open == (index, "tool"):
                events.append(self._delta({"type": "input_json_delta", "partial_json": call["input"]}, call["input"]))
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, Mapping) and isinstance(reasoning.get("text"), str) and reasoning["text"]:
            if self._open != (index, "thinking"):
                events += self._begin(index, "thinking", {"type": "thinking", "thinking": "", "signature": ""})
            events.append(self._delta({"type": "thinking_delta", "thinking": reasoning["text"]}, reasoning["text"]))
        return events

    def finish(self) -> list[Event]:
        """The events that end the message, once the model has said it stopped; none if it never
        did (the relay then reports the stream as cut)."""
        if not self._started or self._stop is None or self.finished:
            return []
        self.finished = True
        reason = stop_reason(self._stop, called_tools=self._called_tools)
        reported, estimated = settled_usage(self._usage, self._input_estimate, self._produced_bytes)
        self.usage_estimated = self.usage_estimated or estimated
        return self._close() + message_end(reason, reported)
