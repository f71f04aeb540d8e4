"""Fake Google Gemini API (generativelanguage) speaking its real wire format over HTTP.

Built from the Gemini API reference: `POST …/models/{model}:generateContent`,
`:streamGenerateContent?alt=sse` (SSE whose `data:` lines are partial
GenerateContentResponse objects, the last one carrying finishReason and
usageMetadata) and `:countTokens`; the key in `x-goog-api-key` (or `?key=`);
errors as `{"error": {"code", "message", "status"}}` (RESOURCE_EXHAUSTED 429,
UNAVAILABLE 503, INVALID_ARGUMENT 400).

    with FakeGemini(api_key="AIza-test") as gemini:
        gemini.error("gemini-2.5-flash", "RESOURCE_EXHAUSTED")

Replies are fake_upstream.py's deterministic ones. A request naming a
`cachedContent` (explicit caching), or any request once `cache_read` is set
(Gemini 2.5's implicit caching, which needs no field), reports half its prompt
as cachedContentTokenCount, a part of promptTokenCount as Gemini counts it. A
`responseMimeType: application/json` with a `responseSchema` (OpenAPI subset)
or `responseJsonSchema` (JSON Schema) is answered with JSON satisfying it.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.fake_upstream import (
    ANTHROPIC, FakeUpstream, ModelInPathHandler, Recorded, _Fault, _input_words, _int_or_none, _pieces, _Prompt, _picked_tool,
    _stop_list,
)

ERROR_STATUS = {"RESOURCE_EXHAUSTED": 429, "UNAVAILABLE": 503, "INVALID_ARGUMENT": 400, "PERMISSION_DENIED": 403,
                "NOT_FOUND": 404, "INTERNAL": 500, "DEADLINE_EXCEEDED": 504, "UNAUTHENTICATED": 401}
FINISH = {"end_turn": "STOP", "tool_use": "STOP", "stop_sequence": "STOP", "max_tokens": "MAX_TOKENS"}


def _part_texts(parts) -> list[str]:
    out = []
    for part in parts or []:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            out.append(part["text"])
        response = (part.get("functionResponse") or part.get("function_response") or {}).get("response")
        if response is not None:
            out.append(response if isinstance(response, str) else
                       str(response.get("content", response.get("result", json.dumps(response))))
                       if isinstance(response, dict) else json.dumps(response))
    return out


def _field(document: dict, name: str):
    """A proto JSON field, camelCase or snake_case (litellm sends snake_case)."""
    snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)
    return document.get(name, document.get(snake))


def answer_schema(config: dict) -> dict | None:
    """The JSON the answer must satisfy: only with responseMimeType application/json."""
    if _field(config, "responseMimeType") != "application/json":
        return None
    if isinstance(_field(config, "responseJsonSchema"), dict):
        return _field(config, "responseJsonSchema")
    schema = _field(config, "responseSchema")
    return _lower_types(schema) if isinstance(schema, dict) else None


# The proto Schema behind responseSchema (OpenAPI's subset): any other name is refused;
# responseJsonSchema takes JSON Schema (additionalProperties, $ref, type lists) instead.
RESPONSE_SCHEMA_FIELDS = frozenset({
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties", "required",
    "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf", "propertyOrdering",
    "default", "items", "minimum", "maximum"})


def response_schema_problem(config: dict, where: str = "generation_config.response_schema") -> str | None:
    """Google's 400 for a responseSchema naming a field its proto lacks (None: it is good)."""
    schema = _field(config, "responseSchema") if where == "generation_config.response_schema" else config
    if not isinstance(schema, dict):
        return None
    for name, value in schema.items():
        camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)
        if camel not in RESPONSE_SCHEMA_FIELDS:
            return f'Invalid JSON payload received. Unknown name "{name}" at \'{where}\': Cannot find field.'
        if camel == "type" and not isinstance(value, str):
            return f"Invalid JSON payload received. Unknown name \"type\" at '{where}': Proto field is not repeating."
        inner = value.values() if camel == "properties" and isinstance(value, dict) else \
            value if camel == "anyOf" and isinstance(value, list) else [value] if camel == "items" else []
        for child in inner:
            problem = response_schema_problem(child, f"{where}.{name}")
            if problem:
                return problem
    return None


# Google's 400 (INVALID_ARGUMENT) for a turn of function calls answered by fewer (or more)
# function responses in the next turn, in its words (google-gemini/gemini-cli#4217, #16415).
UNMATCHED_RESPONSES = ("Please ensure that the number of function response parts is equal to the number of function "
                       "call parts of the function call turn.")


