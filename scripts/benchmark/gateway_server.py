"""The gateway under uvicorn (one worker), plus a route that reports its AWS calls.

Equivalent to `python -m uvicorn handler.app:app --http handler.runtime.serving:GuardedHTTPProtocol`
(the deployed protocol; uvicorn's default event loop, uvloop when installed), except that botocore hooks count the DynamoDB and Secrets Manager calls the
app's own clients make, and GET /_bench/aws-calls returns the running totals
(the orchestrator diffs two snapshots). The hooks are registered before the
app is imported, on the clients handler.aws hands out.

The streaming deployment is not served here: scripts/benchmark/web_adapter.py and
streaming_function.py run it as two processes, as Lambda does.

    python -m scripts.benchmark.gateway_server --port N
"""

from __future__ import annotations

import argparse

import uvicorn

from .awscalls import count_aws_calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    counted = count_aws_calls()
    from handler.app import app

    async def aws_calls() -> dict[str, int]:
        return dict(counted)

    app.add_api_route("/_bench/aws-calls", aws_calls, methods=["GET"], include_in_schema=False)
    uvicorn.run(app, host="127.0.0.1", port=args.port, http="handler.runtime.serving:GuardedHTTPProtocol")


if __name__ == "__main__":
    main()
