"""Anthropic's Messages API in Amazon Bedrock's Converse, and back.

Pure. Converse is the one request shape Bedrock serves every chat model in
(Amazon Nova, Meta Llama, Mistral, DeepSeek, ...): messages of content
blocks, a system list, `inferenceConfig`, `toolConfig`, and what a model
takes beyond those in `additionalModelRequestFields`. The wire truth is
botocore's service model for `bedrock-runtime` (ConverseRequest, ContentBlock,
ToolConfiguration, TokenUsage, StopReason); providers/converse_api.py does the
I/O, translation/converse_stream.py the streams.

What the caller's body becomes is decided before this point, as for Chat
Completions (pipeline/calls.translated_arguments): system-role messages are
already in the system prompt, thinking blocks already out of the history.
Converse wants the turns to alternate, starting with the user's; Anthropic
merges consecutive turns of one role, so they are merged here too.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

from ..protocol.errors import GatewayError
from ..protocol.usage import ESTIMATED
from .chat_completions import estimated_output_tokens, function_name, tool_input
from .openai_shape import message_id

# Converse's stop reasons (botocore: StopReason) as Anthropic's.
STOP_REASONS = {"end_turn": "end_turn", "tool_use": "tool_use", "max_tokens": "max_tokens",
                "stop_sequence": "stop_sequence", "guardrail_intervened": "refusal",
                "content_filtered": "refusal", "model_context_window_exceeded": "model_context_window_exceeded"}
# Stop reasons that say the model's output could not be read: a failure, not an answer.
FAILED = frozenset({"malformed_model_output", "malformed_tool_use"})
# Anthropic's tool_choice as Converse's ToolChoice union ("none" has no member: no tools are offered).
_TOOL_CHOICES = {"auto": {"auto": {}}, "any": {"any": {}}}
# The forced tool a structured-output request is asked through (litellm's name, RESPONSE_FORMAT_TOOL_NAME):
# its input is the answer, given back as text.
FORMAT_TOOL = "json_tool_call"
CACHE_POINT = {"cachePoint": {"type": "default"}}
# An input estimate for a stream's message_start (Converse reports usage only at the end).
_BYTES_PER_TOKEN, _MEDIA_TOKENS = 4, 1_600
# The text a tool result with no content is sent as: ToolResultBlock requires content, and
# Converse refuses a blank text block.
EMPTY_RESULT = "(no output)"


# --------------------------------------------------------------------------- the request


def _media(block: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """A base64 image or PDF as Converse's ImageBlock / DocumentBlock (a blob travels as base64
    in the JSON document, so the caller's data goes as it is). Other sources never get here:
    lost_content refuses them before the call (Family.unsendable)."""
    source = block.get("source") if isinstance(block.get("source"), Mapping) else {}
    if source.get("type") != "base64":
        return None
    media_type = str(source.get("media_type") or "")
    if block.get("type") == "image":
        return {"image": {"format": media_type.rpartition("/")[2], "source": {"bytes": source.get("data", "")}}}
    if media_type == "application/pdf":
        # DocumentBlock.name is required, of letters, digits, single spaces, hyphens, parentheses and
        # brackets: one the gateway makes, unique in the request.
        return {"document": {"format": "pdf", "name": name, "source": {"bytes": source.get("data", "")}}}
    return None


def _cached(blocks: list[dict[str, Any]], block: Mapping[str, Any], cache_points: bool) -> list[dict[str, Any]]:
    """A block's cache_control as a cachePoint after it, where the model caches prompts."""
    return blocks + [dict(CACHE_POINT)] if cache_points and blocks and block.get("cache_control") else blocks


