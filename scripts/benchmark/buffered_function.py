"""The buffered deployment's function, for the benchmark: `lambda_handler`, counted.

`python -m awslambdaric scripts.benchmark.buffered_function.lambda_handler` is
how Lambda's Python runtime runs `handler.lambda_function.lambda_handler`
(tests/support/lambda_runtime_api.py runtime_client_argv), its usage extension
registered over HTTP with the Runtime API named by AWS_LAMBDA_RUNTIME_API (the
stand-in, in API Gateway's process: scripts/benchmark/api_gateway.py). The one
addition: botocore hooks count the DynamoDB and Secrets Manager calls the
handler's clients make, and GET /_bench/aws-calls, an invocation like any
other, returns the running totals (scripts/benchmark/awscalls.py).
"""

from __future__ import annotations

from .awscalls import count_aws_calls

counted = count_aws_calls()

from handler.app import app as _gateway  # noqa: E402 - after the hooks, on the clients it will use


async def _aws_calls() -> dict[str, int]:
    return dict(counted)


_gateway.add_api_route("/_bench/aws-calls", _aws_calls, methods=["GET"], include_in_schema=False)

from handler.lambda_function import lambda_handler  # noqa: E402 - registers the extension

__all__ = ["lambda_handler"]