def function_response_problem(contents: list) -> str | None:
    """Google's refusal of a function call turn not answered part for part (None: each is)."""
    def count(content, name: str) -> int:
        parts = content.get("parts") if isinstance(content, dict) else None
        return sum(1 for p in parts or [] if isinstance(p, dict) and _field(p, name) is not None)

    for turn, after in zip(contents, contents[1:] + [None]):
        calls = count(turn, "functionCall")
        if calls and after is not None and count(after, "functionResponse") != calls:
            return UNMATCHED_RESPONSES
    return None


# Gemini's function names (Vertex AI v1 reference, FunctionDeclaration.name: "Must start with a
# letter or an underscore. Must be a-z, A-Z, 0-9, or contain underscores, dots and dashes, with a
# maximum length of 64"), refused in these words (google-gemini/gemini-cli#6704, #2966).
FUNCTION_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.\-]{0,63}$")
INVALID_FUNCTION_NAME = ("Invalid function name. Must start with a letter or an underscore. Must be alphameric "
                         "(a-z, A-Z, 0-9), underscores (_), dots (.) or dashes (-), with a maximum length of 64.")


def chat_problem(body: dict) -> str | None:
    """Gemini's refusal of a Chat Completions body sent to Vertex's OpenAI-compatible endpoint,
    which hands it to Gemini as one generateContent request: the tools become
    `tools[0].function_declarations`, an assistant's `tool_calls` a model turn of function
    calls and the `tool` messages after it one turn of function responses (None: it is good)."""
    tools = [t.get("function") for t in body.get("tools") or [] if isinstance(t, dict)]
    for i, function in enumerate(tools):
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not FUNCTION_NAME.match(name):
            return f"* GenerateContentRequest.tools[0].function_declarations[{i}].name: {INVALID_FUNCTION_NAME}"
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    for i, message in enumerate(messages):
        calls = message.get("tool_calls") if message.get("role") == "assistant" else None
        if not calls:
            continue
        responses = 0
        for reply in messages[i + 1:]:
            if reply.get("role") != "tool":
                break
            responses += 1
        if responses != len(calls):
            return UNMATCHED_RESPONSES
    return None


