"""A stream's event is read as json.loads reads it, whatever its data holds.

The relay reads every event of a stream (usage, stop reason, the content's size for an estimate);
orjson reads it where it gives what json.loads gives (protocol/sse.py), so what the relay reads,
meters and sends on does not change: integers past 64 bits stay integers, NaN and the infinities
are read as json.loads reads them, a lone surrogate too, floats are json.loads's own.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from handler.protocol.sse import Event

DATA = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**63, max_value=2**90) | st.floats()
    | st.text(st.characters(codec=None)),  # every code point, lone surrogates included
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=30)


def read(reader, text):
    try:
        return repr(reader(text))  # repr: NaN equals itself, 1 and 1.0 and True differ
    except Exception as exc:  # noqa: BLE001 - the failure is the outcome compared
        return type(exc)


@settings(max_examples=2000, deadline=None)
@given(DATA, st.booleans())
def test_any_events_data_is_read_as_json_loads_reads_it(document, ascii_only):
    text = json.dumps(document, ensure_ascii=ascii_only)
    assert read(lambda t: Event("content_block_delta", t, b"").json(), text) == read(json.loads, text), \
        "the relay would have read another event than json.loads read"


def test_a_deep_events_data_is_read_as_json_loads_reads_it():
    for levels in (99, 100, 101, 600):
        text = "[" * levels + "1.5" + "]" * levels
        assert read(lambda t: Event("x", t, b"").json(), text) == read(json.loads, text), f"{levels} levels"
