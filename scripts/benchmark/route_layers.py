"""The CPU a request spends getting to its endpoint: FastAPI's router against exact routes.

The gateway's figure (scripts/bench) moves by a few tenths of a millisecond from
run to run on a shared machine, more than the routing layers cost. This builds
the app's route table twice, with a fixed JSON answer behind the same endpoint
signatures and the gateway's request-id and framing middlewares (not the
telemetry one, whose log line per request would weigh the same on both): once
routed by FastAPI, once with `/messages` and `/count_tokens` answered first
(handler/exact_routes.py). It calls each in-process, as uvicorn would, with
POST /v3/v1/messages; the process CPU divided by the requests is the figure.
Variants alternate, so a busy machine weighs on each alike.

    python -m scripts.benchmark.route_layers [--requests 5000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from handler.app import RefuseAmbiguousFraming, ResponseHeadersMiddleware
from handler.exact_routes import ExactRoutesApp

ANSWER = {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
          "content": [{"type": "text", "text": "Hello! How can I help you today?"}],
          "stop_reason": "end_turn", "usage": {"input_tokens": 12, "output_tokens": 9}}
HEADERS = [(b"host", b"127.0.0.1:8000"), (b"accept", b"application/json"), (b"content-type", b"application/json"),
           (b"user-agent", b"Anthropic/Python 0.75.0"), (b"x-api-key", b"egw_bench"),
           (b"anthropic-version", b"2023-06-01"), (b"x-stainless-lang", b"python"),
           (b"x-stainless-retry-count", b"0"), (b"content-length", b"97")]
BODY = b'{"model":"anthropic/claude-sonnet-4-5","max_tokens":20,"messages":[{"role":"user","content":"hello"}]}'


def build(cls: type[FastAPI], *, first: bool) -> FastAPI:
    """handler/app.py's route table and middlewares, each endpoint a fixed answer."""
    app = cls(docs_url=None, redoc_url=None, redirect_slashes=False)
    app.add_middleware(RefuseAmbiguousFraming)
    app.add_middleware(ResponseHeadersMiddleware)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict:
        return {"status": "ok"}

    @app.post("/v3/v1/messages")
    async def create_message(request: Request) -> JSONResponse:
        return JSONResponse(ANSWER)

    @app.post("/v3/v1/messages/count_tokens")
    async def count_message_tokens(request: Request) -> JSONResponse:
        return JSONResponse({"input_tokens": 12})

    @app.get("/v3/v1/models")
    async def list_models(request: Request, before_id: str | None = None, after_id: str | None = None,
                          limit: int = 20) -> dict:
        return {}

    @app.get("/v3/v1/models/{model_id:path}")
    async def get_model(request: Request, model_id: str) -> dict:
        return {}

    @app.get("/v3/usage")
    async def usage(request: Request, month: str | None = None) -> dict:
        return {}

    if first:
        app.answer_first(create_message, count_message_tokens)
    return app


async def drive(app, requests: int) -> None:
    async def receive():
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message) -> None:
        pass

    for _ in range(requests):
        await app({"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
                   "method": "POST", "scheme": "http", "path": "/v3/v1/messages", "raw_path": b"/v3/v1/messages",
                   "query_string": b"", "root_path": "", "headers": HEADERS, "server": ("127.0.0.1", 8000),
                   "client": ("127.0.0.1", 50000), "state": {}}, receive, send)


async def measure(requests: int, rounds: int) -> dict[str, list[float]]:
    variants = {"FastAPI's router": build(FastAPI, first=False),
                "answered first (exact_routes)": build(ExactRoutesApp, first=True)}
    for app in variants.values():
        await drive(app, 200)  # the middleware stacks built, the code warm
    found: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, app in variants.items():
            started = time.process_time()
            await drive(app, requests)
            found[name].append((time.process_time() - started) / requests * 1000)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.benchmark.route_layers",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="requests per variant and round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    found = asyncio.run(measure(args.requests, args.rounds))
    for name, values in found.items():
        print(f"{name:<32} {statistics.median(values):.3f} ms CPU/request "
              f"(median of {args.rounds} rounds of {args.requests}; min {min(values):.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
