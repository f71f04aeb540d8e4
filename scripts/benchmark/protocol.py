"""The JSON-lines conversation between the orchestrator and a worker that makes requests.

A run is split in two so the orchestrator can read every process's CPU
counters after the warm-up and before the measured requests:

    parent: {"cmd": "run", ...job}   worker: {"event": "warmed"}
    parent: {"cmd": "go"}            worker: {"event": "done", ...result}

Workers answer on a duplicate of their original stdout and point fd 1 at
stderr, so a library that prints (litellm does) cannot corrupt the channel.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from typing import Any


class Channel:
    """The worker's end: commands on stdin, answers on a private copy of stdout."""

    def __init__(self) -> None:
        self._out = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr

    def send(self, message: dict[str, Any]) -> None:
        self._out.write(json.dumps(message) + "\n")
        self._out.flush()

    @staticmethod
    def receive() -> dict[str, Any] | None:
        line = sys.stdin.readline()
        return json.loads(line) if line.strip() else None


@dataclass
class Samples:
    """What one measured batch produced; milliseconds, one entry per successful request."""

    latency_ms: list[float] = field(default_factory=list)
    ttfb_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def ok(self, latency_s: float, ttfb_s: float) -> None:
        self.latency_ms.append(latency_s * 1000)
        self.ttfb_ms.append(ttfb_s * 1000)

    def failed(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 3:
            self.error_samples.append(what[:300])

    def message(self) -> dict[str, Any]:
        return {"event": "done", **asdict(self)}


def looks_complete(body: bytes, expect: str) -> bool:
    """A cheap check that a 200 carried a whole answer (`expect` is a marker only a complete
    answer holds: message_stop for a stream), not an error or a cut stream."""
    return expect.encode() in body
