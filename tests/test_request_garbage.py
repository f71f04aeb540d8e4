"""A served request leaves no reference cycle of the gateway's own behind.

What a request makes is freed by reference counting as soon as it ends, unless it
is in a cycle: then it waits for Python's cyclic collector, whose collections a
request's own few hundred live objects set off every dozen requests or so once
any garbage piles up (about 0.015 ms of CPU a request in-process: README, CPU per
request). A nested function that calls itself is such a cycle (the function holds
the cell that holds it).
"""

from __future__ import annotations

import gc
import types

import pytest


def _ours(obj) -> str | None:
    """What names the gateway's code in a piece of garbage, if anything does."""
    if isinstance(obj, types.FunctionType) and (obj.__module__ or "").startswith("handler"):
        return obj.__qualname__
    if isinstance(obj, types.CellType):
        try:
            return _ours(obj.cell_contents)
        except ValueError:  # an empty cell
            return None
    if type(obj).__module__.startswith("handler"):
        return type(obj).__qualname__
    return None


@pytest.fixture
def saved_garbage():
    """Every object the cyclic collector finds unreachable while the test runs, kept for a look."""
    gc.collect()
    gc.garbage.clear()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_served_request_leaves_no_reference_cycle_of_the_gateways(client, server, saved_garbage, stream):
    for _ in range(3):
        if stream:
            with client.messages.stream(model="anthropic/claude-sonnet-4-5", max_tokens=20,
                                        messages=[{"role": "user", "content": "hello"}]) as events:
                events.get_final_message()
        else:
            client.messages.create(model="anthropic/claude-sonnet-4-5", max_tokens=20,
                                   messages=[{"role": "user", "content": "hello"}])
    server.settle()
    gc.collect()
    ours = sorted({name for name in map(_ours, saved_garbage) if name})
    assert ours == [], f"each request left these for the cyclic collector: {ours}"
