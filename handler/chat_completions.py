"""Anthropic's Messages API in OpenAI's Chat Completions, and back.

Pure. litellm's Anthropic adapter does this translation too, but around each
call it builds a logging object, runs `acompletion` through its own layers
and the OpenAI SDK, prices the answer and runs success callbacks: 57% of the
gateway's CPU on this route, measured (README, Benchmark), for work the
gateway does itself (metering) or does not want. Chat Completions is one
stable, documented wire format, so OpenAI, Azure OpenAI, Vertex AI's
OpenAI-compatible endpoint and every OpenAI-compatible server are spoken
here directly (openai_api.py does the I/O).

What the caller's body becomes is decided before this point
(upstream_request.litellm_arguments, adaptation.py): this module receives
those arguments and writes them in OpenAI's terms. Answers come back with
Anthropic's ids (`msg_…`, `toolu_…`: openai_shape.py), stop reasons and
usage, where `input_tokens` excludes the cached part as Anthropic's does.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Iterable, Mapping

from .errors import GatewayError
from .openai_shape import anthropic_tool_id, message_id

# OpenAI's finish reasons as Anthropic's stop reasons (OpenAI does not say which stop
# sequence fired, so a stop is an end_turn).
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "function_call": "tool_use", "content_filter": "refusal"}
# Anthropic's tool_choice types as OpenAI's.
_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
# OpenAI's function names: longer or other characters are refused with a 400.
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Bytes of prompt per token for a stream's first, estimated input figure (the real one
# arrives with the last chunk; a stream cut before it is metered on this, flagged).
_BYTES_PER_TOKEN = 4


# --------------------------------------------------------------------------- the request


def _text(content: Any) -> str:
    """The text of a system prompt or tool result given as a string or as blocks."""
    if isinstance(content, str):
        return content
    return "\n".join(str(block.get("text", "")) for block in content or []
                     if isinstance(block, Mapping) and block.get("type") == "text")


def _media_part(block: Mapping[str, Any]) -> dict[str, Any]:
    """An image or PDF block as an OpenAI content part; a source OpenAI cannot take is a 400."""
    source = block.get("source") if isinstance(block.get("source"), Mapping) else {}
    kind, media_type = source.get("type"), source.get("media_type")
    if block.get("type") == "image":
        if kind == "base64":
            return {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{source.get('data', '')}"}}
        if kind == "url":
            return {"type": "image_url", "image_url": {"url": source.get("url", "")}}
    elif kind == "base64" and media_type == "application/pdf":
        return {"type": "file", "file": {"filename": str(block.get("title") or "document.pdf"),
                                         "file_data": f"data:application/pdf;base64,{source.get('data', '')}"}}
    elif kind == "text":
        return {"type": "text", "text": str(source.get("data", ""))}
    raise GatewayError(400, f"This model cannot take a {block.get('type')} from a {kind!r} source "
                            "(Chat Completions takes base64 images, image URLs, base64 PDFs and text documents).",
                       retryable=True)


def _user_messages(content: Any) -> list[dict[str, Any]]:
    """One Anthropic user turn: its tool results become `tool` messages (which must follow the
    assistant's calls at once), the rest one user message after them."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in content or []:
        kind = block.get("type")
        if kind == "tool_result":
            inner = block.get("content")
            results.append({"role": "tool", "tool_call_id": str(block.get("tool_use_id")), "content": _text(inner)})
            # A tool result's images have no place in a tool message: they follow as the user's.
            parts.extend(_media_part(b) for b in inner or [] if isinstance(b, Mapping) and b.get("type") == "image")
        elif kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind in ("image", "document"):
            parts.append(_media_part(block))
    return results + ([{"role": "user", "content": parts}] if parts else [])


def _assistant_message(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": "assistant", "content": content}]
    text = "".join(str(b.get("text", "")) for b in content or [] if b.get("type") == "text")
    calls = [{"id": str(b.get("id")), "type": "function",
              "function": {"name": function_name(b.get("name")), "arguments": json.dumps(b.get("input") or {})}}
             for b in content or [] if b.get("type") == "tool_use"]
    if not text and not calls:
        return []
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return [message]


def messages(history: Iterable[Mapping[str, Any]], system: Any) -> list[dict[str, Any]]:
    """The conversation in Chat Completions' messages (system first)."""
    translated: list[dict[str, Any]] = []
    if system:
        translated.append({"role": "system", "content": _text(system)})
    for message in history:
        if message.get("role") == "assistant":
            translated.extend(_assistant_message(message.get("content")))
        else:
            translated.extend(_user_messages(message.get("content")))
    return translated


def function_name(name: Any) -> str:
    """A tool's name as OpenAI takes it: Anthropic's may be longer than OpenAI's 64 characters
    (MCP tools often are); those are cut and suffixed with their hash, so two stay two."""
    text = str(name or "")
    if _FUNCTION_NAME.match(text):
        return text
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)[:55] + "_" + hashlib.sha256(text.encode()).hexdigest()[:8]


def tool_names(call: Mapping[str, Any]) -> dict[str, str]:
    """The caller's tool names by the names OpenAI was given, to put them back in the answer."""
    return {function_name(tool.get("name")): str(tool.get("name")) for tool in call.get("tools") or []
            if isinstance(tool, Mapping) and function_name(tool.get("name")) != tool.get("name")}


def _tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    if tool.get("type") not in (None, "custom"):
        raise GatewayError(400, f"tools: {tool.get('name') or tool.get('type')!r} is one of Anthropic's server "
                                "tools, which only Anthropic's models run; this model takes only custom tools.",
                           retryable=True)
    function = {"name": function_name(tool.get("name")), "parameters": tool.get("input_schema") or {"type": "object"}}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def is_search_model(model_name: str) -> bool:
    """OpenAI's Chat Completions searches the web only with its search models
    (`gpt-4o-search-preview`, `gpt-5-search-api`, ...), given `web_search_options`."""
    return "-search-" in model_name.rpartition("/")[2] + "-"


def web_search_options(tool: Mapping[str, Any]) -> dict[str, Any]:
    """Anthropic's web search tool as OpenAI's options: its user location carries over;
    `max_uses` and the domain lists have no equivalent there."""
    location = tool.get("user_location")
    if not isinstance(location, Mapping):
        return {}
    approximate = {k: location[k] for k in ("city", "region", "country", "timezone") if location.get(k)}
    return {"user_location": {"type": "approximate", "approximate": approximate}} if approximate else {}


def _tool_choice(choice: Mapping[str, Any]) -> Any:
    if choice.get("type") == "tool":
        return {"type": "function", "function": {"name": function_name(choice.get("name"))}}
    return _TOOL_CHOICES.get(str(choice.get("type")), "auto")


def strict_schema(schema: Any) -> Any:
    """A JSON schema as OpenAI's strict mode takes it: every object closed, every property
    listed in `required` (a copy; Anthropic's structured outputs close objects too)."""
    if isinstance(schema, list):
        return [strict_schema(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    strict = {name: strict_schema(value) for name, value in schema.items()}
    if isinstance(strict.get("properties"), Mapping):
        strict["additionalProperties"] = False
        strict["required"] = list(strict["properties"])
    return strict


def response_format(form: Mapping[str, Any]) -> dict[str, Any]:
    """Anthropic's `{"type": "json_schema", "schema": ...}` as OpenAI's strict response format."""
    return {"type": "json_schema", "json_schema": {"name": "structured_output",
                                                   "schema": strict_schema(form.get("schema") or {}),
                                                   "strict": True}}


def request(call: Mapping[str, Any], *, max_tokens_field: str = "max_tokens") -> dict[str, Any]:
    """The Chat Completions body for a built call (upstream_request.build_call's litellm
    arguments); `max_tokens_field` is `max_completion_tokens` where the provider wants it."""
    body: dict[str, Any] = {"model": str(call["model"]).partition("/")[2],
                            "messages": messages(call["messages"], call.get("system")),
                            max_tokens_field: call["max_tokens"]}
    for name in ("temperature", "top_p", "reasoning_effort"):
        if call.get(name) is not None:
            body[name] = call[name]
    if call.get("stop_sequences"):
        body["stop"] = list(call["stop_sequences"])
    searches = [tool for tool in call.get("tools") or [] if str(tool.get("type")).startswith("web_search")]
    if searches:
        body["web_search_options"] = web_search_options(searches[0])
    if any(tool not in searches for tool in call.get("tools") or []):
        body["tools"] = [_tool(tool) for tool in call["tools"] if tool not in searches]
        choice = call.get("tool_choice")
        if isinstance(choice, Mapping):
            body["tool_choice"] = _tool_choice(choice)
            if choice.get("disable_parallel_tool_use"):
                body["parallel_tool_calls"] = False
    form = (call.get("output_config") or {}).get("format")
    if isinstance(form, Mapping):
        body["response_format"] = response_format(form)
    user = (call.get("metadata") or {}).get("user_id")
    if user:
        body["user"] = user
    if call.get("stream"):
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def estimated_input_tokens(body: Mapping[str, Any]) -> int:
    """A stream's input before the provider reports it: the prompt's bytes at 4 a token."""
    size = len(json.dumps(body.get("messages"), ensure_ascii=False).encode())
    size += len(json.dumps(body.get("tools") or [], ensure_ascii=False).encode())
    return max(1, size // _BYTES_PER_TOKEN)


# --------------------------------------------------------------------------- the answer


def usage(reported: Any) -> dict[str, int]:
    """OpenAI's usage in Anthropic's terms: cached prompt tokens are cache reads, and input
    tokens the rest, so the three add up to the prompt as Anthropic's do."""
    reported = reported if isinstance(reported, Mapping) else {}
    details = reported.get("prompt_tokens_details")
    details = details if isinstance(details, Mapping) else {}
    prompt = _count(reported.get("prompt_tokens"))
    cached = _count(reported.get("cache_read_input_tokens")) or _count(details.get("cached_tokens"))
    written = _count(reported.get("cache_creation_input_tokens")) or _count(details.get("cache_creation_tokens")) \
        or _count(details.get("cache_write_tokens"))
    return {"input_tokens": max(prompt - cached - written, 0), "output_tokens": _count(reported.get("completion_tokens")),
            "cache_creation_input_tokens": written, "cache_read_input_tokens": cached}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def tool_input(arguments: Any) -> Any:
    """A tool call's arguments as Anthropic's `input` object; what is not a JSON object is
    kept whole under `_raw` rather than lost (a model can emit broken JSON)."""
    if isinstance(arguments, Mapping):
        return dict(arguments)
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        return {"_raw": arguments}
    return parsed if isinstance(parsed, dict) else {"_raw": arguments}


def _thinking_of(message: Mapping[str, Any]) -> str | None:
    """What the provider says of its reasoning: `reasoning_content` (DeepSeek, vLLM, Vertex) or `reasoning`."""
    for name in ("reasoning_content", "reasoning"):
        if isinstance(message.get(name), str) and message[name]:
            return message[name]
    return None


def _tool_use(call: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    function = call.get("function") if isinstance(call.get("function"), Mapping) else {}
    name = str(function.get("name") or "")
    return {"type": "tool_use", "id": anthropic_tool_id(call.get("id")), "name": names.get(name, name), "input": {}}


def message(answer: Mapping[str, Any], model: str, names: Mapping[str, str] = {}) -> dict[str, Any]:  # noqa: B006
    """A whole Chat Completions answer as an Anthropic message (`names`: tool_names of the call)."""
    if isinstance(answer.get("error"), Mapping):
        return {"type": "error", "error": answer["error"]}  # upstream.checked_message says what it was
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise GatewayError(502, "The upstream model's answer has no choices.", error_type="api_error")
    choice = choices[0]
    said = choice.get("message") if isinstance(choice.get("message"), Mapping) else {}
    content: list[dict[str, Any]] = []
    thinking = _thinking_of(said)
    if thinking:
        content.append({"type": "thinking", "thinking": thinking, "signature": ""})
    text = said.get("content") or said.get("refusal")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in said.get("tool_calls") or []:
        if isinstance(call, Mapping):
            content.append({**_tool_use(call, names), "input": tool_input((call.get("function") or {}).get("arguments"))})
    stop_reason = "refusal" if said.get("refusal") and not said.get("content") else \
        STOP_REASONS.get(str(choice.get("finish_reason")), "end_turn")
    return {"id": message_id(answer.get("id")), "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop_reason, "stop_sequence": None,
            "usage": usage(answer.get("usage"))}


class StreamTranslator:
    """Chat Completions chunks in, Anthropic's stream events out, as (name, data) pairs.

    Anthropic's grammar is blocks one after another, each opened, filled and
    closed: reasoning, text and each tool call become a block in the order they
    arrive. OpenAI sends its finish reason, then (asked with include_usage) a
    last chunk with the usage: message_delta waits for the end of the stream
    so it carries both. A stream that ends without a finish reason never gets
    message_stop, so the relay sees it was cut.
    """

    def __init__(self, model: str, input_estimate: int, names: Mapping[str, str] = {}) -> None:  # noqa: B006
        self._model = model
        self._names = names
        self._input_estimate = input_estimate
        self._started = False
        self._block: tuple[str, Any] | None = None  # ("text"|"thinking"|"tool", tool index)
        self._index = -1
        self._stop_reason: str | None = None
        self._usage: dict[str, int] | None = None
        self._output_bytes = 0
        self.finished = False

    def _start(self, chunk: Mapping[str, Any]) -> list[tuple[str, dict]]:
        self._started = True
        started = {"id": message_id(chunk.get("id")), "type": "message", "role": "assistant", "model": self._model,
                   "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": self._input_estimate, "output_tokens": 1,
                             "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}
        return [("message_start", {"type": "message_start", "message": started}), ("ping", {"type": "ping"})]

    def _close(self) -> list[tuple[str, dict]]:
        if self._block is None:
            return []
        self._block = None
        return [("content_block_stop", {"type": "content_block_stop", "index": self._index})]

    def _open(self, block: tuple[str, Any], content_block: dict) -> list[tuple[str, dict]]:
        events = self._close()
        self._block, self._index = block, self._index + 1
        return events + [("content_block_start", {"type": "content_block_start", "index": self._index,
                                                  "content_block": content_block})]

    def _delta(self, delta: dict) -> tuple[str, dict]:
        return "content_block_delta", {"type": "content_block_delta", "index": self._index, "delta": delta}

    def feed(self, chunk: Mapping[str, Any]) -> list[tuple[str, dict]]:
        if isinstance(chunk.get("error"), Mapping):
            error = chunk["error"]
            return [("error", {"type": "error", "error": {"type": str(error.get("type") or "api_error"),
                                                          "message": str(error.get("message") or "")}})]
        events = [] if self._started else self._start(chunk)
        if isinstance(chunk.get("usage"), Mapping):
            self._usage = usage(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if isinstance(choice, Mapping) and choice.get("index", 0) == 0:
                events += self._choice(choice)
        return events

    def _choice(self, choice: Mapping[str, Any]) -> list[tuple[str, dict]]:
        events: list[tuple[str, dict]] = []
        delta = choice.get("delta") if isinstance(choice.get("delta"), Mapping) else {}
        thinking = _thinking_of(delta)
        if thinking:
            if self._block != ("thinking", None):
                events += self._open(("thinking", None), {"type": "thinking", "thinking": "", "signature": ""})
            events.append(self._delta({"type": "thinking_delta", "thinking": thinking}))
        for name in ("content", "refusal"):
            text = delta.get(name)
            if isinstance(text, str) and text:
                if self._block != ("text", None):
                    events += self._open(("text", None), {"type": "text", "text": ""})
                events.append(self._delta({"type": "text_delta", "text": text}))
                self._output_bytes += len(text.encode())
                if name == "refusal":
                    self._stop_reason = "refusal"
        for call in delta.get("tool_calls") or []:
            events += self._tool_call(call)
        if choice.get("finish_reason"):
            events += self._close()
            self._stop_reason = self._stop_reason if self._stop_reason == "refusal" else \
                STOP_REASONS.get(str(choice["finish_reason"]), "end_turn")
        return events

    def _tool_call(self, call: Mapping[str, Any]) -> list[tuple[str, dict]]:
        events: list[tuple[str, dict]] = []
        function = call.get("function") if isinstance(call.get("function"), Mapping) else {}
        block = ("tool", call.get("index", 0))
        if self._block != block:
            if not call.get("id") and not function.get("name"):
                return []  # arguments of a call already closed: Anthropic's blocks cannot reopen
            events += self._open(block, _tool_use(call, self._names))
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            events.append(self._delta({"type": "input_json_delta", "partial_json": arguments}))
            self._output_bytes += len(arguments.encode())
        return events

    def finish(self) -> list[tuple[str, dict]]:
        """The events that end the message, once the upstream has sent everything; none if
        it never said it had finished (the relay then reports the stream as cut)."""
        if not self._started or self._stop_reason is None or self.finished:
            return []
        self.finished = True
        reported = self._usage or {"output_tokens": max(1, -(-self._output_bytes // 3))}
        return self._close() + [
            ("message_delta", {"type": "message_delta", "delta": {"stop_reason": self._stop_reason,
                                                                   "stop_sequence": None}, "usage": reported}),
            ("message_stop", {"type": "message_stop"}),
        ]
