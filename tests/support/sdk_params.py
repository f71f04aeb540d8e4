"""Hypothesis strategies for values of the anthropic SDK's own request types.

`typed(tp)` draws a well-typed value of any SDK TypedDict, Literal, Union or
list the request types are made of (`anthropic.types.MessageCreateParams` and
every content block, tool and tool_choice param it holds). Where the SDK says
only `object`, a free-form mapping, or where its types nest too deep to keep
drawing structure (tool results of tool results ...), the caller's `leaf`
strategy stands in: hostile values for the hostile-input test, plain ones for
the reservation test.
"""

from __future__ import annotations

import types
import typing

import typing_extensions
from hypothesis import strategies as st

REQUIRED = (typing.Required, typing_extensions.Required)
WRAPPERS = (typing.Required, typing.NotRequired, typing.Annotated, typing_extensions.Required,
            typing_extensions.NotRequired, typing_extensions.Annotated)
SEQUENCES = ("<class 'collections.abc.Iterable'>", "<class 'collections.abc.Sequence'>")


def typed(tp, leaf: st.SearchStrategy, depth: int = 0, *, max_depth: int = 6, max_items: int = 3,
          text: st.SearchStrategy | None = None) -> st.SearchStrategy:
    """A well-typed value of the SDK type `tp`; `leaf` where the type says nothing drawable."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    again = lambda inner, level: typed(inner, leaf, level, max_depth=max_depth, max_items=max_items, text=text)  # noqa: E731
    if origin in WRAPPERS:
        return again(args[0], depth)
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin in (typing.Union, types.UnionType):
        return st.one_of([again(arg, depth) for arg in args])
    if tp is type(None):
        return st.none()
    if depth > max_depth:
        return leaf
    if typing_extensions.is_typeddict(tp):
        hints = typing.get_type_hints(tp, include_extras=True)
        # The SDK marks required keys with Required[...] in postponed annotations: read the hints.
        needed = {k for k, v in hints.items() if typing.get_origin(v) in REQUIRED}
        required = {k: again(v, depth + 1) for k, v in hints.items() if k in needed}
        optional = {k: again(v, depth + 1) for k, v in hints.items() if k not in needed}
        return st.fixed_dictionaries(required, optional=optional)
    if origin in (list, typing.Iterable, typing.Sequence, typing.List) or str(origin) in SEQUENCES:
        return st.lists(again(args[0], depth + 1), max_size=max_items)
    if origin in (dict, typing.Dict) or str(origin) == "<class 'collections.abc.Mapping'>":
        return st.dictionaries(st.text(max_size=5), leaf, max_size=2)
    return {
        str: text if text is not None else st.text(max_size=12), int: st.integers(-2, 2**31),
        float: st.floats(allow_nan=False, allow_infinity=False), bool: st.booleans(), object: leaf,
    }.get(tp, leaf)
