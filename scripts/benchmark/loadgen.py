"""The load generator: a worker process that drives one HTTP target per run.

It lives in its own process so its CPU is measured apart from the servers'
and never shares their interpreter. Each run opens `concurrency` keep-alive
connections, warms them up, waits for the orchestrator's go, then sends
`requests` requests with `concurrency` in flight at all times.

    python -m scripts.benchmark.loadgen     (speaks scripts.benchmark.protocol)
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from .httpclient import Connection, build_request
from .protocol import Channel, Samples, looks_complete

REQUEST_TIMEOUT = 60.0  # a target that stops answering shows up as errors, not as a hung benchmark


async def _batch(connections: list[Connection], raw: bytes, count: int, expect: str) -> Samples:
    samples = Samples()
    left = count

    async def drive(connection: Connection) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            try:
                status, ttfb, total, body = await asyncio.wait_for(connection.request(raw), REQUEST_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - a failed request is a counted error, not a crash
                connection.close()
                samples.failed(f"{type(exc).__name__}: {exc}")
                continue
            if status == 200 and looks_complete(body, expect):
                samples.ok(total, ttfb)
            else:
                samples.failed(f"HTTP {status}: {body[:200]!r}")

    started = time.perf_counter()
    await asyncio.gather(*(drive(connection) for connection in connections))
    samples.wall_s = time.perf_counter() - started
    return samples


async def run(job: dict[str, Any], channel: Channel) -> None:
    raw = build_request(job["host"], job["port"], job["path"], job["headers"], job["body"].encode())
    connections = [Connection(job["host"], job["port"]) for _ in range(job["concurrency"])]
    try:
        if job["warmup"]:
            await _batch(connections, raw, max(job["warmup"], len(connections)), job["expect"])
        channel.send({"event": "warmed"})
        go = await asyncio.get_running_loop().run_in_executor(None, channel.receive)
        if not go or go.get("cmd") != "go":
            return
        samples = await _batch(connections, raw, job["requests"], job["expect"])
        channel.send(samples.message())
    finally:
        for connection in connections:
            connection.close()


def main() -> None:
    channel = Channel()
    channel.send({"event": "ready"})
    while (job := channel.receive()) is not None and job.get("cmd") == "run":
        asyncio.run(run(job, channel))
    sys.exit(0)


if __name__ == "__main__":
    main()
