"""Anthropic's Messages API in OpenAI's Chat Completions, and back.

Pure. litellm's Anthropic adapter does this translation too, but around each
call it builds a logging object, runs `acompletion` through its own layers
and the OpenAI SDK, prices the answer and runs success callbacks: 57% of the
gateway's CPU on this route, measured (README, Benchmark), for work the
gateway does itself (metering) or does not want. Chat Completions is one
stable, documented wire format, so OpenAI, Azure OpenAI, Vertex AI's
OpenAI-compatible endpoint and every OpenAI-compatible server are spoken
here directly (providers/openai_api.py does the I/O, translation/chat_stream.py the streams).

What the caller's body becomes is decided before this point
(pipeline/calls.translated_arguments, pipeline/adaptation.py): this module receives
those arguments and writes them in OpenAI's terms. Answers come back with
Anthropic's ids (`msg_…`, `toolu_…`: translation/openai_shape.py), stop reasons and
usage, where `input_tokens` excludes the cached part as Anthropic's does.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Callable, Iterable, Mapping

from ..protocol.errors import GatewayError
from ..protocol.usage import ESTIMATED
from .lost_content import lost_in_translation
from .openai_shape import THOUGHT_SIGNATURE, anthropic_tool_id, message_id

# OpenAI's finish reasons as Anthropic's stop reasons (OpenAI does not say which stop
# sequence fired, so a stop is an end_turn).
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "function_call": "tool_use", "content_filter": "refusal"}
# Anthropic's tool_choice types as OpenAI's.
_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
# OpenAI's function names: longer or other characters are refused with a 400.
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# An input estimate, for a stream's message_start and for an answer that reports no usage:
# text at 4 bytes a token, an image as a large one (OpenAI bills a 1024x1024 one at about
# 765), a PDF as a few pages.
_BYTES_PER_TOKEN, _IMAGE_TOKENS, _PDF_TOKENS = 4, 1_600, 6_000
# What Chat Completions carries (translation/lost_content.py): image URLs (the provider fetches them) and
# text documents too; a document's title is its file name, its context and citations are lost.
CARRIED_SOURCES = {"image": {"base64", "url"}, "document": {"base64", "text"}}
LOST_KINDS = frozenset({"container_upload"})
LOST_DOCUMENT_FIELDS = ("context", "citations")
# OpenAI's limit on `user` (and on prompt_cache_key).
_MAX_USER = 64
# Finish reasons that say the answer failed (vLLM, sglang): not an answer to deliver as whole.
_FAILED = frozenset({"error", "abort"})

# tool_choice's flag as the gateway lists it in x-edenai-dropped-fields where the model refuses
# parallel_tool_calls (OpenAI's reasoning models).
PARALLEL_TOOL_USE = "tool_choice.disable_parallel_tool_use"


# --------------------------------------------------------------------------- the request


def text_of(content: Any, separator: str = "") -> str:
    """The text of content given as a string or as text blocks/parts: a system prompt, a tool
    result (lines), an answer or a delta (some providers send parts)."""
    if isinstance(content, str):
        return content
    return separator.join(str(part.get("text", "")) for part in content or []
                          if isinstance(part, Mapping) and part.get("type", "text") == "text")


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


def unsendable(body: Mapping[str, Any]) -> str | None:
    """The first block of the caller's body this translation would lose (translation/lost_content.py)."""
    return lost_in_translation(body, CARRIED_SOURCES, LOST_KINDS, LOST_DOCUMENT_FIELDS)


def _search_result_text(block: Mapping[str, Any]) -> str:
    """A search result in words: its title, its source and its text."""
    return "\n".join([str(block.get("title", "")), str(block.get("source", "")), text_of(block.get("content"), "\n")])


def _result_text(block: Mapping[str, Any]) -> str:
    """A tool result's content as the text of a `tool` message: text, text documents and
    search results (their title, source and text); an error says it is one."""
    parts = []
    inner = block.get("content")
    for item in [{"type": "text", "text": inner}] if isinstance(inner, str) else inner or []:
        kind = item.get("type") if isinstance(item, Mapping) else None
        if kind == "text":
            parts.append(str(item.get("text", "")))
        elif kind == "search_result":
            parts.append(_search_result_text(item))
        elif kind == "document" and (item.get("source") or {}).get("type") == "text":
            parts.append(str(item["source"].get("data", "")))
    text = "\n".join(parts)
    return f"Error: {text}" if block.get("is_error") else text


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
            results.append({"role": "tool", "tool_call_id": str(block.get("tool_use_id")), "content": _result_text(block)})
            # A tool result's images have no place in a tool message: they follow as the user's.
            parts.extend(_media_part(b) for b in inner or [] if isinstance(b, Mapping) and b.get("type") == "image")
        elif kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "search_result":
            parts.append({"type": "text", "text": _search_result_text(block)})
        elif kind in ("image", "document"):
            parts.append(_media_part(block))
    return results + ([{"role": "user", "content": parts}] if parts else [])


