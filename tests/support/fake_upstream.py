"""Deterministic fake Anthropic / OpenAI provider served over real HTTP.

Used by the gateway's end-to-end tests (via litellm), the local dev stack and the benchmark.

    with FakeUpstream() as fake:
        ...point the gateway's api_base at fake.url...
        fake.fail("claude-x", status=529, headers={"retry-after": "7"})
        assert fake.last("/v1/messages").body["model"] == "claude-x"

Standalone: ``python -m tests.support.fake_upstream --port 8089`` prints its URL and serves forever;
out-of-process callers steer it with POST /_fake/faults, POST /_fake/clear, GET /_fake/requests.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import re
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
import zlib
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from tests.support import anthropic_rules, openai_rules

ANTHROPIC, OPENAI = "anthropic", "openai"
MAX_ECHO = 200
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
               500: "api_error", 503: "api_error", 529: "overloaded_error"}
OPENAI_ERROR_CODES = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}
FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}
GARBAGE_FRAMES = {ANTHROPIC: b"event: content_block_delta\ndata: {this is not json\n\n",
                  OPENAI: b"data: {this is not json\n\n"}
MALFORMED_JSON = b'{"id": "broken", "content": ['
LINGER_RST = struct.pack("ii", 1, 0)
STREAM_ONLY = ("cut", "pace", "stall", "stream_exception")  # faults that only a stream can have
ACTIONS = {"fail": "fail", "reset": "reset_connection", "delay": "delay", "cut": "cut_stream",
           "malformed": "malformed", "pace": "pace_stream", "stall": "stall_stream", "refuse": "refuse"}


# --------------------------------------------------------------------------- records and faults

@dataclass
class Recorded:
    """One request exactly as received, so tests can assert on what the gateway really sent."""

    method: str
    path: str
    headers: dict
    body: dict | None
    path_model: str | None = None  # providers that name the model in the URL (Bedrock, Gemini)
    raw_headers: list = field(default_factory=list)  # (name, value) as sent: order and case kept

    @property
    def model(self) -> str | None:
        """The model the request is for, the key faults and count() match on."""
        return self.path_model or (self.body.get("model") if self.body else None)


@dataclass
class _Fault:
    """A queued misbehaviour for one model ("*" = any); times=None means until cleared."""

    model: str
    action: str
    times: int | None
    args: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- request parsing

@dataclass
class _Prompt:
    """Dialect-neutral view of a request: everything the deterministic reply depends on."""

    model: str
    echo: str
    tool_result: bool
    input_words: int
    tool: str | None
    stop: list[str]
    max_tokens: int | None
    thinking: bool = False
    cache: str | None = None  # "creation" | "read" | None
    tool_schema: dict | None = None  # the picked tool's input schema
    latest: str = ""  # the last text of the last user turn (a client puts its prompt last)
    answer_schema: dict | None = None  # a JSON-schema output format the answer must satisfy
    web_searches: int = 0
    cached_tokens: int = 0  # OpenAI: the part of the prompt its prefix cache served
    tool_input: dict | None = None  # a scripted call's exact input (FakeUpstream.script_tool_call)


def _words(text: str) -> int:
    """Whitespace word count: the fake's stand-in for a tokenizer."""
    return len(text.split())


def _texts(content) -> list[str]:
    """Text inside a content value: str, text blocks / parts, and tool_result contents."""
    if isinstance(content, str):
        return [content]
    out: list[str] = []
    for block in content if isinstance(content, list) else []:
        if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
            out.append(block["text"])
        elif isinstance(block, dict) and block.get("type") == "tool_result":
            out.extend(_texts(block.get("content")))
    return out


def _input_words(texts: list[str], body: dict) -> int:
    """Prompt size: words of all text plus 10 per tool definition, never zero."""
    return max(1, sum(map(_words, texts)) + 10 * len(body.get("tools") or []))


# What media and server tools cost at worst, as Anthropic bills them: an image scaled to
# 1092x1092 (~1,590 tokens), a document the fake cannot read taken as a 100-page PDF
# (~1,500 tokens a page), each web search up to its max_uses, its results read as input.
IMAGE_TOKENS, UNREAD_DOCUMENT_TOKENS, SEARCH_RESULT_TOKENS = 1_590, 150_000, 2_000


def _media_tokens(value) -> int:
    """Tokens of every image and unreadable document anywhere in a Messages request."""
    if isinstance(value, list):
        return sum(map(_media_tokens, value))
    if not isinstance(value, dict):
        return 0
    source = value.get("source") if isinstance(value.get("source"), dict) else {}
    if value.get("type") == "image":
        return IMAGE_TOKENS
    if value.get("type") == "document" and source.get("type") not in ("text", "content"):
        return UNREAD_DOCUMENT_TOKENS
    return sum(map(_media_tokens, value.values()))


def _web_searches(body: dict) -> int:
    """A web search tool is used as often as it may be (max_uses, else once)."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and str(t.get("type", "")).startswith("web_search")]
    return sum(_int_or_none(t.get("max_uses")) or 1 for t in tools)


# A request carrying more tools than this is an agent's toolbox (Claude Code sends 24): a model
# calls one of those only when the prompt names it, so `claude -p "hi"` answers in text.
MAX_UNNAMED_TOOLS = 4


def _tool_name(tool: dict) -> str | None:
    return tool.get("name") or (tool.get("function") or {}).get("name")


def _tool_schema(tool: dict) -> dict:
    schema = tool.get("input_schema") or (tool.get("function") or {}).get("parameters")
    return schema if isinstance(schema, dict) else {}


def _picked_tool(body: dict, prompt: str = "") -> dict | None:
    """The tool a tool-calling reply should use: forced by tool_choice, else the one the
    prompt names, else the first of a few."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and _tool_name(t)]
    choice = body.get("tool_choice")
    if choice == "none" or (isinstance(choice, dict) and choice.get("type") == "none"):
        return None
    if isinstance(choice, dict):
        forced = choice.get("name") or (choice.get("function") or {}).get("name")
        if forced:
            return next((t for t in tools if _tool_name(t) == forced), {"name": forced})
    words = set(re.findall(r"[\w-]+", prompt))
    named = next((t for t in tools if _tool_name(t) in words), None)
    return named or (tools[0] if 0 < len(tools) <= MAX_UNNAMED_TOOLS else None)


