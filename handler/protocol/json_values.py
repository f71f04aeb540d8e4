"""Where orjson and the json module agree: documents of the plain JSON types, not too deep.

orjson writes and reads several times faster than the json module, but not always alike: its
floats are written otherwise (1e-05 as 0.00001), it reads an integer past 64 bits as a float, it
refuses nesting past ORJSON_MAX_DEPTH and subclasses of the JSON types. The gateway hands it only
documents of dicts, lists, strings, integers, booleans and None (no float, no subclass), within
a depth, and leaves everything else to the json module, as before.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any

# orjson writes at most 254 levels of nesting ("Recursion limit reached" past them).
ORJSON_MAX_DEPTH = 254


def plain(value: Any, max_depth: int, depth: int = 1) -> bool:
    """Only dicts, lists, strings, integers, booleans and None, none of them a subclass, nested
    no deeper than `max_depth` (a deeper document is declined before this walk's own recursion
    could run out)."""
    kind = type(value)
    if kind is dict:
        children = value.values()
    elif kind is list:
        children = value
    else:
        return kind is str or kind is int or kind is bool or value is None
    return depth <= max_depth and all(map(plain, children, repeat(max_depth), repeat(depth + 1)))
