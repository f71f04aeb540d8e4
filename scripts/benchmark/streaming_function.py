"""The streaming deployment's function process, for the benchmark: run.sh's app, counted.

`python -m uvicorn scripts.benchmark.streaming_function:app` with run.sh's own
options (scripts/_package.py streaming_uvicorn_argv) serves exactly run.sh's
`handler.runtime.snapstart:streaming_app`, its usage extension registered over
HTTP with the Runtime API named by AWS_LAMBDA_RUNTIME_API (the stand-in, in the
Web Adapter's process: scripts/benchmark/web_adapter.py), and
GATEWAY_METER_BEFORE_RESPONSE_END as template.yaml sets it. The one addition:
botocore hooks count the DynamoDB and Secrets Manager calls the app's clients
make, and GET /_bench/aws-calls returns the running totals (scripts/benchmark/awscalls.py).
"""

from __future__ import annotations

from .awscalls import count_aws_calls

counted = count_aws_calls()

from handler.app import app as _gateway  # noqa: E402 - after the hooks, on the clients it will use


async def _aws_calls() -> dict[str, int]:
    return dict(counted)


_gateway.add_api_route("/_bench/aws-calls", _aws_calls, methods=["GET"], include_in_schema=False)

from handler.runtime.snapstart import streaming_app as app  # noqa: E402 - registers the extension

__all__ = ["app"]
