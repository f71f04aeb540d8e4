"""What the gateway's own telemetry costs per request: CPU to write it, bytes it adds to the log.

`python -m scripts.benchmark.telemetry_cost` writes N complete observations (a
non-streamed Messages request with its ledger entry, a capped key, under
Lambda's AWS_LAMBDA_FUNCTION_VERSION, as deployed) through the real Telemetry,
into a buffer, and prints the process CPU per request and the bytes per request
(the request line and whatever metric documents go with it). The bytes are one
input of the cost table (scripts/benchmark/cost.py): CloudWatch Logs bills
ingestion per GB.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import time
from decimal import Decimal


def observation(index: int):
    from handler.metering.items import LedgerEntry
    from handler.observe.observation import Observation
    from handler.protocol.usage import Usage

    model = "anthropic/claude-sonnet-4-5"
    request_id = f"req_{index:024x}"
    entry = LedgerEntry(key_id="k_3f9a1c2b7d", request_id=request_id, at="2026-12-07T01:30:00+00:00",
                        requested_model=model, served_model=model,
                        attempts=[{"model": model, "status": 200, "ms": 812}],
                        usage=Usage(input_tokens=1200, output_tokens=350, cache_read_input_tokens=4000),
                        cost_usd=Decimal("0.00996"), priced=True, stream=False, status="ok")
    return Observation("POST", "/v3/v1/messages", 0.0, request_id=request_id,
                       lambda_request_id="8f5e3f1c-3b1e-4c1a-9d7e-2f4b5c6d7e8f",
                       api_gateway_request_id="Jd9sQgk1IAMEVxw=", trace_id="1-6759e988-bd862e3fe1be46a994272793",
                       key_id="k_3f9a1c2b7d", requested_model=model, stream=False, served_model=model,
                       expects_entry=True, status=200, ttfb_ms=830, upstream_wait_ms=812, latency_ms=831,
                       month_cap_share=0.42, entry=entry, ledger="written")


def measure(requests: int) -> dict:
    os.environ.setdefault("AWS_LAMBDA_FUNCTION_VERSION", "3")
    from handler.observe.telemetry import Telemetry

    telemetry = Telemetry(service="edenai-gateway", namespace="EdenAIGateway", spend_share=0.8)
    observations = [observation(i) for i in range(requests)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        started = time.process_time()
        for o in observations:
            telemetry.started(o)
            telemetry.response_ended(o)
        cpu = time.process_time() - started
    text = out.getvalue()
    lines = text.splitlines()
    return {"requests": requests, "cpu_ms_per_request": cpu * 1000 / requests,
            "log_bytes_per_request": len(text.encode()) / requests,
            "documents_per_request": len(lines) / requests,
            "sample": json.loads(lines[0]) if lines else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    result = measure(args.requests)
    print(json.dumps({k: v for k, v in result.items() if k != "sample"}))


if __name__ == "__main__":
    main()