def _answer_schema(body: dict) -> dict | None:
    """The JSON schema the answer must satisfy: Anthropic's output_config.format or beta
    output_format, OpenAI's response_format."""
    config = body.get("output_config") if isinstance(body.get("output_config"), dict) else {}
    for form in (body.get("output_format"), config.get("format")):
        if isinstance(form, dict) and form.get("type") == "json_schema" and isinstance(form.get("schema"), dict):
            return form["schema"]
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return schema if isinstance(schema, dict) else None
    return None


_PATH = re.compile(r"(?<!\S)/[\w.~/-]+")


def example(schema: dict, text: str, name: str = "", defs: dict | None = None):
    """A value that satisfies `schema` (required properties, types, enums), built from the
    prompt's text: strings are the text, or a path in it for a property named like a path."""
    defs = defs if defs is not None else {**schema.get("$defs", {}), **schema.get("definitions", {})}
    if "$ref" in schema:
        return example(defs.get(schema["$ref"].rsplit("/", 1)[-1], {}), text, name, defs)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
            return example(options[0], text, name, defs)
    kind = schema.get("type")
    kind = next((k for k in kind if k != "null"), "null") if isinstance(kind, list) else kind
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        return {key: example(properties.get(key) or {}, text, key, defs) for key in schema.get("required") or []}
    if kind == "array":
        return [example(schema.get("items") or {}, text, name, defs) for _ in range(schema.get("minItems") or 0)]
    if kind in ("integer", "number"):
        value = max(1, schema.get("minimum") or 0)
        return value if kind == "integer" else float(value)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    path = _PATH.search(text) if re.search(r"path|file|dir", name, re.I) else None
    value = path.group(0) if path else text
    return value[:schema["maxLength"]] if isinstance(schema.get("maxLength"), int) else value


def _tool_input(schema: dict | None, text: str) -> dict:
    """The tool call's input: its required fields, or `query` for a tool that requires none."""
    schema = schema or {}
    if schema.get("required"):
        return example(schema, text)
    properties = schema.get("properties") or {}
    return {"query": text} if not properties or "query" in properties else {}


def _has_cache_control(obj) -> bool:
    """Whether any nested block carries cache_control (Anthropic prompt caching)."""
    if isinstance(obj, dict):
        return "cache_control" in obj or any(_has_cache_control(v) for v in obj.values())
    return isinstance(obj, list) and any(_has_cache_control(v) for v in obj)


def _stop_list(value) -> list[str]:
    """Normalise stop / stop_sequences (str, list or null) to non-empty strings."""
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return [s for s in values if isinstance(s, str) and s]


def _int_or_none(value) -> int | None:
    """Accept only real ints as limits, so a stray bool or string never truncates output."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _anthropic_prompt(body: dict, cache_read: bool = False) -> _Prompt:
    """Read a Messages request; a last user turn holding tool_result blocks echoes the results."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    texts = _texts(body.get("system")) + [t for m in messages for t in _texts(m.get("content"))]
    content = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), None)
    results = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"] \
        if isinstance(content, list) else []
    cached = any(_has_cache_control(body.get(k)) for k in ("system", "messages", "tools"))
    thinking = body.get("thinking")
    echo = " ".join(_texts(results or content))[:MAX_ECHO]
    latest = (_texts(content) or [""])[-1]
    tool = _picked_tool(body, latest)
    searches = _web_searches(body)
    input_words = _input_words(texts, body) + _media_tokens(body.get("messages")) + searches * SEARCH_RESULT_TOKENS
    return _Prompt(
        model=str(body.get("model", "")), echo=echo, latest=latest,
        tool_result=bool(results), input_words=input_words, web_searches=searches,
        tool=tool and _tool_name(tool), tool_schema=tool and _tool_schema(tool), answer_schema=_answer_schema(body),
        stop=_stop_list(body.get("stop_sequences")), max_tokens=_int_or_none(body.get("max_tokens")),
        thinking=isinstance(thinking, dict) and thinking.get("type") == "enabled",
        cache=("read" if cache_read else "creation") if cached else None)


