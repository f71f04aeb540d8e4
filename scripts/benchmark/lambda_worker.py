"""The Lambda path as deployed (buffered mode): `lambda_handler` invoked in-process, no HTTP server,
with its usage-writing extension registered with a stand-in Runtime API (tests/support).

One invocation at a time, as in one Lambda execution environment, with
API Gateway HTTP API (payload 2.0) events. The worker plays the runtime's part
(it takes the event and posts the handler's answer without the runtime
client's HTTP round trips); the extension is the real one, over HTTP: it
writes the usage after the answer, and the next invocation starts only once it
has asked for its next event, as Lambda does. Latency is what the caller sees:
from the invocation's start to the handler's answer. The worker is both client
and server, so its CPU per request is the handler's and the extension's.
DynamoDB and Secrets Manager calls are counted with a botocore hook on the
handler's own clients and returned with every batch.

    python -m scripts.benchmark.lambda_worker     (speaks scripts.benchmark.protocol)
"""

from __future__ import annotations

import base64
import os
import sys
import time

from .awscalls import count_aws_calls
from .protocol import Channel, Samples, looks_complete


def main() -> None:
    channel = Channel()
    from tests.support.lambda_runtime_api import LambdaRuntimeApi

    api = LambdaRuntimeApi().__enter__()
    os.environ["AWS_LAMBDA_RUNTIME_API"] = api.address  # the handler's init registers its extension
    from handler.lambda_function import lambda_handler
    from tests.support.lambda_events import LambdaContext, http_api_event

    if list(api.extensions.values()) != ["edenai-gateway-ledger"]:
        raise SystemExit(f"the usage extension did not register: {api.extensions}")
    counted = count_aws_calls()
    channel.send({"event": "ready"})

    def batch(event: dict, count: int, expect: str) -> Samples:
        samples = Samples()
        started = time.perf_counter()
        for _ in range(count):
            invocation = api.begin(dict(event), runtime_in_process=True)  # after the last one's write
            begun = time.perf_counter()
            try:
                response = lambda_handler(invocation.event, LambdaContext(aws_request_id=invocation.request_id))
            except Exception as exc:  # noqa: BLE001 - counted, the run goes on
                api.answer(invocation.request_id, error={"errorType": type(exc).__name__})
                samples.failed(f"{type(exc).__name__}: {exc}")
                continue
            elapsed = time.perf_counter() - begun
            api.answer(invocation.request_id, response=response)
            body = response.get("body") or ""
            raw = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
            if response.get("statusCode") == 200 and looks_complete(raw, expect):
                samples.ok(elapsed, elapsed)  # Mangum buffers: the first byte comes with the last
            else:
                samples.failed(f"HTTP {response.get('statusCode')}: {raw[:200]!r}")
        if count:
            api.completed(invocation)  # the last write is done (and counted) before the batch reports
        samples.wall_s = time.perf_counter() - started
        return samples

    while (job := channel.receive()) is not None and job.get("cmd") == "run":
        event = http_api_event("POST", job["path"], body=job["body"].encode(), headers=job["headers"])
        batch(event, job["warmup"], job["expect"])
        channel.send({"event": "warmed"})
        if (channel.receive() or {}).get("cmd") != "go":
            break
        counted.clear()
        samples = batch(event, job["requests"], job["expect"])
        channel.send({**samples.message(), "aws_calls": dict(counted)})
    sys.exit(0)


if __name__ == "__main__":
    main()
