"""Limits on a body's shape, judged in one iterative pass before anything else reads it.

Every later walk over caller data (validation, metering's estimates, the
translations' schema walks) recurses or loops over what this pass admits, so
it bounds them all: nesting depth, the number of messages and of content
blocks. It also refuses strings no UTF-8 encoder can carry (a lone surrogate,
valid JSON text as `"\\ud800"`): every provider's wire, and the ledger's
reservation, would fail on them.

Anthropic publishes "a limit of 100,000 messages in a single request" (the
Messages API reference, `messages`); it publishes no depth or block limit, so
the gateway's are its own: deep enough for any JSON Schema a tool needs, and a
block count that matches the message limit.

The strings are asked of orjson first: its encoder refuses a lone surrogate in any string or key,
in C, for about a tenth of what this walk cost over each of them in Python (Claude Code's
88 KB request: 156 µs for the walk, 10 for orjson and 49 for the walk over the containers alone,
which the depth needs). Only a body orjson refuses (a surrogate, or whatever else it will not
write) is walked string by string, so the error it gets is the one it got.
"""

from __future__ import annotations

from typing import Any, Iterable

import orjson

from .errors import GatewayError

MAX_DEPTH = 128
MAX_MESSAGES = 100_000
MAX_BLOCKS = 100_000


def _unencodable(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_nesting_and_text(document: Any) -> None:
    """Depth and strings, without recursion: linear in the number of JSON values."""
    try:
        orjson.dumps(document)
    except orjson.JSONEncodeError:
        _walk_every_value(document)  # a lone surrogate, or nesting past orjson's 254 levels
    else:
        _check_depth(document)


def _check_depth(document: Any) -> None:
    """The containers only, a level at a time: the same limit and error as `_walk_every_value`."""
    level, depth = [document], 1
    while level:
        below: list[Any] = []
        for value in level:
            kind = type(value)
            if kind is dict:
                children: Iterable[Any] = value.values()
            elif kind is list:
                children = value
            else:
                continue
            if depth > MAX_DEPTH:
                raise GatewayError(400, f"Request body is nested too deeply: more than {MAX_DEPTH} levels.")
            below += [child for child in children if type(child) is dict or type(child) is list]
        level, depth = below, depth + 1


def _walk_every_value(document: Any) -> None:
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if _unencodable(value):
                raise GatewayError(400, "Request body holds a lone UTF-16 surrogate (\\ud800-\\udfff without "
                                        "its pair): no UTF-8 text can carry it.")
            continue
        if isinstance(value, dict):
            children: Iterable[Any] = value.values()
            for key in value:
                if _unencodable(key):
                    raise GatewayError(400, "Request body holds a lone UTF-16 surrogate in a key.")
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_DEPTH:
            raise GatewayError(400, f"Request body is nested too deeply: more than {MAX_DEPTH} levels.")
        stack.extend((child, depth + 1) for child in children)


def _blocks(content: Any) -> int:
    if not isinstance(content, list):
        return 0
    inner = sum(len(block["content"]) for block in content
                if isinstance(block, dict) and isinstance(block.get("content"), list))
    return len(content) + inner


def check_counts(document: Any) -> None:
    """Messages and content blocks (a tool_result's items and system blocks included)."""
    if not isinstance(document, dict):
        return
    messages = document.get("messages")
    if not isinstance(messages, list):
        return
    if len(messages) > MAX_MESSAGES:
        raise GatewayError(400, f"messages: at most {MAX_MESSAGES} messages in a request, not {len(messages)}.")
    blocks = _blocks(document.get("system")) + sum(
        _blocks(message.get("content")) for message in messages if isinstance(message, dict))
    if blocks > MAX_BLOCKS:
        raise GatewayError(400, f"messages: at most {MAX_BLOCKS} content blocks in a request, not {blocks}.")


def check_shape(document: Any) -> None:
    check_counts(document)
    check_nesting_and_text(document)
