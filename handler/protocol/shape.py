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

Both are asked of orjson first: its encoder refuses a lone surrogate in any string or key and a
255th level of nesting, in C, for about a tenth of what the walk costs in Python (Claude Code's
88 KB request: 156 µs for the walk, about 12 for orjson writing it under 126 lists, so that its
limit falls where MAX_DEPTH does). Only a body orjson refuses is walked, value by value, so the
error it gets is the one it got.
"""

from __future__ import annotations

import threading
from typing import Any, Iterable

import orjson

from .errors import GatewayError
from .json_values import ORJSON_MAX_DEPTH

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


# orjson refuses to write a 255th level of nesting ("Recursion limit reached"), empty containers
# counted as this module counts them: a document under this many lists fails there exactly when
# its own nesting passes MAX_DEPTH (tests/test_body_limits.py pins both sides of the limit).
_WRAP = ORJSON_MAX_DEPTH - MAX_DEPTH


class _Wrapper(threading.local):
    """This thread's _WRAP nested lists, the innermost holding the document while it is written
    (a body past 256 KB is judged in a worker thread while the loop judges others)."""

    def __init__(self) -> None:
        self.outer = self.inner = [None]
        for _ in range(_WRAP - 1):
            self.outer = [self.outer]


_wrapper = _Wrapper()


def check_nesting_and_text(document: Any) -> None:
    """Depth and strings, without recursion: linear in the number of JSON values."""
    wrapper = _wrapper
    wrapper.inner[0] = document
    try:
        orjson.dumps(wrapper.outer)
    except orjson.JSONEncodeError:
        _walk_every_value(document)  # a lone surrogate, or too deep: the error it always got
    finally:
        wrapper.inner[0] = None


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
