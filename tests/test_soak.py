"""A bounded soak: mixed streamed and non-streamed load at concurrency 32 with 1% injected
upstream failures ends with no other 5xx, a ledger equal to what the upstream reported,
and flat memory in the gateway's own process (uvicorn, started as an operator would;
moto and the fake upstream live in the test process, so their growth is not counted).

GATEWAY_SOAK_REQUESTS sets the size (CI runs 2,000; the closing note of the
hardening issue reports a 20,000-request run: GATEWAY_SOAK_REQUESTS=20000
scripts/test tests/test_soak.py -s).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import httpx

from tests.support.stack import new_stack, wait_until_healthy

REQUESTS = int(os.environ.get("GATEWAY_SOAK_REQUESTS", "2000"))
CONCURRENCY = 32
MODELS = ["anthropic/claude-sonnet-4-5", "openai/gpt-4o-mini"]
FAILING = "anthropic/claude-haiku-4-5"  # the injected 1%: the fake fails every call to it


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@contextmanager
def gateway_process(settings):
    """`python -m uvicorn handler.app:app` with the stack's secrets and table, on a free port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "GATEWAY_KEYS_SECRET_ID": settings.keys_secret_id,
           "GATEWAY_PROVIDERS_SECRET_ID": settings.providers_secret_id, "GATEWAY_USAGE_TABLE": settings.usage_table}
    # A keep-alive longer than any stall of a loaded machine: uvicorn closes a connection idle
    # for 5 s by default, and a client reusing it at that moment reads a reset (httpx.ReadError)
    # that says nothing about the gateway's metering, which is what this test counts.
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "handler.app:app", "--host", "127.0.0.1",
                                "--port", str(port), "--log-level", "warning", "--timeout-keep-alive", "120"],
                               env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, timeout=60)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(30)


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
    with gateway_process(stack.settings) as (url, pid):
        asyncio.run(load(url, key, fake, 500))  # warm-up: imports, pools, caches, allocator
        fake.clear()
        warm = stack.records(key, 500)
        start_rss, started = rss_mb(pid), time.monotonic()
        outcomes = asyncio.run(load(url, key, fake, REQUESTS))
        elapsed = time.monotonic() - started
        records = stack.records(key, len(warm) + REQUESTS, timeout=300)
        end_rss = rss_mb(pid)
    injected = REQUESTS // 100
    assert outcomes == {"ok": REQUESTS - injected, "injected": injected, "other_5xx": 0, "other": 0}, outcomes
    assert len(records) == len(warm) + REQUESTS
    month = stack.month(key, requests=len(records), timeout=60)
    assert month.get("requests") == len(records), "the month's request count differs from its request records"
    reported = fake.reported_totals()
    warm_totals = {name: sum(int(r[name]) for r in warm) for name in reported}
    for name, total in reported.items():
        assert month[name] - warm_totals[name] == total, name
    print(f"\nsoak: {REQUESTS} requests at concurrency {CONCURRENCY} in {elapsed:.1f}s "
          f"({REQUESTS / elapsed:.0f} req/s), gateway RSS {start_rss:.0f} MB -> {end_rss:.0f} MB, outcomes {outcomes}")
    assert end_rss - start_rss < 40.0, "the gateway's memory grew under a steady load"
