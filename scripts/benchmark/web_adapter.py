"""Lambda's side of the streaming deployment, for the benchmark: a process of its own.

On Lambda the function process holds only the app under uvicorn and its
usage extension's thread; the Lambda Web Adapter is another process and the
Runtime API is Lambda's. So here too: this process runs the stand-in Runtime
API (tests/support/lambda_runtime_api.py, whose address it prints as its first
line, for the function's AWS_LAMBDA_RUNTIME_API) and plays the adapter: each
request it receives is an invocation, forwarded to the function (uvicorn on
--function-port) with the invocation's context in `x-amzn-lambda-context`, as
the adapter forwards it, and relayed back as it streams; the invocation is
answered once the response's last byte is relayed. Its CPU is not the
gateway's (scripts/benchmark/targets.py measures the function process alone).

An invocation starts once the extension asked for its next event, so a
request waits for the last one's usage write, as in one execution environment
(and as the buffered target's stand-in holds it: scripts/benchmark/api_gateway.py).
Lambda would hand a request that comes sooner to another environment, but
that one has idled too, since its own last write: holding it here gives the
function process the idle a deployed one has before each request, and the
CPU that idle costs it (README, CPU per request). The wait is not the
function's: the response names it in `server-timing: queued;dur=MS`, which the
load generator takes off its own clock. GET /_bench/settled answers once the
last invocation has ended (its usage written), and the orchestrator asks
before it reads the CPU counters, so that a run's CPU holds its own writes
(runner.Bench.measure).

GET /health and GET /_bench/aws-calls go to the function without an
invocation; the latter first waits as /_bench/settled does, so the counts
include the last write. GET /_bench/extensions lists the extensions
registered with the stand-in.

    python -m scripts.benchmark.web_adapter --port N --function-port M
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx
import uvicorn

# Not relayed: they describe one hop's connection, and uvicorn frames its own responses.
HOP_BY_HOP = frozenset({b"host", b"connection", b"keep-alive", b"transfer-encoding", b"content-length"})
NOT_INVOCATIONS = ("/health", "/_bench/aws-calls")
INVOCATION_WAIT_S = 60.0  # for the last invocation's write, before a request starts its own
LAST_INVOCATION_WAIT_S = 120.0  # below the orchestrator's wait (runner.SETTLE_TIMEOUT_S): a stuck one is named


async def request_body(receive) -> bytes:
    """An ASGI request's whole body."""
    body = bytearray()
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return bytes(body)


def ends(api, invocation) -> bool:
    """Whether the invocation ends (answered, and the extension asked for its next event) in time."""
    try:
        api.completed(invocation, LAST_INVOCATION_WAIT_S)
    except AssertionError:
        return False
    return True


def adapter(api, function_url: str):
    client = httpx.AsyncClient(base_url=function_url, timeout=None)

    async def answer_json(send, status: int, document) -> None:
        raw = json.dumps(document).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]})
        await send({"type": "http.response.body", "body": raw})

    async def forward(scope, receive, send, extra_headers=(), answer_headers=()) -> None:
        body = await request_body(receive)
        target = scope["raw_path"].decode() + (f"?{scope['query_string'].decode()}" if scope["query_string"] else "")
        headers = [(name, value) for name, value in scope["headers"] if name not in HOP_BY_HOP]
        request = client.build_request(scope["method"], target, headers=[*headers, *extra_headers],
                                       content=bytes(body))
        response = await client.send(request, stream=True)
        try:
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": [(name, value) for name, value in response.headers.raw
                                    if name.lower() not in HOP_BY_HOP - {b"content-length"}]
                        + list(answer_headers)})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/_bench/extensions":
            await answer_json(send, 200, {"extensions": list(api.extensions.values())})
            return
        if path in ("/_bench/settled", "/_bench/aws-calls") and api.current is not None:
            last = api.current  # the extension works through the invocations in order: the last ends last
            if not await asyncio.to_thread(ends, api, last):
                await answer_json(send, 503, {"error": f"invocation {last.request_id} never ended: answered "
                                                       f"{last.answered_at is not None}, extension's next "
                                                       f"{bool(last.extension_next_at)}"})
                return
        if path == "/_bench/settled":
            await answer_json(send, 200, {"settled": True})
            return
        if path in NOT_INVOCATIONS:
            await forward(scope, receive, send)
            return
        arrived = time.perf_counter()
        invocation = await asyncio.to_thread(api.begin, None, runtime_in_process=True, wait=INVOCATION_WAIT_S)
        queued_ms = 1000 * (time.perf_counter() - arrived)
        context = {"request_id": invocation.request_id, "deadline": invocation.deadline_ms}
        try:
            await forward(scope, receive, send, [(b"x-amzn-lambda-context", json.dumps(context).encode())],
                          [(b"server-timing", f"queued;dur={queued_ms:.3f}".encode())])
        finally:
            api.answer(invocation.request_id, response={})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--function-port", type=int, required=True)
    args = parser.parse_args()
    from tests.support.lambda_runtime_api import LambdaRuntimeApi

    api = LambdaRuntimeApi().__enter__()
    print(f"runtime-api {api.address}", flush=True)
    uvicorn.run(adapter(api, f"http://127.0.0.1:{args.function_port}"), host="127.0.0.1", port=args.port,
                lifespan="off", access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
