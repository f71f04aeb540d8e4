"""The gateway under uvicorn (one worker), plus a route that reports its AWS calls.

Equivalent to `python -m uvicorn handler.app:app --http handler.runtime.serving:GuardedHTTPProtocol`
(the deployed protocol; uvicorn's default event loop, uvloop when installed), except that botocore hooks count the DynamoDB and Secrets Manager calls the
app's own clients make, and GET /_bench/aws-calls returns the running totals
(the orchestrator diffs two snapshots). The hooks are registered before the
app is imported, on the clients handler.aws hands out.

`--mode streaming` is the streaming deployment instead: `handler.runtime.snapstart:streaming_app`
with GATEWAY_METER_BEFORE_RESPONSE_END on (as template.yaml sets it) and its
usage-writing extension registered with a stand-in Runtime API (tests/support);
an outer layer plays the Lambda Web Adapter's part for each request: it starts
an invocation, passes its context in `x-amzn-lambda-context` and posts the
answer when the response's last byte is sent. A request that arrives while the
extension still writes the last one's usage is not held for it: Lambda would
give it to another execution environment (here the write shares the CPU with it).

    python -m scripts.benchmark.gateway_server --port N [--mode streaming]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os

import uvicorn

from .awscalls import count_aws_calls


def as_lambda_invocations(inner, api):
    """Each request an invocation of one execution environment, as the Web Adapter forwards it."""

    async def app(scope, receive, send):
        if scope["type"] != "http" or scope["path"] in ("/health", "/_bench/aws-calls"):
            await inner(scope, receive, send)
            return
        invocation = api.begin(None, runtime_in_process=True, overlap=True)
        context = {"request_id": invocation.request_id, "deadline": invocation.deadline_ms}
        headers = [*scope["headers"], (b"x-amzn-lambda-context", json.dumps(context).encode())]

        async def send_and_answer(message):
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                api.answer(invocation.request_id, response={})

        await inner({**scope, "headers": headers}, receive, send_and_answer)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=["uvicorn", "streaming"], default="uvicorn")
    args = parser.parse_args()
    counted = count_aws_calls()
    api = None
    if args.mode == "streaming":
        from tests.support.lambda_runtime_api import LambdaRuntimeApi

        api = LambdaRuntimeApi().__enter__()
        os.environ.update(AWS_LAMBDA_RUNTIME_API=api.address, GATEWAY_METER_BEFORE_RESPONSE_END="true")
    from handler.app import app

    if api is not None:
        from handler.runtime import snapstart

        served = as_lambda_invocations(snapstart.streaming_app, api)
        if list(api.extensions.values()) != ["edenai-gateway-ledger"]:
            raise SystemExit(f"the usage extension did not register: {api.extensions}")
    else:
        served = app

    async def aws_calls() -> dict[str, int]:
        if api is not None and api.current is not None:  # the last invocation's write, counted too
            await asyncio.to_thread(api.completed, api.current, 30.0)
        return dict(counted)

    app.add_api_route("/_bench/aws-calls", aws_calls, methods=["GET"], include_in_schema=False)
    uvicorn.run(served, host="127.0.0.1", port=args.port, http="handler.runtime.serving:GuardedHTTPProtocol")


if __name__ == "__main__":
    main()
