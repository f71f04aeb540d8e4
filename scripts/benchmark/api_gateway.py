"""Lambda's side of the buffered deployment, for the benchmark: a process of its own.

On Lambda the function process holds the runtime interface client
(`python -m awslambdaric`) running `lambda_handler` (Mangum) and the usage
extension's thread; API Gateway and the Runtime API are Lambda's. So here too:
this process runs the stand-in Runtime API (tests/support/lambda_runtime_api.py,
whose address it prints as its first line, for the function's
AWS_LAMBDA_RUNTIME_API) and plays API Gateway (HTTP API, payload 2.0): each
request it receives becomes an event (tests/support/lambda_events.py), handed
to the function as an invocation, and the function's proxy response is
answered back, as API Gateway maps it. Its CPU is not the gateway's
(scripts/benchmark/targets.py measures the function process alone).

An invocation starts once the runtime and the extension both wait for it, so
a request waits for the last one's usage write, as in one execution
environment. The latency it reports is the invocation's, as the buffered
target always measured it: from the event handed out by the runtime's /next to
the response posted, in `server-timing: invocation;dur=MS`, which the load
generator takes instead of its own clock (that wait, and the relay's hops,
are not the function's).

GET /_bench/aws-calls is an invocation of the function's counting route
(scripts/benchmark/buffered_function.py), so it starts once the last write is
done; GET /_bench/settled answers once the last invocation has ended;
GET /_bench/ready once the function's init is over (its runtime asked for an
event); GET /_bench/extensions lists the extensions registered with the stand-in.

    python -m scripts.benchmark.api_gateway --port N
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import time

import uvicorn

from tests.support.lambda_events import http_api_event
from tests.support.lambda_runtime_api import Invocation, LambdaRuntimeApi

from .web_adapter import INVOCATION_WAIT_S, ends, request_body

# Not relayed: uvicorn frames its own responses.
FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})


class TimedRuntimeApi(LambdaRuntimeApi):
    """The stand-in, noting when each invocation's event is handed to the runtime."""

    def runtime_next(self) -> Invocation:
        invocation = super().runtime_next()
        invocation.handed_out_at = time.monotonic()  # type: ignore[attr-defined]
        return invocation

    def forget(self, invocation: Invocation) -> None:
        """The benchmark's thousands of invocations are not kept."""
        with self._cond:
            if invocation in self.invocations:
                self.invocations.remove(invocation)


def proxy_answer(response: dict) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """A Lambda proxy response (payload 2.0) as API Gateway answers it: status, headers, cookies, body."""
    body = response.get("body") or ""
    raw = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
    headers = [(name.lower().encode(), str(value).encode()) for name, value in (response.get("headers") or {}).items()
               if name.lower() not in FRAMING]
    headers += [(b"set-cookie", cookie.encode()) for cookie in response.get("cookies") or ()]
    return int(response.get("statusCode", 200)), headers, raw


def gateway(api: TimedRuntimeApi):
    async def answer(send, status: int, headers: list[tuple[bytes, bytes]], raw: bytes) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [*headers, (b"content-length", str(len(raw)).encode())]})
        await send({"type": "http.response.body", "body": raw})

    async def answer_json(send, status: int, document) -> None:
        await answer(send, status, [(b"content-type", b"application/json")], json.dumps(document).encode())

    async def invoke(scope, receive, send) -> None:
        body = await request_body(receive)
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:  # HTTP API joins a repeated header with commas
            key = name.decode("latin-1").lower()
            if key in ("host", "connection"):  # the event's host is API Gateway's own; hop-by-hop
                continue
            headers[key] = f"{headers[key]},{value.decode('latin-1')}" if key in headers else value.decode("latin-1")
        event = http_api_event(scope["method"], scope["path"], body=bytes(body) if body else None, headers=headers,
                               query=scope["query_string"].decode())
        invocation = await asyncio.to_thread(api.invoke, event, wait=INVOCATION_WAIT_S)
        api.forget(invocation)
        if invocation.error is not None or not isinstance(invocation.response, dict):
            # HTTP API's answer when the function fails or returns no proxy response
            await answer_json(send, 500, {"message": "Internal Server Error"})
            return
        status, headers_out, raw = proxy_answer(invocation.response)
        took_ms = 1000 * (invocation.answered_at - invocation.handed_out_at)
        await answer(send, status, [*headers_out, (b"server-timing", f"invocation;dur={took_ms:.3f}".encode())], raw)

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/_bench/extensions":
            await answer_json(send, 200, {"extensions": list(api.extensions.values())})
        elif path == "/_bench/ready":
            with api._cond:
                ready = api._runtime_waiting and set(api.extensions) <= api._extensions_waiting
            await answer_json(send, 200 if ready else 503, {"ready": ready})
        elif path == "/_bench/settled":
            last = api.current
            if last is not None and not await asyncio.to_thread(ends, api, last):
                await answer_json(send, 503, {"error": f"invocation {last.request_id} never ended"})
            else:
                await answer_json(send, 200, {"settled": True})
        else:
            await invoke(scope, receive, send)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    api = TimedRuntimeApi().__enter__()
    print(f"runtime-api {api.address}", flush=True)
    uvicorn.run(gateway(api), host="127.0.0.1", port=args.port, lifespan="off", access_log=False,
                log_level="warning")


if __name__ == "__main__":
    main()
