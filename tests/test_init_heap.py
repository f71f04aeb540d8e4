"""A large body's garbage collections walk only what requests made, not what init built.

Parsing and judging a 9.9 MB body of 99,000 blocks sets off full collections in the
worker thread that judges it; each holds the GIL, so the event loop answers no one
meanwhile. Walking init's objects too took 40-50 ms a collection after an on-demand
Lambda init and about 230 ms after a SnapStart init (litellm imported), as
scripts/benchmark/event_loop_stall.py saw from outside (handler/runtime/heap.py).
Each probe is a fresh process that imports an entry point as Lambda does at init, then
judges the body as the app does (the worker thread's work, run here in the main one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import gc, importlib, json, sys, time
importlib.import_module(sys.argv[1])
from handler.app import _judged, _parsed_and_bounded
from handler.protocol.schemas import AnthropicMessagesBody

pauses, started = [], {}
def timed(phase, info):
    if phase == "start":
        started["cpu"] = time.thread_time()
    elif info["generation"] == 2:
        pauses.append((time.thread_time() - started["cpu"]) * 1000)

blocks = [{"type": "text", "text": "w" * 70} for _ in range(99_000)]
raw = json.dumps({"model": "@edenai", "max_tokens": 10, "messages": [{"role": "user", "content": blocks}]}).encode()
del blocks
gc.callbacks.append(timed)
_judged(AnthropicMessagesBody, _parsed_and_bounded(raw))
gc.callbacks.remove(timed)
print(json.dumps({"frozen": gc.get_freeze_count(), "walked": len(gc.get_objects()), "pauses_ms": pauses}))
"""
# A collection's own CPU (thread_time: the machine's load does not count), well above the few
# milliseconds what requests made takes to walk and well below init's heap.
MAX_FULL_COLLECTION_MS = 20


@pytest.mark.parametrize("entry, init_type", [
    ("handler.lambda_function", "on-demand"),   # buffered mode's handler
    ("handler.lambda_function", "snap-start"),  # ... with litellm imported at init
    ("handler.runtime.snapstart", "snap-start"),  # streaming mode's (uvicorn's handler.runtime.snapstart:streaming_app)
])
def test_a_large_bodys_full_collections_walk_only_what_requests_made(entry, init_type):
    result = subprocess.run([sys.executable, "-c", PROBE, entry], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "AWS_LAMBDA_INITIALIZATION_TYPE": init_type}, check=True)
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["walked"] < seen["frozen"] / 10, f"init's objects are still walked by every collection: {seen}"
    # Python 3.13 may run no full collection at all here (its long-lived heuristic waits for the
    # objects pending since the last one to reach a quarter of those already there): then none
    # held the GIL either.
    longest = max(seen["pauses_ms"], default=0.0)
    assert longest < MAX_FULL_COLLECTION_MS, \
        f"a full collection held the GIL (and so every other request) for {longest:.0f} ms: {seen}"
