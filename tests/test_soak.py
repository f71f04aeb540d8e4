"""A bounded soak: mixed streamed and non-streamed load at concurrency 32 with 1% injected
upstream failures ends with no other 5xx, a ledger equal to what the upstream reported,
and flat memory.

GATEWAY_SOAK_REQUESTS sets the size (CI runs 2,000; the closing note of the
hardening issue reports a 20,000-request run: GATEWAY_SOAK_REQUESTS=20000
scripts/test tests/test_soak.py -s).
"""

from __future__ import annotations

import asyncio
import os
import resource
import time

import httpx

from tests.support.stack import new_stack, serve

REQUESTS = int(os.environ.get("GATEWAY_SOAK_REQUESTS", "2000"))
CONCURRENCY = 32
MODELS = ["anthropic/claude-sonnet-4-5", "openai/gpt-4o-mini"]
FAILING = "anthropic/claude-haiku-4-5"  # the injected 1%: the fake fails every call to it


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


async def load(url: str, key: str, fake, total: int) -> dict[str, int]:
    outcomes = {"ok": 0, "injected": 0, "other_5xx": 0, "other": 0}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)

    async def worker(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            injected = i % 100 == 50
            model = FAILING if injected else MODELS[i % 2]
            body = {"model": model, "max_tokens": 30, "stream": i % 3 == 0,
                    "messages": [{"role": "user", "content": f"soak request {i} " + "word " * (i % 7)}]}
            response = await http.post(f"{url}/v3/v1/messages", json=body, headers={"x-api-key": key})
            await response.aread()
            if response.status_code == 200 and b"event: error" not in response.content:
                outcomes["ok"] += 1
            elif response.status_code == 502 and injected:
                outcomes["injected"] += 1
            elif response.status_code >= 500 or b"event: error" in response.content:
                outcomes["other_5xx"] += 1
            else:
                outcomes["other"] += 1

    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await asyncio.gather(*(worker(http) for _ in range(CONCURRENCY)))
    return outcomes


def test_a_bounded_soak_loses_nothing(moto_endpoint, fake):
    stack = new_stack(fake.url)
    key = stack.add_key(name="soak")
    fake.fail(FAILING.split("/")[1], status=500, times=None)
    with serve(stack) as server:
        asyncio.run(load(server.url, key, fake, 200))  # warm-up: imports, pools, caches
        fake.clear()
        warm = stack.records(key, 200)
        start_rss, started = rss_mb(), time.monotonic()
        outcomes = asyncio.run(load(server.url, key, fake, REQUESTS))
        elapsed = time.monotonic() - started
        end_rss = rss_mb()
    injected = REQUESTS // 100
    assert outcomes == {"ok": REQUESTS - injected, "injected": injected, "other_5xx": 0, "other": 0}, outcomes
    records = stack.records(key, len(warm) + REQUESTS, timeout=120)
    assert len(records) == len(warm) + REQUESTS
    month = stack.month(key, requests=len(records), timeout=60)
    reported = fake.reported_totals()
    warm_totals = {name: sum(int(r[name]) for r in warm) for name in reported}
    for name, total in reported.items():
        assert month[name] - warm_totals[name] == total, name
    print(f"\nsoak: {REQUESTS} requests at concurrency {CONCURRENCY} in {elapsed:.1f}s "
          f"({REQUESTS / elapsed:.0f} req/s), RSS {start_rss:.0f} MB -> {end_rss:.0f} MB, outcomes {outcomes}")
    assert end_rss - start_rss < max(100.0, 0.25 * start_rss), "memory grew under a steady load"
