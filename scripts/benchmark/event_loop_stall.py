"""How long one large request holds the gateway's event loop: the worst /health latency seen
by a client polling every 10 ms while a 9.9 MB `@edenai` body of 99,000 blocks is judged.

    scripts/serve --port 18801 &      # prints the demo key
    .venv/bin/python -m scripts.benchmark.event_loop_stall http://127.0.0.1:18801 egw_...
"""

from __future__ import annotations

import json
import sys
import threading
import time

import httpx


def main(url: str, key: str, rounds: int = 2) -> None:
    blocks = [{"type": "text", "text": "w" * 70} for _ in range(99_000)]
    body = json.dumps({"model": "@edenai", "max_tokens": 10,
                       "messages": [{"role": "user", "content": blocks}]}).encode()
    print(f"body {len(body) / 1e6:.1f} MB, {len(blocks)} blocks")
    for _ in range(rounds):
        worst, done = [0.0], threading.Event()

        def poll() -> None:
            with httpx.Client() as client:
                while not done.is_set():
                    started = time.monotonic()
                    client.get(url + "/health")
                    worst[0] = max(worst[0], time.monotonic() - started)
                    time.sleep(0.01)

        poller = threading.Thread(target=poll)
        poller.start()
        time.sleep(0.5)
        started = time.monotonic()
        response = httpx.post(url + "/v3/v1/messages", content=body, timeout=120,
                              headers={"x-api-key": key, "content-type": "application/json"})
        took = time.monotonic() - started
        time.sleep(0.3)
        done.set()
        poller.join()
        print(f"status {response.status_code} in {took:.2f} s; worst /health {worst[0] * 1000:.0f} ms")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