def _lower_types(schema):
    """responseSchema is OpenAPI's subset: types are upper case (OBJECT, STRING)."""
    if isinstance(schema, list):
        return [_lower_types(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {key: value.lower() if key == "type" and isinstance(value, str) else _lower_types(value)
            for key, value in schema.items()}


def gemini_prompt(model: str, body: dict, cache_read: bool = False) -> _Prompt:
    contents = [c for c in body.get("contents") or [] if isinstance(c, dict)]
    system = (body.get("systemInstruction") or body.get("system_instruction") or {}).get("parts")
    texts = _part_texts(system) + [t for c in contents for t in _part_texts(c.get("parts"))]
    last = next((c.get("parts") or [] for c in reversed(contents) if c.get("role") in ("user", "function", None)), [])
    # Proto JSON: every field may come camelCase or snake_case (litellm sends snake_case).
    results = [p for p in last if isinstance(p, dict) and ("functionResponse" in p or "function_response" in p)]
    declarations = [d for tool in body.get("tools") or [] for d in (tool.get("functionDeclarations")
                                                                     or tool.get("function_declarations") or [])]
    tools = [{"name": d.get("name"), "input_schema": d.get("parameters")} for d in declarations]
    calling = ((body.get("toolConfig") or body.get("tool_config") or {}).get("functionCallingConfig")
               or (body.get("toolConfig") or {}).get("function_calling_config") or {})
    allowed = calling.get("allowedFunctionNames") or calling.get("allowed_function_names") or []
    choice = "none" if calling.get("mode") == "NONE" else {"name": allowed[0]} if allowed else None
    config = body.get("generationConfig") or body.get("generation_config") or {}
    picked = _picked_tool({"tools": tools, "tool_choice": choice})
    return _Prompt(model=model, echo=" ".join(_part_texts(results or last))[:200], tool_result=bool(results),
                   latest=(_part_texts(last) or [""])[-1], answer_schema=answer_schema(config),
                   input_words=_input_words(texts, {"tools": tools}),
                   tool=(picked or {}).get("name"), tool_schema=(picked or {}).get("input_schema") or None,
                   stop=_stop_list(config.get("stopSequences") or config.get("stop_sequences")),
                   max_tokens=_int_or_none(config.get("maxOutputTokens") or config.get("max_output_tokens")),
                   cache="read" if cache_read or _field(body, "cachedContent") else None)


def usage_metadata(reply) -> dict:
    prompt = reply.prompt.input_words
    usage = {"promptTokenCount": prompt, "candidatesTokenCount": reply.output_tokens,
             "totalTokenCount": prompt + reply.output_tokens}
    if reply.prompt.cache:
        usage["cachedContentTokenCount"] = prompt // 2  # part of promptTokenCount, as Gemini counts it
    return usage


def _parts(reply) -> list[dict]:
    parts = []
    for block in reply.blocks:
        if block["type"] == "text" and block["text"]:
            parts.append({"text": block["text"]})
        elif block["type"] == "tool_use":
            parts.append({"functionCall": {"name": block["name"], "args": block["input"]}})
    return parts or [{"text": ""}]


def generate_response(reply) -> dict:
    return {"candidates": [{"content": {"role": "model", "parts": _parts(reply)},
                            "finishReason": FINISH[reply.stop_reason], "index": 0}],
            "usageMetadata": usage_metadata(reply), "modelVersion": reply.prompt.model, "responseId": reply.id}


def stream_responses(reply) -> list[dict]:
    chunks = []
    for part in _parts(reply):
        pieces = _pieces(part["text"]) if "text" in part and part["text"] else [None]
        for piece in pieces:
            content = {"text": piece} if piece is not None else part
            chunks.append({"candidates": [{"content": {"role": "model", "parts": [content]}, "index": 0}],
                           "modelVersion": reply.prompt.model, "responseId": reply.id})
    chunks[-1]["candidates"][0]["finishReason"] = FINISH[reply.stop_reason]
    chunks[-1]["usageMetadata"] = usage_metadata(reply)
    return chunks


def gemini_usage_reported(reply) -> dict:
    """What the fake told, in Anthropic's names (cached tokens are read from the cache)."""
    usage = usage_metadata(reply)
    cached = usage.get("cachedContentTokenCount", 0)
    return {"input_tokens": usage["promptTokenCount"] - cached, "output_tokens": usage["candidatesTokenCount"],
            "cache_read_input_tokens": cached}


class _GeminiHandler(ModelInPathHandler):
    server_version = "FakeGemini/1.0"

    def _serve(self, path: str, body: dict | None, headers: dict):
        query = parse_qs(urlsplit(self.path).query)
        name, _, action = unquote(path).rpartition(":")
        model = name.rpartition("/models/")[2] if "/models/" in name or name.startswith("models/") else ""
        if self.command != "POST" or not model or action not in ("generateContent", "streamGenerateContent",
                                                                 "countTokens"):
            return self._error(404, "NOT_FOUND", f"no method {self.command} {path}")
        fake: FakeGemini = self.server.fake
        fake._record(Recorded(self.command, self.path, headers, body, path_model=model))
        key = headers.get("x-goog-api-key") or (query.get("key") or [None])[0]
        if key != fake.api_key:
            return self._error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
        if body is None:
            return self._error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        stream = action == "streamGenerateContent"
        fault = fake._next_fault(model, stream)
        if fault and fault.action == "gemini_error":
            return self._error(**fault.args)
        if fault and fault.action == "reset":
            return self._reset()
        if action == "countTokens":
            request = body.get("generateContentRequest") or body
            return self._send_json(200, {"totalTokens": gemini_prompt(model, request).input_words})
        if stream and query.get("alt") != ["sse"]:
            return self._error(400, "INVALID_ARGUMENT", "the fake streams only with alt=sse")
        if not isinstance(body.get("contents"), list) or not body["contents"]:
            return self._error(400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified")
        problem = response_schema_problem(_field(body, "generationConfig") or {}) \
            or function_response_problem(body["contents"])
        if problem:
            return self._error(400, "INVALID_ARGUMENT", problem)
        prompt = gemini_prompt(model, body, fake.cache_read)
        window = fake.context_windows.get(model)
        if window is not None and prompt.input_words > window:
            # Gemini's refusal of a prompt over the model's input limit, in its words.
            return self._error(400, "INVALID_ARGUMENT", f"The input token count ({prompt.input_words}) exceeds "
                                                        f"the maximum number of tokens allowed ({window}).")
        reply = fake._reply(prompt, ANTHROPIC)
        fake._report(model, [{"usage": gemini_usage_reported(reply)}])
        if not stream:
            return self._send_json(200, generate_response(reply))
        frames = [b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n" for chunk in stream_responses(reply)]
        self._send_stream(frames, fault.args["after_events"] if fault and fault.action == "cut" else None)

    def _error(self, code: int, status: str, message: str):
        self._send_json(code, {"error": {"code": code, "message": message, "status": status}})


class FakeGemini(FakeUpstream):
    """The Gemini API on 127.0.0.1; `url` is the provider entry's api_base."""

    handler_class = _GeminiHandler

    def __init__(self, *, api_key: str, **server) -> None:
        super().__init__(**server)
        self.api_key = api_key
        self.cache_read = False  # True: every prompt is half read from Gemini's implicit cache

    def error(self, model: str, status: str, message: str | None = None, *, times: int | None = 1) -> None:
        """Answer the next `times` calls with Google's error (RESOURCE_EXHAUSTED, UNAVAILABLE, ...)."""
        args = {"code": ERROR_STATUS[status], "status": status, "message": message or f"fake {status}"}
        self._queue(_Fault(model, "gemini_error", times, args))
