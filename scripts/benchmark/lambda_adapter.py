"""The CPU buffered mode spends around the app: Mangum and the handler's loop passes.

scripts/bench's buffered figure moves by tenths of a millisecond from run to
run, more than the adapter costs. This serves one HTTP API (payload 2.0) event
for POST /v3/v1/messages, as API Gateway sends it, to a fixed ASGI answer with
the gateway's usual response headers, three ways: the app called directly
with a ready scope (the floor: what no adapter can save); stock
`Mangum(app, lifespan="off")` followed by the gateway's drain in a second run
of the loop (the handler as it was); and the handler's OnePassMangum
(handler/runtime/one_pass_mangum.py), the drain in the same run. The drain is
the gateway's own, with nothing pending, as after a whole answer. Process CPU
divided by the invocations is the figure; variants alternate, so a busy
machine weighs on each alike.

    python -m scripts.benchmark.lambda_adapter [--requests 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Callable

from mangum import Mangum

from handler.app import app as gateway_app
from handler.runtime.one_pass_mangum import OnePassMangum
from tests.support.lambda_events import LambdaContext, http_api_event

ANSWER = json.dumps({"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                     "content": [{"type": "text", "text": "Hello! How can I help you today?"}],
                     "stop_reason": "end_turn", "usage": {"input_tokens": 12, "output_tokens": 9}}).encode()
RESPONSE_HEADERS = [(b"content-length", str(len(ANSWER)).encode()), (b"content-type", b"application/json"),
                    (b"request-id", b"req_0123456789abcdef01234567"), (b"x-should-retry", b"false"),
                    (b"anthropic-organization-id", b"edenai")]
BODY = {"model": "anthropic/claude-sonnet-4-5", "max_tokens": 20, "messages": [{"role": "user", "content": "hello"}]}
EVENT = http_api_event("POST", "/v3/v1/messages", body=BODY,
                       headers={"x-api-key": "egw_bench", "anthropic-version": "2023-06-01",
                                "user-agent": "Anthropic/Python 0.75.0", "accept": "application/json"})


async def answer(scope, receive, send) -> None:
    """A fixed JSON answer, the request's body read first, as an endpoint would."""
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": RESPONSE_HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})


def drain():
    return gateway_app.state.gateway.drain()


def variants(loop: asyncio.AbstractEventLoop) -> dict[str, Callable[[], object]]:
    context = LambdaContext()
    stock = Mangum(answer, lifespan="off")
    one_pass = OnePassMangum(answer, after=drain)
    scope = stock.infer(EVENT, context).scope

    async def receive():
        return {"type": "http.request", "body": EVENT["body"].encode(), "more_body": False}

    async def send(message) -> None:
        pass

    def stock_then_drain() -> None:
        stock(EVENT, context)
        loop.run_until_complete(drain())

    return {"the app called directly": lambda: loop.run_until_complete(answer(scope, receive, send)),
            "Mangum, then a drain pass": stock_then_drain,
            "OnePassMangum": lambda: one_pass(EVENT, context)}


def measure(requests: int, rounds: int) -> dict[str, list[float]]:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    calls = variants(loop)
    for call in calls.values():
        for _ in range(500):  # warm
            call()
    found: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.process_time()
            for _ in range(requests):
                call()
            found[name].append((time.process_time() - started) / requests * 1e6)
    loop.close()
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.benchmark.lambda_adapter",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000, help="invocations per variant and round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    found = measure(args.requests, args.rounds)
    for name, values in found.items():
        print(f"{name:<28} {statistics.median(values):6.1f} µs CPU/invocation "
              f"(median of {args.rounds} rounds of {args.requests}; min {min(values):.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