def _result_content(block: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    inner = block.get("content")
    items = [{"type": "text", "text": inner}] if isinstance(inner, str) else inner or []
    content: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            continue
        if item.get("type") == "text" and item.get("text"):
            content.append({"text": str(item["text"])})
        elif item.get("type") in ("image", "document"):
            media = _media(item, f"{where}-{i}")
            if media:
                content.append(media)
    return content or [{"text": EMPTY_RESULT}]


def _blocks(content: Any, where: str, cache_points: bool) -> list[dict[str, Any]]:
    """One Anthropic turn's content as Converse content blocks (empty text is left out:
    Converse refuses a blank text block)."""
    if isinstance(content, str):
        return [{"text": content}] if content else []
    converted: list[dict[str, Any]] = []
    for b, block in enumerate(content or []):
        if not isinstance(block, Mapping):
            continue
        kind, made = block.get("type"), []
        if kind == "text" and block.get("text"):
            made = [{"text": str(block["text"])}]
        elif kind in ("image", "document"):
            media = _media(block, f"document-{where}-{b}")
            made = [media] if media else []
        elif kind == "tool_use":
            made = [{"toolUse": {"toolUseId": str(block.get("id")), "name": function_name(block.get("name")),
                                 "input": block.get("input") if isinstance(block.get("input"), Mapping) else {}}}]
        elif kind == "tool_result":
            result = {"toolUseId": str(block.get("tool_use_id")), "content": _result_content(block, f"result-{where}-{b}")}
            if block.get("is_error"):
                result["status"] = "error"
            made = [{"toolResult": result}]
        converted += _cached(made, block, cache_points)
    return converted


def messages(history: Iterable[Mapping[str, Any]], cache_points: bool = False) -> list[dict[str, Any]]:
    """The conversation as Converse's messages: turns of one role in a row merged, as Anthropic
    reads them (Converse refuses two in a row), and turns left empty dropped."""
    translated: list[dict[str, Any]] = []
    for m, message in enumerate(history):
        role = "assistant" if message.get("role") == "assistant" else "user"
        content = _blocks(message.get("content"), str(m), cache_points)
        if not content:
            continue
        if translated and translated[-1]["role"] == role:
            translated[-1]["content"] += content
        else:
            translated.append({"role": role, "content": content})
    return translated


def system(prompt: Any, cache_points: bool = False) -> list[dict[str, Any]]:
    """The system prompt as SystemContentBlocks (NonEmptyString: blank text is left out)."""
    if isinstance(prompt, str):
        return [{"text": prompt}] if prompt else []
    blocks: list[dict[str, Any]] = []
    for block in prompt or []:
        if isinstance(block, Mapping) and block.get("text"):
            blocks += _cached([{"text": str(block["text"])}], block, cache_points)
    return blocks


def _tool_spec(tool: Mapping[str, Any], cache_points: bool) -> list[dict[str, Any]]:
    if tool.get("type") not in (None, "custom"):
        raise GatewayError(400, f"tools: {tool.get('name') or tool.get('type')!r} is one of Anthropic's server "
                                "tools, which only Anthropic's models run; this model takes only custom tools.",
                           retryable=True)
    spec: dict[str, Any] = {"name": function_name(tool.get("name")),
                            "inputSchema": {"json": tool.get("input_schema") or {"type": "object"}}}
    if tool.get("description"):
        spec["description"] = str(tool["description"])
    return _cached([{"toolSpec": spec}], tool, cache_points)


def _used_tools(converted: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(block["toolUse"]["name"] for message in converted for block in message["content"]
                              if "toolUse" in block))


def tool_config(call: Mapping[str, Any], converted: list[dict[str, Any]], cache_points: bool = False
                ) -> dict[str, Any] | None:
    """Converse's toolConfig: the caller's tools, the structured-output tool, and for a history
    that holds tool calls but no tools now, a stand-in for each (Converse refuses toolUse and
    toolResult blocks without a toolConfig)."""
    choice = call.get("tool_choice") if isinstance(call.get("tool_choice"), Mapping) else {}
    # `none` has no ToolChoice member: the tools are not offered (but for the history's stand-ins).
    offered = [] if choice.get("type") == "none" else call.get("tools") or []
    tools = [spec for tool in offered for spec in _tool_spec(tool, cache_points)]
    picked: dict[str, Any] | None = None
    if choice.get("type") == "tool":
        picked = {"tool": {"name": function_name(choice.get("name"))}}
    elif choice.get("type") in _TOOL_CHOICES:
        picked = dict(_TOOL_CHOICES[choice["type"]])
    if structured(call):
        form = call["output_config"]["format"]
        tools.append({"toolSpec": {"name": FORMAT_TOOL, "description": "Give the answer in this JSON shape.",
                                   "inputSchema": {"json": form.get("schema") or {"type": "object"}}}})
        picked = {"tool": {"name": FORMAT_TOOL}}
    if not tools:
        used = _used_tools(converted)
        if not used:
            return None
        tools = [{"toolSpec": {"name": name, "inputSchema": {"json": {"type": "object"}}}} for name in used]
    config: dict[str, Any] = {"tools": tools}
    if picked:
        config["toolChoice"] = picked
    return config


def structured(call: Mapping[str, Any]) -> bool:
    """Whether the call asks for structured output (through the forced FORMAT_TOOL)."""
    return isinstance((call.get("output_config") or {}).get("format"), Mapping)


def additional_fields(call: Mapping[str, Any]) -> dict[str, Any]:
    """What a model takes beyond Converse's own fields: reasoning, in each model's shape
    (litellm's mapping): Nova 2's reasoningConfig, gpt-oss's reasoning_effort."""
    effort, model = call.get("reasoning_effort"), str(call["model"]).partition("/")[2]
    if not effort:
        return {}
    if "nova-2" in model:
        return {"reasoningConfig": {"type": "enabled", "maxReasoningEffort": effort}}
    if "gpt-oss" in model:
        return {"reasoning_effort": effort}
    return {}


def request(call: Mapping[str, Any]) -> dict[str, Any]:
    """The Converse body for a built call (pipeline/calls.translated_arguments); `cache_points`
    (the family's model_arguments) says the model takes cachePoint blocks."""
    cache_points = bool(call.get("cache_points"))
    converted = messages(call["messages"], cache_points)
    body: dict[str, Any] = {"messages": converted}
    prompt = system(call.get("system"), cache_points)
    if prompt:
        body["system"] = prompt
    inference: dict[str, Any] = {"maxTokens": call["max_tokens"]}
    for name, converse_name in (("temperature", "temperature"), ("top_p", "topP")):
        if call.get(name) is not None:
            inference[converse_name] = call[name]
    if call.get("stop_sequences"):
        inference["stopSequences"] = list(call["stop_sequences"])
    body["inferenceConfig"] = inference
    tools = tool_config(call, converted, cache_points)
    if tools:
        body["toolConfig"] = tools
    extra = additional_fields(call)
    if extra:
        body["additionalModelRequestFields"] = extra
    return body


def count_request(call: Mapping[str, Any]) -> dict[str, Any]:
    """CountTokens' `input.converse` (botocore: ConverseTokensRequest): messages, system, toolConfig."""
    converted = messages(call["messages"])
    counted: dict[str, Any] = {"messages": converted}
    prompt = system(call.get("system"))
    if prompt:
        counted["system"] = prompt
    tools = tool_config({"tools": call.get("tools")}, converted)
    if tools:
        counted["toolConfig"] = tools
    return {"input": {"converse": counted}}


def estimated_input_tokens(body: Mapping[str, Any]) -> int:
    """The prompt's tokens before Converse says (a stream's message_start): text at 4 bytes a
    token, an image or a document at a flat figure rather than its base64's length."""
    size, media = len(json.dumps(body.get("toolConfig") or {}).encode()), 0
    for block in list(body.get("system") or []) + [b for m in body.get("messages") or [] for b in m["content"]]:
        if "image" in block or "document" in block:
            media += _MEDIA_TOKENS
        elif "text" in block:
            size += len(block["text"].encode())
        else:
            size += len(json.dumps(block, ensure_ascii=False).encode())
    return max(1, size // _BYTES_PER_TOKEN + media)


# --------------------------------------------------------------------------- the answer


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage(reported: Any) -> dict[str, int]:
    """Converse's TokenUsage in Anthropic's terms: its inputTokens already leave out the cached
    part (totalTokens adds cache reads and writes to it), as Anthropic's input_tokens do."""
    reported = reported if isinstance(reported, Mapping) else {}
    return {"input_tokens": _count(reported.get("inputTokens")), "output_tokens": _count(reported.get("outputTokens")),
            "cache_creation_input_tokens": _count(reported.get("cacheWriteInputTokens")),
            "cache_read_input_tokens": _count(reported.get("cacheReadInputTokens"))}


def stop_reason(reason: Any, *, called_tools: bool) -> str:
    if reason in FAILED:
        raise GatewayError(502, f"The upstream model's output could not be read (stopReason {reason!r}).",
                           error_type="api_error")
    said = STOP_REASONS.get(str(reason), "end_turn")
    if said == "tool_use" and not called_tools:
        return "end_turn"  # the structured-output tool was the only call: its input is the answer
    return "tool_use" if called_tools and said == "end_turn" else said


def tool_use(tool_use_id: Any, name: Any, names: Mapping[str, str]) -> dict[str, Any]:
    """A Converse toolUse as a tool_use block, `input` still to fill; the caller's tool name."""
    name = str(name or "")
    return {"type": "tool_use", "id": str(tool_use_id), "name": names.get(name, name), "input": {}}


def _content(blocks: Any, names: Mapping[str, str]) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = []
    for block in blocks if isinstance(blocks, list) else []:
        if not isinstance(block, Mapping):
            continue
        if isinstance(block.get("text"), str) and block["text"]:
            content.append({"type": "text", "text": block["text"]})
        elif isinstance(block.get("toolUse"), Mapping):
            call = block["toolUse"]
            if call.get("name") == FORMAT_TOOL:  # the structured answer, asked as this tool's input
                content.append({"type": "text", "text": json.dumps(tool_input(call.get("input")))})
            else:
                content.append({**tool_use(call.get("toolUseId"), call.get("name"), names),
                                "input": tool_input(call.get("input"))})
        elif isinstance(block.get("reasoningContent"), Mapping):
            said = block["reasoningContent"].get("reasoningText")
            if isinstance(said, Mapping) and said.get("text"):
                # Another platform's signature: Anthropic could not verify it (the history drops it).
                content.append({"type": "thinking", "thinking": str(said["text"]), "signature": ""})
    return content


def message(answer: Mapping[str, Any], model: str, names: Mapping[str, str] = {},  # noqa: B006
            estimate_input: int = 0) -> dict[str, Any]:
    """A whole Converse answer as an Anthropic message (`names`: chat_completions.tool_names of
    the call). An answer that reports no usage is metered on estimates, flagged (ESTIMATED)."""
    output = answer.get("output") if isinstance(answer.get("output"), Mapping) else {}
    said = output.get("message") if isinstance(output.get("message"), Mapping) else None
    if said is None:
        raise GatewayError(502, "The upstream model's answer has no message.", error_type="api_error")
    blocks = said.get("content") if isinstance(said.get("content"), list) else []
    if any(isinstance(b, Mapping) and (b.get("toolUse") or {}).get("name") == FORMAT_TOOL for b in blocks):
        # Asked for structured output: the forced tool's input is the answer, the words around it are not.
        blocks = [b for b in blocks if not (isinstance(b, Mapping) and "text" in b)]
    content = _content(blocks, names)
    called = any(block["type"] == "tool_use" for block in content)
    translated = {"id": message_id(None), "type": "message", "role": "assistant", "model": model,
                  "content": content, "stop_reason": stop_reason(answer.get("stopReason"), called_tools=called),
                  "stop_sequence": None, "usage": usage(answer.get("usage"))}
    if not translated["usage"]["output_tokens"] and content:
        produced = len(json.dumps(content, ensure_ascii=False).encode())
        translated["usage"].update(input_tokens=translated["usage"]["input_tokens"] or estimate_input,
                                   output_tokens=estimated_output_tokens(produced))
        translated[ESTIMATED] = True
    return translated