def _call(block: Mapping[str, Any]) -> dict[str, Any]:
    """A tool_use block as the assistant's tool call, with Gemini 3's thought signature if
    the call had one (Vertex refuses the next step without it)."""
    call = {"id": str(block.get("id")), "type": "function",
            "function": {"name": function_name(block.get("name")), "arguments": json.dumps(block.get("input") or {})}}
    if block.get(THOUGHT_SIGNATURE):
        call["extra_content"] = {"google": {"thought_signature": block[THOUGHT_SIGNATURE]}}
    return call


def _assistant_message(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": "assistant", "content": content}]
    text = "".join(str(b.get("text", "")) for b in content or [] if b.get("type") == "text")
    calls = [_call(b) for b in content or [] if b.get("type") == "tool_use"]
    if not text and not calls:
        return []
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return [message]


def messages(history: Iterable[Mapping[str, Any]], system: Any) -> list[dict[str, Any]]:
    """The conversation in Chat Completions' messages: the system prompt first, and system-role
    messages the caller put mid-conversation where they stand (Chat Completions takes them anywhere)."""
    translated: list[dict[str, Any]] = []
    if system:
        translated.append({"role": "system", "content": text_of(system, "\n")})
    for message in history:
        if message.get("role") == "system":
            translated.append({"role": "system", "content": text_of(message.get("content"), "\n")})
        elif message.get("role") == "assistant":
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


_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_SUBSCHEMAS = ("items", "prefixItems", "anyOf", "oneOf", "allOf", "not", "additionalProperties")


def strict_schema(schema: Any) -> Any:
    """A JSON schema as OpenAI's strict mode takes it: every object closed, every property
    listed in `required` (a copy; Anthropic's structured outputs close objects too)."""
    if not isinstance(schema, Mapping):
        return schema
    strict = dict(schema)
    for keyword in _SUBSCHEMA_MAPS:  # maps of names to schemas: the names are not keywords
        if isinstance(strict.get(keyword), Mapping):
            strict[keyword] = {name: strict_schema(sub) for name, sub in strict[keyword].items()}
    for keyword in _SUBSCHEMAS:
        if isinstance(strict.get(keyword), list):
            strict[keyword] = [strict_schema(sub) for sub in strict[keyword]]
        elif isinstance(strict.get(keyword), Mapping):
            strict[keyword] = strict_schema(strict[keyword])
    if isinstance(strict.get("properties"), Mapping):
        strict["additionalProperties"] = False
        strict["required"] = list(strict["properties"])
    return strict


def response_format(form: Mapping[str, Any]) -> dict[str, Any]:
    """Anthropic's `{"type": "json_schema", "schema": ...}` as OpenAI's strict response format."""
    return {"type": "json_schema", "json_schema": {"name": "structured_output",
                                                   "schema": strict_schema(form.get("schema") or {}),
                                                   "strict": True}}


def end_user(user_id: str) -> str:
    """metadata.user_id as OpenAI's `user`, which it refuses past 64 characters (Claude Code's
    is a JSON object of about 150): a longer one goes as its SHA-256, still one per user."""
    return user_id if len(user_id) <= _MAX_USER else hashlib.sha256(user_id.encode()).hexdigest()


def claude_code_session(user_id: Any) -> str | None:
    """The session id Claude Code packs (as JSON) into `metadata.user_id`, cut to OpenAI's 64
    characters: a cache key per conversation, where OpenAI would otherwise route a session's
    requests to machines that do not hold its prefix (litellm sends it too)."""
    if not isinstance(user_id, str) or not user_id.startswith("{"):
        return None
    try:
        session = json.loads(user_id).get("session_id")
    except (ValueError, AttributeError):
        return None
    return session[:_MAX_USER] if isinstance(session, str) and session else None


def request(call: Mapping[str, Any]) -> dict[str, Any]:
    """The Chat Completions body for a built call (pipeline/calls.translated_arguments, and
    the family's `max_tokens_field`: OpenAI's reasoning models take only
    `max_completion_tokens`)."""
    body: dict[str, Any] = {"model": str(call["model"]).partition("/")[2],
                            "messages": messages(call["messages"], call.get("system")),
                            call.get("max_tokens_field") or "max_tokens": call["max_tokens"]}
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
        body["user"] = end_user(user)
        session = claude_code_session(user) if call.get("session_cache_key") else None
        if session:
            body["prompt_cache_key"] = session
    if call.get("stream"):
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def estimated_input_tokens(body: Mapping[str, Any]) -> int:
    """The prompt's tokens before (or without) the provider's figure: its text and tools at 4
    bytes a token, each image and PDF at a flat figure rather than its base64's length."""
    size, media = len(json.dumps(body.get("tools") or [], ensure_ascii=False).encode()), 0
    for message in body.get("messages") or []:
        content = message.get("content")
        for part in [content] if isinstance(content, str) else content or []:  # null: a turn of tool calls alone
            if isinstance(part, str):
                size += len(part.encode())
            elif part.get("type") == "image_url":
                media += _IMAGE_TOKENS
            elif part.get("type") == "file":
                media += _PDF_TOKENS
            else:
                size += len(str(part.get("text", "")).encode())
        for call in message.get("tool_calls") or []:
            size += len(str(call["function"].get("arguments", "")).encode())
    return max(1, size // _BYTES_PER_TOKEN + media)


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
    # Some providers leave reasoning out of completion_tokens but not out of total_tokens.
    output = max(_count(reported.get("completion_tokens")), _count(reported.get("total_tokens")) - prompt)
    return {"input_tokens": max(prompt - cached - written, 0), "output_tokens": output,
            "cache_creation_input_tokens": written, "cache_read_input_tokens": cached}


def estimated_output_tokens(produced_bytes: int) -> int:
    """Output the provider did not report, from what it produced: 3 bytes a token, as the
    relay estimates a cut stream's."""
    return max(1, -(-produced_bytes // 3))


def stop_reason(finish_reason: Any, *, called_tools: bool) -> str:
    """Anthropic's stop reason for OpenAI's finish reason. Some providers (Gemini's
    OpenAI-compatible endpoint, sglang) finish a turn of tool calls with "stop": an agent
    loop runs tools only on tool_use. A failed generation is an error, not an answer."""
    if finish_reason in _FAILED:
        raise GatewayError(502, f"The upstream model's generation failed (finish_reason {finish_reason!r}).",
                           error_type="api_error")
    reason = STOP_REASONS.get(str(finish_reason), "end_turn")
    return "tool_use" if called_tools and reason == "end_turn" else reason


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


def thinking_of(message: Mapping[str, Any]) -> str | None:
    """What the provider says of its reasoning: `reasoning_content` (DeepSeek, vLLM, Vertex) or `reasoning`."""
    for name in ("reasoning_content", "reasoning"):
        if isinstance(message.get(name), str) and message[name]:
            return message[name]
    return None


def tool_use(call: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """A tool call's tool_use block, `input` still to fill: Anthropic's id, the caller's name."""
    function = call.get("function") if isinstance(call.get("function"), Mapping) else {}
    name = str(function.get("name") or "")
    google = (call.get("extra_content") or {}).get("google") if isinstance(call.get("extra_content"), Mapping) else None
    signature = google.get("thought_signature") if isinstance(google, Mapping) else None
    return {"type": "tool_use", "id": anthropic_tool_id(call.get("id"), signature if isinstance(signature, str) else None),
            "name": names.get(name, name), "input": {}}




def message(answer: Mapping[str, Any], model: str, names: Mapping[str, str] = {},  # noqa: B006
            estimate_input: Callable[[], int] = lambda: 0) -> dict[str, Any]:
    """A whole Chat Completions answer as an Anthropic message (`names`: tool_names of the
    call). An answer that reports no usage is metered on estimates, flagged (ESTIMATED)."""
    if isinstance(answer.get("error"), Mapping):
        return {"type": "error", "error": answer["error"]}  # upstream.checked_message says what it was
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise GatewayError(502, "The upstream model's answer has no choices.", error_type="api_error")
    choice = choices[0]
    said = choice.get("message") if isinstance(choice.get("message"), Mapping) else {}
    content: list[dict[str, Any]] = []
    thinking = thinking_of(said)
    if thinking:
        content.append({"type": "thinking", "thinking": thinking, "signature": ""})
    text = text_of(said.get("content")) or text_of(said.get("refusal"))
    if text:
        content.append({"type": "text", "text": text})
    for call in said.get("tool_calls") or []:
        if isinstance(call, Mapping):
            content.append({**tool_use(call, names), "input": tool_input((call.get("function") or {}).get("arguments"))})
    called = any(block["type"] == "tool_use" for block in content)
    reason = "refusal" if said.get("refusal") and not said.get("content") else \
        stop_reason(choice.get("finish_reason"), called_tools=called)
    translated = {"id": message_id(answer.get("id")), "type": "message", "role": "assistant", "model": model,
                  "content": content, "stop_reason": reason, "stop_sequence": None,
                  "usage": usage(answer.get("usage"))}
    if not translated["usage"]["output_tokens"] and content:
        produced = len(json.dumps(content, ensure_ascii=False).encode())
        translated["usage"].update(input_tokens=translated["usage"]["input_tokens"] or estimate_input(),
                                   output_tokens=estimated_output_tokens(produced))
        translated[ESTIMATED] = True
    return translated
