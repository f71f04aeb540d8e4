"""The most a request can be billed: what is reserved against a key's monthly caps.

A monthly cap holds only if every reservation is an upper bound of the bill
(the real figure replaces it once the request ends), so each part of the
bound rests on a documented limit or on a worst case stated here:

- Text. Every tokenizer in use is byte-level (BPE over UTF-8 bytes): a token
  covers at least one byte, so the UTF-8 size of the request's JSON (system,
  messages, tools; media data left out) bounds the text, and its quotes and
  braces bound the per-message framing tokens. Tools add the provider's
  tool-use system prompt (Anthropic documents at most 346 tokens; 1,000 here).
  A structured-output format is prompt too (providers put its schema in the
  prompt): its bytes, plus 1,000 tokens for the instructions around it, as for tools.
- Images, by their documented maxima whatever their source: Anthropic scales
  an image down to about 1.15 megapixels, at most about 1,600 tokens
  (2,000 here); OpenAI-compatible models are taken at gpt-4o-mini's
  high-detail worst case (2,833 + 4 tiles x 5,667 = 25,501; 25,600 here).
- Documents whose text the gateway cannot read (a PDF, a URL or file
  source): the model's whole context window. A block of a type the gateway
  does not know (passed on as sent: protocol/content.py) is reserved like the
  costliest block it resembles: one holding a URL, a file or binary data
  anywhere inside it at the context window, as such a document; one of text
  alone by its bytes, as text.
- Nothing exceeds the context window (a longer prompt is refused, unbilled);
  with the context-1m beta that window is 1,000,000 tokens.
- Server tools (web search, web fetch, code execution) run a sampling loop of
  at most 10 iterations (Anthropic's limit, then `pause_turn`): each may read
  a full context window and write max_tokens; web searches are at most
  `max_uses` each (50 when unset), at their per-use price.
- Each token at the dearest rate the model has for its kind (cache writes,
  long-context rates), at the dearest candidate model.

Pure: the body and the candidates' price-map entries in, a bound out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable, Mapping

from ..protocol.content import KNOWN_BLOCK_TYPES, content_blocks
from ..protocol.usage import Usage
from .pricing import USD_QUANTUM, Price, price_of

TOOL_PROMPT_TOKENS = 1_000
IMAGE_TOKENS_ANTHROPIC = 2_000
IMAGE_TOKENS_OTHER = 25_600
# A model whose context window the price map does not give.
UNKNOWN_CONTEXT = 1_000_000
LONG_CONTEXT = 1_000_000
SERVER_TOOL_ITERATIONS = 10
SERVER_TOOL_PREFIXES = ("web_search", "web_fetch", "code_execution", "tool_search")
DEFAULT_SERVER_TOOL_USES = 50


@dataclass(frozen=True)
class Shape:
    """What the bound needs to know of a request, read once for every candidate."""

    text_bytes: int
    images: int
    unreadable_documents: int
    has_tools: bool
    server_tools: bool
    web_searches: int
    max_tokens: int
    long_context: bool


# What makes an unknown block something the provider fetches or decodes: a part of one of
# these types (a source), or one of these keys holding a string.
REFERENCE_TYPES = frozenset({"url", "file", "base64"})
REFERENCE_KEYS = frozenset({"url", "uri", "file_id", "data"})


def _refers_beyond_text(value: Any) -> bool:
    """Whether a value holds, anywhere inside it, a URL, a file or data other than text."""
    if isinstance(value, list):
        return any(_refers_beyond_text(item) for item in value)
    if not isinstance(value, Mapping):
        return False
    if not str(value.get("media_type", "")).startswith("text/") and (
            value.get("type") in REFERENCE_TYPES or any(isinstance(value.get(key), str) for key in REFERENCE_KEYS)):
        return True
    return any(_refers_beyond_text(item) for item in value.values())


def _unknown_blocks_beyond_text(body: Mapping[str, Any]) -> int:
    """Content blocks of types the gateway does not know that hold a URL, a file or data."""
    system = body.get("system") if isinstance(body.get("system"), list) else []
    blocks = [block for _, block in content_blocks(body.get("messages") or [])] + system
    return sum(1 for block in blocks if isinstance(block, Mapping) and block.get("type") not in KNOWN_BLOCK_TYPES
               and _refers_beyond_text(block))


def _strip_media(value: Any, counts: dict[str, int]) -> Any:
    """The value with image and document payloads left out, counting them as it goes."""
    if isinstance(value, list):
        return [_strip_media(item, counts) for item in value]
    if not isinstance(value, Mapping):
        return value
    kind = value.get("type")
    source = value.get("source")
    if kind == "image":
        counts["images"] += 1
        return None
    if kind in ("document", "container_upload"):
        source_type = source.get("type") if isinstance(source, Mapping) else None
        readable = source_type in ("text", "content") or (
            source_type == "base64" and str(source.get("media_type", "")).startswith("text/"))
        if not readable:
            counts["unreadable_documents"] += 1
            return None
    return {name: _strip_media(item, counts) for name, item in value.items()}


def shape_of(body: Mapping[str, Any], *, anthropic_beta: str | None = None) -> Shape:
    counts = {"images": 0, "unreadable_documents": 0}
    stripped = _strip_media([body.get("system"), body.get("messages"), body.get("tools")], counts)
    counts["unreadable_documents"] += _unknown_blocks_beyond_text(body)
    text_bytes = len(json.dumps(stripped, ensure_ascii=False, separators=(",", ":")).encode())
    tools = [tool for tool in body.get("tools") or [] if isinstance(tool, Mapping)]
    server = [tool for tool in tools if str(tool.get("type", "")).startswith(SERVER_TOOL_PREFIXES)]
    # Anthropic's MCP connector runs the caller's servers in a loop on Anthropic's side, as
    # server tools do: bounded the same way.
    mcp = bool(body.get("mcp_servers")) or any(str(tool.get("type", "")).startswith("mcp") for tool in tools)
    searches = sum(_uses(tool) for tool in server if str(tool.get("type")).startswith("web_search"))
    return Shape(
        text_bytes=text_bytes + _output_schema_bytes(body),
        images=counts["images"],
        unreadable_documents=counts["unreadable_documents"],
        has_tools=bool(tools),
        server_tools=bool(server) or mcp,
        web_searches=searches,
        max_tokens=int(body.get("max_tokens") or 1024),
        long_context="context-1m" in (anthropic_beta or ""),
    )


def _output_schema_bytes(body: Mapping[str, Any]) -> int:
    """A structured-output format (`output_config.format`, the beta's `output_format`) is read
    as prompt: providers put its schema in the prompt, with instructions of their own (taken
    at the tool-use prompt's allowance). Its UTF-8 bytes bound its tokens like any other text."""
    config = body.get("output_config")
    formats = [body.get("output_format"), config.get("format") if isinstance(config, Mapping) else None]
    sized = [form for form in formats if isinstance(form, Mapping)]
    if not sized:
        return 0
    return len(json.dumps(sized, ensure_ascii=False, separators=(",", ":")).encode()) + TOOL_PROMPT_TOKENS * len(sized)


def _uses(tool: Mapping[str, Any]) -> int:
    value = tool.get("max_uses")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else DEFAULT_SERVER_TOOL_USES


def dearest_price(info: Mapping[str, Any]) -> Price | None:
    """The model's dearest rate for an input token (cache writes and long-context rates
    included) and for an output token."""
    base = price_of(info)
    if base is None:
        return None
    inputs = [Decimal(str(value)) for name, value in info.items() if _is_rate(value) and (
        name.startswith("input_cost_per_token") or name.startswith("cache_creation_input_token_cost"))]
    outputs = [Decimal(str(value)) for name, value in info.items()
               if _is_rate(value) and name.startswith("output_cost_per_token")]
    top_in = max([base.input, base.cache_write, *inputs])
    return Price(top_in, max([base.output, *outputs]), top_in, top_in, base.web_search)


def _is_rate(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Bound:
    tokens: int
    usd: Decimal
    # The split of `tokens`, for settling a request the gateway gave up on at its bound.
    input_tokens: int = 0
    output_tokens: int = 0


def bound_for(shape: Shape, info: Mapping[str, Any], *, anthropic: bool) -> Bound:
    """The most one candidate model can bill for a request of this shape."""
    window = info.get("max_input_tokens")
    context = window if isinstance(window, int) and window > 0 else UNKNOWN_CONTEXT
    if shape.long_context and anthropic:
        context = max(context, LONG_CONTEXT)
    image_tokens = IMAGE_TOKENS_ANTHROPIC if anthropic else IMAGE_TOKENS_OTHER
    first = shape.text_bytes + shape.images * image_tokens + (TOOL_PROMPT_TOKENS if shape.has_tools else 0)
    first = context if shape.unreadable_documents else min(first, context)
    loops = SERVER_TOOL_ITERATIONS if shape.server_tools else 1
    input_tokens = first + (loops - 1) * context
    output_tokens = loops * shape.max_tokens
    price = dearest_price(info)
    usd = Decimal(0)
    if price is not None:
        usd = input_tokens * price.input + output_tokens * price.output + shape.web_searches * price.web_search
    return Bound(input_tokens + output_tokens, usd.quantize(USD_QUANTUM), input_tokens, output_tokens)


def attempt_bounds(body: Mapping[str, Any], candidates: Iterable[tuple[Mapping[str, Any], bool]], *,
                   anthropic_beta: str | None = None) -> list[Bound]:
    """The most each candidate (price-map entry, speaks Anthropic) can bill, in order."""
    shape = shape_of(body, anthropic_beta=anthropic_beta)
    return [bound_for(shape, info, anthropic=anthropic) for info, anthropic in candidates]


def reservation(bounds: list[Bound], *, all_billed: bool) -> Bound:
    """What a request reserves from its attempts' bounds. Only one attempt is billed when a
    failure moves to the next (a refused call bills nothing; an attempt given up on at the
    deadline is the last one): the largest bound. When a refusal moves on (the server-side
    fallback beta), every declined attempt is billed with the one that answers: their sum."""
    if not bounds:
        return Bound(0, Decimal(0))
    if all_billed:
        return Bound(sum(b.tokens for b in bounds), sum((b.usd for b in bounds), Decimal(0)),
                     sum(b.input_tokens for b in bounds), sum(b.output_tokens for b in bounds))
    return Bound(max(b.tokens for b in bounds), max(b.usd for b in bounds))


def request_bound(body: Mapping[str, Any], candidates: Iterable[tuple[Mapping[str, Any], bool]], *,
                  anthropic_beta: str | None = None) -> Bound:
    """The most any one candidate (price-map entry, speaks Anthropic) can bill."""
    return reservation(attempt_bounds(body, candidates, anthropic_beta=anthropic_beta), all_billed=False)


def abandoned_usage(body: Mapping[str, Any], taken: Iterable[tuple[Mapping[str, Any], bool]], *,
                    anthropic_beta: str | None = None) -> tuple[Usage, Decimal]:
    """What a request is settled at when the gateway gave up on attempts a provider had taken
    (its deadline passed, its caller went away): each such model's bound, in input and output
    tokens and at its dearest rates, summed. The provider may bill the whole answer after the
    gateway left; it cannot bill more than this."""
    shape = shape_of(body, anthropic_beta=anthropic_beta)
    bounds = [bound_for(shape, info, anthropic=anthropic) for info, anthropic in taken]
    usage = Usage(input_tokens=sum(b.input_tokens for b in bounds), output_tokens=sum(b.output_tokens for b in bounds))
    return usage, sum((b.usd for b in bounds), Decimal(0))
