"""Init's objects, left out of every later garbage collection.

A full (generation 2) collection walks every object the collector tracks while
it holds the GIL, and a large request sets one off: parsing and validating a
10 MB body makes a few hundred thousand containers in a worker thread. Walking
init's objects too (FastAPI, pydantic, boto3, the catalogue's price map,
litellm when a prepared init imports it: about 330,000 objects under
`scripts/serve`) took 170-400 ms, and the event loop, waiting for the GIL,
answered no one meanwhile (scripts/benchmark/event_loop_stall.py). Those
objects live as long as the process, so once init is done they are frozen
(`gc.freeze`, Python's own way to leave them out of collections): later
collections walk only what requests made. litellm imported by a first call on
an on-demand init is not frozen (the freeze would keep that request's garbage
for good).
"""

from __future__ import annotations

import gc


def freeze_init_heap() -> int:
    """Collect init's garbage, then freeze what is left; how many objects are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