def _openai_prompt(body: dict) -> _Prompt:
    """Read a Chat Completions request; trailing role=tool messages count as tool results."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    texts = [t for m in messages for t in _texts(m.get("content"))]
    last = max((i for i, m in enumerate(messages) if m.get("role") in ("user", "tool")), default=-1)
    tool_result = last >= 0 and messages[last].get("role") == "tool"
    first = last
    while tool_result and first > 0 and messages[first - 1].get("role") == "tool":
        first -= 1  # parallel tool calls: echo every trailing tool message
    echo = " ".join(t for m in messages[first:last + 1] for t in _texts(m.get("content"))) if last >= 0 else ""
    limit = _int_or_none(body.get("max_completion_tokens"))
    latest = (_texts(messages[last].get("content")) or [""])[-1] if last >= 0 else ""
    tool = _picked_tool(body, latest)
    return _Prompt(
        model=str(body.get("model", "")), echo=echo[:MAX_ECHO], latest=latest,
        tool_result=tool_result, tool_schema=tool and _tool_schema(tool), answer_schema=_answer_schema(body),
        input_words=_input_words(texts, body), tool=tool and _tool_name(tool), stop=_stop_list(body.get("stop")),
        max_tokens=limit if limit is not None else _int_or_none(body.get("max_tokens")))


# --------------------------------------------------------------------------- the deterministic reply

@dataclass
class _Reply:
    """The answer as Anthropic-shaped content blocks plus accounting; both dialects render it."""

    id: str
    prompt: _Prompt
    blocks: list[dict]
    stop_reason: str
    stop_sequence: str | None
    output_tokens: int
    stop_details: dict | None = None


def _declined(reply: _Reply, category: str | None, partial: str | None) -> None:
    """Turn the reply into Anthropic's refusal: `stop_reason: "refusal"` with `stop_details`
    `{type: "refusal", category, explanation}` (anthropic SDK BetaRefusalStopDetails), after
    no content or after `partial` text already written."""
    reply.blocks = [{"type": "text", "text": partial}] if partial else []
    reply.stop_reason, reply.stop_sequence = "refusal", None
    reply.stop_details = {"type": "refusal", "category": category,
                          "explanation": "The fake model declined this request."}
    reply.output_tokens = max(1, _words(partial or ""))


def _tool_json(block: dict) -> str:
    """Canonical JSON of a tool input, shared by word counts, partial_json and OpenAI arguments."""
    return json.dumps(block["input"])


def _block_words(block: dict) -> int:
    """Output words of one block: text, thinking, or the JSON of a tool input."""
    return _words(_tool_json(block)) if block["type"] == "tool_use" else _words(block[block["type"]])


def _signature(thinking: str) -> str:
    """Stable fake signature, so tests can check thinking blocks are passed back untouched."""
    return "sig_fake_" + hashlib.sha256(thinking.encode()).hexdigest()[:32]


def _cut_at_stop(text: str, stops: list[str]) -> tuple[str, str | None]:
    """Cut text before the earliest stop sequence it contains, as a real model would halt."""
    hits = [(text.find(s), s) for s in stops if s in text]
    if not hits:
        return text, None
    pos, seq = min(hits, key=lambda hit: hit[0])
    return text[:pos], seq


def _truncate(blocks: list[dict], limit: int | None) -> tuple[list[dict], bool]:
    """Enforce max_tokens in words; text and thinking are cut mid-way, tool calls dropped whole."""
    if limit is None:
        return blocks, False
    out, left = [], limit
    for block in blocks:
        words = _block_words(block)
        if words <= left:
            out.append(block)
            left -= words
            continue
        if block["type"] != "tool_use" and left > 0:
            key = block["type"]
            out.append({**block, key: "".join(re.findall(r"\s*\S+", block[key])[:left])})
        return out, True
    return out, False


def _build_reply(p: _Prompt, reply_id: str, new_tool_id: Callable[[], str]) -> _Reply:
    """Compose thinking, text and tool call, then apply stop sequences and max_tokens."""
    blocks: list[dict] = []
    if p.thinking:
        blocks.append({"type": "thinking", "thinking": f"Let me think about: {p.echo}", "signature": ""})
    call = None if p.tool_result else p.tool
    text = f"Tool said: {p.echo}" if p.tool_result else f"Hello from {p.model}: {p.echo}"
    if p.answer_schema is not None and not call:
        text = json.dumps(example(p.answer_schema, p.latest or p.echo))
    text = f"Calling {call}." if call else text
    text, seq = _cut_at_stop(text, p.stop)
    blocks.append({"type": "text", "text": text})
    if call and not seq:
        blocks.append({"type": "tool_use", "id": new_tool_id(), "name": call,
                       "input": p.tool_input if p.tool_input is not None else
                       _tool_input(p.tool_schema, p.latest or p.echo)})
    reason = "stop_sequence" if seq else "tool_use" if call else "end_turn"
    blocks, truncated = _truncate(blocks, p.max_tokens)
    if truncated:
        reason, seq = "max_tokens", None
    blocks = [b for b in blocks if b["type"] != "text" or b["text"]] or [{"type": "text", "text": ""}]
    for block in blocks:
        if block["type"] == "thinking":
            block["signature"] = _signature(block["thinking"])
    return _Reply(reply_id, p, blocks, reason, seq, max(1, sum(map(_block_words, blocks))))


def _pieces(text: str, per: int = 3) -> list[str]:
    """Split text into few-word deltas whose concatenation is exactly the text."""
    tokens = re.findall(r"\s*\S+|\s+", text)
    return ["".join(tokens[i:i + per]) for i in range(0, len(tokens), per)]


def _fragments(text: str, parts: int = 3) -> list[str]:
    """Split JSON into >= 2 fragments, like Anthropic's input_json_delta stream."""
    step = max(1, -(-len(text) // parts))
    return [text[i:i + step] for i in range(0, len(text), step)]


def _sse(data, event: str | None = None) -> bytes:
    """One SSE frame; Anthropic names its events, OpenAI sends bare data lines."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return (f"event: {event}\n" if event else "").encode() + f"data: {payload}\n\n".encode()


# --------------------------------------------------------------------------- reported usage

USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def _frame_json(frame: bytes):
    """The JSON of one SSE frame (None for [DONE] or garbage)."""
    for line in frame.decode(errors="replace").splitlines():
        if line.startswith("data: "):
            try:
                return json.loads(line[6:])
            except ValueError:
                return None
    return None


def reported_usage(payloads: list) -> dict:
    """The usage a client was told, in Anthropic's terms, from the payloads it received.

    Later figures replace earlier ones (Anthropic's message_delta is cumulative);
    OpenAI's prompt_tokens/completion_tokens map to input/output."""
    usage = dict.fromkeys(USAGE_FIELDS, 0)
    for payload in payloads:
        if not isinstance(payload, dict):
            continue
        found = payload.get("usage") or (payload.get("message") or {}).get("usage")
        if not found:
            continue
        if "prompt_tokens" in found:
            cached = (found.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
            found = {"input_tokens": found["prompt_tokens"] - cached, "output_tokens": found["completion_tokens"],
                     "cache_read_input_tokens": cached}
        usage.update({k: v for k, v in found.items() if k in USAGE_FIELDS})
    return usage


# --------------------------------------------------------------------------- Anthropic wire format

def _anthropic_usage(r: _Reply, output_tokens: int) -> dict:
    """Usage with half the prompt reported as cache creation/read when cache_control is present."""
    half = r.prompt.input_words // 2 if r.prompt.cache else 0
    usage = {"input_tokens": r.prompt.input_words - half, "output_tokens": output_tokens,
             "cache_creation_input_tokens": half if r.prompt.cache == "creation" else 0,
             "cache_read_input_tokens": half if r.prompt.cache == "read" else 0}
    if r.prompt.web_searches:
        usage["server_tool_use"] = {"web_search_requests": r.prompt.web_searches}
    return usage


def _anthropic_message(r: _Reply) -> dict:
    """Non-streaming Messages response body."""
    return {"id": r.id, "type": "message", "role": "assistant", "model": r.prompt.model,
            "content": r.blocks, "stop_reason": r.stop_reason, "stop_sequence": r.stop_sequence,
            **({"stop_details": r.stop_details} if r.stop_details else {}),
            "usage": _anthropic_usage(r, r.output_tokens)}


def _empty_block(block: dict) -> dict:
    """The content_block_start payload: the block with its content still empty."""
    if block["type"] == "tool_use":
        return {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
    if block["type"] == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}
    return {"type": "text", "text": ""}


def _block_deltas(block: dict) -> list[dict]:
    """The content_block_delta payloads that rebuild one block."""
    if block["type"] == "tool_use":
        return [{"type": "input_json_delta", "partial_json": f} for f in _fragments(_tool_json(block))]
    if block["type"] == "thinking":
        return [{"type": "thinking_delta", "thinking": p} for p in _pieces(block["thinking"])] + \
            [{"type": "signature_delta", "signature": block["signature"]}]
    return [{"type": "text_delta", "text": p} for p in _pieces(block["text"])]


def _anthropic_frames(r: _Reply) -> list[bytes]:
    """The full Messages SSE stream, in the exact event order Anthropic uses."""
    start = {**_anthropic_message(r), "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": _anthropic_usage(r, 1)}
    frames = [_sse({"type": "message_start", "message": start}, "message_start"),
              _sse({"type": "ping"}, "ping")]
    for i, block in enumerate(r.blocks):
        frames.append(_sse({"type": "content_block_start", "index": i, "content_block": _empty_block(block)},
                           "content_block_start"))
        frames += [_sse({"type": "content_block_delta", "index": i, "delta": d}, "content_block_delta")
                   for d in _block_deltas(block)]
        frames.append(_sse({"type": "content_block_stop", "index": i}, "content_block_stop"))
    frames.append(_sse({"type": "message_delta", "delta": {"stop_reason": r.stop_reason,
                        "stop_sequence": r.stop_sequence,
                        **({"stop_details": r.stop_details} if r.stop_details else {})}, "usage": {
                            "output_tokens": r.output_tokens,
                            **({"server_tool_use": {"web_search_requests": r.prompt.web_searches}}
                               if r.prompt.web_searches else {})}},
                       "message_delta"))
    frames.append(_sse({"type": "message_stop"}, "message_stop"))
    return frames


# --------------------------------------------------------------------------- OpenAI wire format

# OpenAI refuses a `user` longer than this (Claude Code's metadata.user_id is ~150 characters).
OPENAI_USER_MAX = 64
# OpenAI caches prompt prefixes of 1,024 tokens or more, and reports hits in steps of 128.
OPENAI_CACHE_MINIMUM, OPENAI_CACHE_STEP = 1024, 128


def openai_prefix(body: dict) -> tuple[str, int]:
    """What OpenAI's prompt cache keys on (tools and every message but the newest) and its size."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)][:-1]
    key = json.dumps([body.get("tools"), messages], sort_keys=True)
    return key, _input_words([t for m in messages for t in _texts(m.get("content"))], body)


def _openai_usage(r: _Reply) -> dict:
    """Chat Completions usage block; a prefix seen before is reported as cached tokens."""
    prompt = r.prompt.input_words
    return {"prompt_tokens": prompt, "completion_tokens": r.output_tokens, "total_tokens": prompt + r.output_tokens,
            "prompt_tokens_details": {"cached_tokens": r.prompt.cached_tokens, "audio_tokens": 0}}


def _openai_call(block: dict) -> dict:
    """A tool_use block as an OpenAI tool_calls entry (with a provider's extras, such as
    Gemini's thought signature, kept on the block by the fake that adds them)."""
    function = {"name": block["name"], "arguments": _tool_json(block)}
    return {"id": block["id"], "type": "function", "function": function, **block.get("openai_extra", {})}


def _openai_completion(r: _Reply) -> dict:
    """Non-streaming Chat Completions response body."""
    message = {"role": "assistant", "content": "".join(b["text"] for b in r.blocks if b["type"] == "text")}
    calls = [_openai_call(b) for b in r.blocks if b["type"] == "tool_use"]
    if calls:
        message["tool_calls"] = calls
    return {"id": r.id, "object": "chat.completion", "created": int(time.time()), "model": r.prompt.model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": FINISH_REASONS[r.stop_reason]}],
            "usage": _openai_usage(r)}


def _openai_frames(r: _Reply, include_usage: bool) -> list[bytes]:
    """The Chat Completions SSE stream: role, content, tool call deltas, finish, usage, [DONE]."""
    base = {"id": r.id, "object": "chat.completion.chunk", "created": int(time.time()), "model": r.prompt.model}

    def chunk(delta: dict, finish: str | None = None) -> bytes:
        body = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        return _sse({**body, "usage": None} if include_usage else body)

    frames = [chunk({"role": "assistant", "content": ""})]
    text = "".join(b["text"] for b in r.blocks if b["type"] == "text")
    frames += [chunk({"content": p}) for p in _pieces(text)]
    for index, block in enumerate(b for b in r.blocks if b["type"] == "tool_use"):
        head = {**_openai_call(block), "index": index}
        head["function"] = {"name": block["name"], "arguments": ""}
        frames.append(chunk({"tool_calls": [head]}))
        frames += [chunk({"tool_calls": [{"index": index, "function": {"arguments": f}}]})
                   for f in _fragments(_tool_json(block))]
    frames.append(chunk({}, FINISH_REASONS[r.stop_reason]))
    if include_usage:
        frames.append(_sse({**base, "choices": [], "usage": _openai_usage(r)}))
    return frames + [_sse("[DONE]")]


def _error_body(dialect: str, status: int, message: str = "fake failure") -> dict:
    """An error payload in the shape the dialect's SDKs (and litellm) parse."""
    if dialect == ANTHROPIC:
        kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
    kind = "server_error" if status >= 500 else ERROR_TYPES.get(status, "invalid_request_error")
    return {"error": {"message": message, "type": kind, "code": OPENAI_ERROR_CODES.get(status)}}


# --------------------------------------------------------------------------- HTTP plumbing

def _header_refusal(dialect: str, headers: dict, keys=None) -> tuple[int, dict] | None:
    """(status, body) of the provider's refusal of a call's credentials or version headers;
    `keys`: the credentials each dialect's provider issued (None: any non-empty one)."""
    issued = None if keys is None else keys.get(dialect, ())
    if dialect == OPENAI:
        missing = openai_rules.credentials_problem(headers, issued)
        return (401, missing) if missing else None
    problem = anthropic_rules.header_problem(headers, issued)
    return (problem[0], _error_body(ANTHROPIC, *problem)) if problem else None


def _json_object(raw: bytes) -> dict | None:
    """Parse a request body; anything but a JSON object is recorded as None."""
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class _Handler(BaseHTTPRequestHandler):
    """Routes each request on a keep-alive connection; every body has Content-Length or is chunked."""

    protocol_version = "HTTP/1.1"
    server_version = "FakeUpstream/1.0"
    _sent = False
    _gzip = False  # this response is gzip-encoded (fake.gzip on and the client accepts it)

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        """Silenced: per-request logging floods test output and slows the benchmark."""

    def do_GET(self):
        """All methods share one dispatcher so unknown routes get a uniform 404."""
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _dispatch(self):
        """Run one request; client disconnects just end the connection, bugs become a 500."""
        self._sent = False
        self._gzip = False
        try:
            self._route(self.path.split("?", 1)[0], _json_object(self._read_body()))
        except OSError:
            self.close_connection = True
        except Exception:
            traceback.print_exc()
            self.close_connection = True
            if not self._sent:
                with suppress(OSError):
                    self._send_json(500, _error_body(ANTHROPIC, 500, "fake upstream crashed"))

    def _route(self, path: str, body: dict | None):
        """Record the request (unless it is a control call) and pick the handler by path suffix."""
        if path.startswith("/_fake/"):
            return self._control(path, body)
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.fake._record(Recorded(self.command, self.path, headers, body,
                                          raw_headers=list(self.headers.items())))
        self._gzip = self.server.fake.gzip and "gzip" in headers.get("accept-encoding", "")
        dialect = OPENAI if path.endswith("/chat/completions") else ANTHROPIC
        llm_route = self.command == "POST" and path.endswith(("/messages", "/count_tokens", "/chat/completions"))
        if self.command == "GET" and path == "/health":
            self._send_json(200, {"status": "ok"})
        elif not llm_route:
            self._send_json(404, {"error": {"type": "not_found_error", "message": f"no route {self.command} {path}"}})
        elif refusal := _header_refusal(dialect, headers, self.server.fake.keys):
            self._send_json(*refusal)
        elif body is None:
            self._send_json(400, _error_body(dialect, 400, "request body must be a JSON object"))
        elif path.endswith("/count_tokens"):
            self._send_json(200, {"input_tokens": _anthropic_prompt(body).input_words})
        else:
            self._complete(dialect, body)

    def _read_body(self) -> bytes:
        """Request body via Content-Length, or chunked transfer-encoding if the client used it."""
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length > 0 else b""
        parts = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            parts.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        return b"".join(parts)

    def _complete(self, dialect: str, body: dict):
        """Serve one Messages / Chat Completions call, applying delay and any queued fault."""
        model, stream = str(body.get("model", "")), bool(body.get("stream"))
        fault = self.server.fake._next_fault(model, stream)
        action = fault.action if fault else None
        if action == "fail":
            return self._send_failure(dialect, **fault.args)
        if action == "reset":
            return self._reset()
        if action == "malformed" and (fault.args["kind"] == "json" or not stream):
            return self._send_raw(200, "application/json", MALFORMED_JSON)
        cache_read = self.headers.get("x-fake-cache", "").lower() == "read"
        prompt = _anthropic_prompt(body, cache_read) if dialect == ANTHROPIC else _openai_prompt(body)
        if dialect == OPENAI:
            prompt.cached_tokens = self.server.fake._cached_prefix(body)
        self.server.fake._apply_script(prompt, body)
        reply = self.server.fake._reply(prompt, dialect)
        if action == "refuse" and dialect == ANTHROPIC:
            _declined(reply, **fault.args)
        problem = self.server.fake.request_problem(body) if dialect == OPENAI else \
            anthropic_rules.request_problem(body, self.headers.get("anthropic-beta"))
        if dialect == ANTHROPIC and not problem:
            problem = anthropic_rules.prompt_too_long(prompt.input_words, self.headers.get("anthropic-beta"))
        if problem:
            return self._send_failure(dialect, 400, _error_body(dialect, 400, problem))
        if dialect == OPENAI:
            too_long = self.server.fake.context_problem(prompt)
            if too_long:
                return self._send_failure(dialect, 400, too_long)
            extra = self.server.fake.tool_call_extra(prompt.model)
            for block in reply.blocks if extra else ():
                if block["type"] == "tool_use":
                    block["openai_extra"] = extra
        if not stream:
            payload = (_anthropic_message if dialect == ANTHROPIC else _openai_completion)(reply)
            self.server.fake._report(model, [payload])
            return self._send_json(200, payload)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        frames = _anthropic_frames(reply) if dialect == ANTHROPIC else _openai_frames(reply, include_usage)
        if action == "malformed":
            frames.insert(len(frames) // 2, GARBAGE_FRAMES[dialect])
        cut = fault.args["after_events"] if action == "cut" else None
        self.server.fake._report(model, [_frame_json(frame) for frame in frames[:cut]])
        stall = (fault.args["after_events"], fault.args["seconds"]) if action == "stall" else None
        self._send_stream(frames, cut, fault.args["seconds"] if action == "pace" else 0.0, stall)

    def _control(self, path: str, body: dict | None):
        """Out-of-process control: queue faults, clear state, list recorded requests."""
        if self.command == "GET" and path == "/_fake/requests":
            return self._send_json(200, [asdict(r) for r in self.server.fake.snapshot()])
        if self.command == "POST" and path == "/_fake/clear":
            self.server.fake.clear()
            self.server.fake.clear_faults()
            return self._send_json(200, {"ok": True})
        if self.command == "POST" and path == "/_fake/faults":
            try:
                self.server.fake.add_fault(**(body or {}))
            except (TypeError, ValueError, KeyError) as exc:
                return self._send_json(400, {"error": {"type": "invalid_request_error", "message": str(exc)}})
            return self._send_json(200, {"ok": True})
        self._send_json(404, {"error": {"type": "not_found_error", "message": f"no control route {path}"}})

    def _begin(self, status: int, headers: dict):
        """Status line and headers; marks the response as started so errors don't double-send."""
        self._sent = True
        self.send_response(status)
        for name, value in {**self.server.fake.response_headers, **headers}.items():
            self.send_header(name, str(value))
        self.end_headers()

    def _send_raw(self, status: int, content_type: str, data: bytes, headers: dict | None = None):
        """A complete body with Content-Length, keeping the connection reusable."""
        if self._gzip:
            data, headers = zlib.compress(data, wbits=31), {**(headers or {}), "Content-Encoding": "gzip"}
        self._begin(status, {"Content-Type": content_type, "Content-Length": len(data), **(headers or {})})
        self.wfile.write(data)

    def _send_json(self, status: int, obj, headers: dict | None = None):
        """A JSON body with Content-Length."""
        self._send_raw(status, "application/json", json.dumps(obj).encode(), headers)

    def _send_failure(self, dialect: str, status: int, body=None, headers=None):
        """An injected HTTP error: the dialect's error shape unless a custom body was given."""
        payload = _error_body(dialect, status) if body is None else body
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self._send_raw(status, "application/json", data, headers)

    def _send_stream(self, frames: list[bytes], cut_after: int | None = None, pace: float = 0.0,
                     stall: tuple[int, float] | None = None):
        """SSE over chunked encoding (keeps keep-alive); with cut_after, RST after that many events;
        with stall (events, seconds), silence for that long after that many events."""
        self._begin(200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                          "Transfer-Encoding": "chunked", **({"Content-Encoding": "gzip"} if self._gzip else {})})
        packer = zlib.compressobj(wbits=31) if self._gzip else None
        if packer:  # each event flushed on its own, as a compressing proxy in front of an SSE server does
            frames = [packer.compress(f) + packer.flush(zlib.Z_SYNC_FLUSH) for f in frames]
            frames[-1] += packer.flush()
        for i, frame in enumerate(frames):
            if i == cut_after:
                return self._reset()
            if stall and i == stall[0]:
                self.wfile.flush()
                time.sleep(stall[1])
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            if pace:
                self.wfile.flush()
                time.sleep(pace)
        if cut_after is not None:
            return self._reset()
        self.wfile.write(b"0\r\n\r\n")

    def _reset(self):
        """Abort with a TCP RST (SO_LINGER 0) so the client sees a transport error, not a response."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
        self.rfile.close()  # drop makefile()'s reference, or close() below would not really close
        self.connection.close()


class ModelInPathHandler(_Handler):
    """Base of the fakes whose provider names the model in the URL (Bedrock, Gemini, Azure):
    the control and health routes are shared; `_serve(path, body, headers)` is the provider's."""

    def _route(self, path: str, body: dict | None):
        if path.startswith("/_fake/"):
            return self._control(path, body)
        if self.command == "GET" and path == "/health":
            return self._send_json(200, {"status": "ok"})
        return self._serve(path, body, {name.lower(): value for name, value in self.headers.items()})

    def _serve(self, path: str, body: dict | None, headers: dict):
        raise NotImplementedError


class _Server(ThreadingHTTPServer):
    """Threaded server tuned for many short keep-alive connections from tests and benchmarks."""

    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address, fake: FakeUpstream):
        self.fake = fake
        self.open_sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()
        super().__init__(address, fake.handler_class)

    def server_bind(self):
        """Skip HTTPServer's getfqdn() reverse lookup, which can stall startup for seconds."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def get_request(self):
        """Disable Nagle on each accepted socket; otherwise small writes wait ~40 ms for ACKs."""
        sock, addr = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._sockets_lock:
            self.open_sockets.add(sock)
        return sock, addr

    def shutdown_request(self, request):
        """Forget a finished connection before closing it."""
        with self._sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def close_open_sockets(self):
        """Wake idle keep-alive handlers on stop() so clients don't reuse a dead server's sockets."""
        with self._sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request, client_address):
        """Client disconnects are routine in fault tests; only report real bugs."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


# --------------------------------------------------------------------------- public API

class FakeUpstream:
    """A fake LLM provider on 127.0.0.1 with request recording and per-model fault injection."""

    handler_class: type[BaseHTTPRequestHandler] = _Handler  # another provider's wire format: a subclass

    def __init__(self, host: str = "127.0.0.1", port: int = 0, keys: dict[str, set[str]] | None = None):
        self.host, self.port = host, port
        # The credentials each dialect's provider issued ({ANTHROPIC: {...}, OPENAI: {...}}): any
        # other is a 401 as the real API answers it. None: any non-empty credential is taken.
        self.keys = keys
        self.requests: list[Recorded] = []
        self.reported: list[tuple[str, dict]] = []  # (model, usage the client was sent)
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._delays: list[_Fault] = []
        self._scripts: list[list] = []  # [tool name, input, turns left]: script_tool_call
        self._reply_ids = itertools.count(1)
        self._tool_ids = itertools.count(1)
        self._prefixes: set[str] = set()  # OpenAI prompt prefixes seen: its cache
        self._server: _Server | None = None
        # Compress every response whose request accepts gzip (httpx's default does), as many providers do.
        self.gzip = False
        # Context windows by model name, in the fake's tokens: a longer prompt is refused as the provider does.
        self.context_windows: dict[str, int] = {}
        # Headers on every response (the identity and quota headers a provider's account carries).
        self.response_headers: dict[str, str] = {}
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> FakeUpstream:
        """Bind (port 0 = ephemeral) and serve from a daemon thread; returns self for chaining."""
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-upstream-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, kick idle keep-alive connections and release the port; idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_open_sockets()
        server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL to use as the provider's api_base."""
        return f"http://{self.host}:{self.port}"

    # recording
    def _record(self, request: Recorded) -> None:
        """Append under the lock; handlers run on many threads."""
        with self._lock:
            self.requests.append(request)

    def snapshot(self) -> list[Recorded]:
        """A consistent copy of the recorded requests."""
        with self._lock:
            return list(self.requests)

    def last(self, path_suffix: str | None = None) -> Recorded | None:
        """Most recent request, optionally only those whose path (sans query) ends with the suffix."""
        for request in reversed(self.snapshot()):
            if path_suffix is None or request.path.split("?", 1)[0].endswith(path_suffix):
                return request
        return None

    def count(self, model: str | None = None) -> int:
        """Number of recorded requests, or of those whose body names `model`."""
        requests = self.snapshot()
        return len(requests) if model is None else sum(1 for r in requests if r.model == model)

    def _report(self, model: str, payloads: list) -> None:
        with self._lock:
            self.reported.append((model, reported_usage(payloads)))

    def reported_totals(self) -> dict:
        """Sum of every usage figure this fake reported since clear()."""
        with self._lock:
            totals = dict.fromkeys(USAGE_FIELDS, 0)
            for _, usage in self.reported:
                for name in USAGE_FIELDS:
                    totals[name] += usage[name]
            return totals

    def clear(self) -> None:
        """Forget recorded requests, reported usage and cached prefixes (faults are kept; see clear_faults)."""
        with self._lock:
            self.requests.clear()
            self.reported.clear()
            self._prefixes.clear()

    # faults
    def fail(self, model: str, status: int = 500, times: int | None = 1, body=None, headers: dict | None = None):
        """Answer the next `times` calls with an HTTP error in the dialect's shape (or `body`)."""
        args = {"status": int(status), "body": body, "headers": dict(headers or {})}
        self._queue(_Fault(model, "fail", times, args))

    def reset_connection(self, model: str, times: int | None = 1):
        """Abort the next `times` calls with a TCP RST and no response at all."""
        self._queue(_Fault(model, "reset", times))

    def delay(self, model: str, seconds: float, times: int | None = None):
        """Sleep before responding; stacks with other faults and lasts until cleared by default."""
        self._queue(_Fault(model, "delay", times, {"seconds": float(seconds)}), self._delays)

    def cut_stream(self, model: str, after_events: int = 2, times: int | None = 1):
        """Send only the first `after_events` SSE events of the next streams, then RST."""
        self._queue(_Fault(model, "cut", times, {"after_events": int(after_events)}))

    def pace_stream(self, model: str, seconds: float, times: int | None = 1):
        """Sleep between the SSE events of the next streams, to observe incremental delivery."""
        self._queue(_Fault(model, "pace", times, {"seconds": float(seconds)}))

    def stall_stream(self, model: str, after_events: int, seconds: float, times: int | None = 1):
        """Send the first `after_events` SSE events of the next streams, then nothing for `seconds`."""
        self._queue(_Fault(model, "stall", times, {"after_events": int(after_events), "seconds": float(seconds)}))

    def malformed(self, model: str, kind: str = "json", times: int | None = 1):
        """Return 200 with broken JSON ("json") or a stream with a garbage frame mid-way ("sse")."""
        if kind not in ("json", "sse"):
            raise ValueError(f"kind must be 'json' or 'sse', not {kind!r}")
        self._queue(_Fault(model, "malformed", times, {"kind": kind}))

    def refuse(self, model: str, times: int | None = 1, category: str | None = None, partial: str | None = None):
        """Decline the next `times` Messages calls (`stop_reason: "refusal"`), after `partial` text if given."""
        self._queue(_Fault(model, "refuse", times, {"category": category, "partial": partial}))

    def add_fault(self, model: str, action: str, **args):
        """Generic entry for POST /_fake/faults: action is fail|reset|delay|cut|malformed."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; expected one of {sorted(ACTIONS)}")
        getattr(self, ACTIONS[action])(model, **args)

    def clear_faults(self) -> None:
        """Drop every queued fault, delay and scripted tool call."""
        with self._lock:
            self._faults.clear()
            self._delays.clear()
            self._scripts.clear()
            self.gzip = False
            self.context_windows = {}
            self.response_headers = {}

    def _queue(self, fault: _Fault, queue: list[_Fault] | None = None) -> None:
        """Validate and append a fault; order of arrival is order of consumption."""
        if fault.times is not None and fault.times < 1:
            raise ValueError("times must be >= 1 or None")
        with self._lock:
            (self._faults if queue is None else queue).append(fault)

    def _take(self, queue: list[_Fault], model: str, stream: bool) -> _Fault | None:
        """Consume one use of the oldest matching fault (FIFO across the model and "*").

        Cut faults only make sense for streams, so non-stream calls skip past them."""
        with self._lock:
            for i, fault in enumerate(queue):
                if fault.model in ("*", model) and (fault.action not in STREAM_ONLY or stream):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            del queue[i]
                    return fault
        return None

    def _next_fault(self, model: str, stream: bool) -> _Fault | None:
        """Apply any queued delay (sleeping outside the lock), then consume the next fault."""
        delay = self._take(self._delays, model, stream)
        if delay:
            time.sleep(delay.args["seconds"])
        return self._take(self._faults, model, stream)

    def script_tool_call(self, name: str, tool_input: dict, times: int = 1) -> None:
        """The next `times` requests that offer tool `name` and do not carry a tool result call
        it with exactly `tool_input`: a client's own tool (Claude Code's Agent, ToolSearch)
        driven with arguments the test chooses, where the prompt-derived input would not do."""
        with self._lock:
            self._scripts.append([name, tool_input, times])

    def _apply_script(self, prompt: _Prompt, body: dict) -> None:
        """Make `prompt` call the first scripted tool this request offers, using one of its turns."""
        offered = {_tool_name(t) for t in body.get("tools") or [] if isinstance(t, dict)}
        with self._lock:
            script = next((s for s in self._scripts if s[0] in offered), None)
            if script is None or prompt.tool_result:
                return
            script[2] -= 1
            if script[2] <= 0:
                self._scripts.remove(script)
        prompt.tool, prompt.tool_input = script[0], script[1]

    def tool_call_extra(self, model: str) -> dict | None:
        """Provider-specific fields on each OpenAI tool call (none here; see FakeVertex)."""
        return None

    def request_problem(self, body: dict) -> str | None:
        """Why OpenAI would refuse this Chat Completions request with a 400."""
        user = body.get("user")
        if isinstance(user, str) and len(user) > OPENAI_USER_MAX:
            return (f"Invalid 'user': string too long. Expected a string with maximum length {OPENAI_USER_MAX}, "
                    f"but got a string with length {len(user)} instead.")
        return openai_rules.body_problem(body)

    def context_problem(self, prompt: _Prompt) -> dict | None:
        """OpenAI's refusal of a prompt longer than the model's window (`context_windows`, in the
        fake's tokens), in its real body: code `context_length_exceeded`, and the message of the
        prompt alone or of prompt plus completion."""
        window = self.context_windows.get(prompt.model)
        if window is None:
            return None
        if prompt.input_words > window:
            message = (f"This model's maximum context length is {window} tokens. However, your messages resulted in "
                       f"{prompt.input_words} tokens. Please reduce the length of the messages.")
        elif prompt.max_tokens is not None and prompt.input_words + prompt.max_tokens > window:
            message = (f"This model's maximum context length is {window} tokens. However, you requested "
                       f"{prompt.input_words + prompt.max_tokens} tokens ({prompt.input_words} in the messages, "
                       f"{prompt.max_tokens} in the completion). Please reduce the length of the messages or "
                       "completion.")
        else:
            return None
        return {"error": {"message": message, "type": "invalid_request_error", "param": "messages",
                          "code": "context_length_exceeded"}}

    def _cached_prefix(self, body: dict) -> int:
        """OpenAI's automatic prompt caching: a long enough prefix seen before is read from cache."""
        key, words = openai_prefix(body)
        if words < OPENAI_CACHE_MINIMUM:
            return 0
        with self._lock:
            seen = key in self._prefixes
            self._prefixes.add(key)
        return words // OPENAI_CACHE_STEP * OPENAI_CACHE_STEP if seen else 0

    def _reply(self, prompt: _Prompt, dialect: str) -> _Reply:
        """Build the deterministic reply with this server's id counters and dialect's prefixes."""
        n = next(self._reply_ids)
        reply_id, tool_prefix = (f"msg_fake_{n}", "toolu_fake_") if dialect == ANTHROPIC \
            else (f"chatcmpl-fake-{n}", "call_fake_")
        return _build_reply(prompt, reply_id, lambda: f"{tool_prefix}{next(self._tool_ids)}")


def main(argv: list[str] | None = None) -> None:
    """Dev-stack entry point: print the URL, then serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(description="Deterministic fake Anthropic/OpenAI upstream.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    fake = FakeUpstream(args.host, args.port).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(fake.url, flush=True)
    try:
        while fake._thread and fake._thread.is_alive():
            fake._thread.join(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
