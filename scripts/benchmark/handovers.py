"""The CPU buffered mode spends per invocation outside the app: the runtime, the handler, the hand-over.

Lambda's runtime client (awslambdaric: its `next`, the event's JSON, the
response's JSON and its POST) runs `handler.lambda_function.lambda_handler`
as bootstrap.run does, against the stand-in Runtime and Extensions API
(tests/support/lambda_runtime_api.py) in a process of its own, which starts
each invocation as soon as the last one is over (`--idle-ms N` after it). The
handler's extension is the deployed one, registered at import; the app is a
fixed answer (through `OnePassMangum`, as deployed) that records one usage
entry, and the ledger keeps entries in memory: what is counted is the handler
around the app, the hand-over to the extension, the extension's turn around
the write and its `next`, not the write (scripts/benchmark/ledger_write.py)
nor the request (request_path.py). `--entries 0` records none, so nothing is
written. `--threads` prints each round's CPU by thread (from the kernel's
clock ticks: a rough split). `--thread-polling` makes the runtime client poll `next`
from a thread started for each invocation, as awslambdaric does when
AWS_EXECUTION_ENV names python3.12 or later (Lambda's managed runtimes).
Process CPU divided by the invocations is the figure; `--trees` compares
checkouts, rounds alternating, so a busy machine weighs on each alike.

    python -m scripts.benchmark.handovers [--invocations 3000] [--rounds 3] [--idle-ms N]
        [--entries 0|1] [--thread-polling] [--threads] [--trees DIR ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

STAND_IN = """
import json, sys, time
from tests.support.lambda_events import http_api_event
from tests.support.lambda_runtime_api import LambdaRuntimeApi

idle_s = float(sys.argv[1]) / 1000
event = http_api_event("POST", "/v3/v1/messages", body={"model": "anthropic/claude-sonnet-4-5", "max_tokens": 20,
                       "messages": [{"role": "user", "content": "hello"}]},
                       headers={"x-api-key": "egw_bench", "anthropic-version": "2023-06-01",
                                "user-agent": "Anthropic/Python 0.75.0", "accept": "application/json"})
with LambdaRuntimeApi() as api:
    print(api.address, flush=True)
    while True:
        api.completed(api.invoke(event))
        api.invocations.clear()
        if idle_s:
            time.sleep(idle_s)
"""

CLIENT = """
import io, os, sys, time
from datetime import datetime, timezone
from decimal import Decimal

address, invocations, entries, polling = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "yes"
os.environ["AWS_LAMBDA_RUNTIME_API"] = address
if polling:
    os.environ["AWS_EXECUTION_ENV"] = "AWS_Lambda_python3.12"
sys.stdout = io.StringIO()
from awslambdaric import bootstrap
from awslambdaric.lambda_runtime_client import LambdaRuntimeClient
from handler import lambda_function  # registers the extension: init
from handler.metering.items import LedgerEntry
from handler.protocol.usage import Usage
from handler.runtime.one_pass_mangum import OnePassMangum
from scripts.benchmark.lambda_adapter import ANSWER, RESPONSE_HEADERS

ENTRY = LedgerEntry(key_id="k_bench", request_id="req_0123456789abcdef01234567",
                    at=datetime.now(timezone.utc).isoformat(), requested_model="anthropic/claude-sonnet-4-5",
                    served_model="anthropic/claude-sonnet-4-5",
                    attempts=[{"model": "anthropic/claude-sonnet-4-5", "status": 200, "latency_ms": 812}],
                    usage=Usage(input_tokens=12, output_tokens=9), cost_usd=Decimal("0.000171"), priced=True,
                    stream=False, status="ok")

class MemoryLedger:
    def record_batch(self, batch):
        return ["written"] * len(batch)
    def spill_all(self, batch, failure):
        return ["logged"] * len(batch)

async def answer(scope, receive, send):
    await receive()
    for _ in range(entries):
        await lambda_function._outbox.record(ENTRY)  # as the gateway records the request's usage
    await send({"type": "http.response.start", "status": 200, "headers": RESPONSE_HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})

lambda_function._mangum = OnePassMangum(answer, after=lambda: lambda_function.app.state.gateway.drain())
lambda_function._after_response._ledger = MemoryLedger()
client = LambdaRuntimeClient(address, polling)

def thread_ticks():
    # CPU clock ticks of each of this process's threads, by name (Linux)
    import threading
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    found = {}
    for tid in os.listdir("/proc/self/task"):
        fields = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        name = names.get(int(tid), tid)
        found[name] = found.get(name, 0) + int(fields[11]) + int(fields[12])
    return found

def one(log_sink):
    request = client.wait_next_invocation()
    bootstrap.handle_event_request(client, lambda_function.lambda_handler, request.invoke_id, request.event_body,
                                   request.content_type, request.client_context, request.cognito_identity,
                                   request.invoked_function_arn, request.deadline_time_in_ms, request.tenant_id,
                                   log_sink, request.invocation_id)

with bootstrap.create_log_sink() as log_sink:
    bootstrap._setup_logging(bootstrap._AWS_LAMBDA_LOG_FORMAT, bootstrap._AWS_LAMBDA_LOG_LEVEL, log_sink)  # as run() does
    for _ in range(300):
        one(log_sink)
    ticks = thread_ticks()
    started = time.process_time()
    for _ in range(invocations):
        one(log_sink)
    spent = time.process_time() - started
    ticks = {name: thread_ticks().get(name, 0) - spent_before for name, spent_before in ticks.items()}
for name, spent_there in ticks.items():  # clock ticks (10 ms): a rough split
    print(f"  {name}: {spent_there * 1e4 / invocations:.0f} µs/invocation", file=sys.stderr)
print(spent * 1e6 / invocations, file=sys.stderr)
"""


def one_round(tree: Path, args) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    for name in ("AWS_EXECUTION_ENV", "AWS_LAMBDA_LOG_LEVEL", "AWS_LAMBDA_LOG_FORMAT"):
        env.pop(name, None)
    if args.log_level:  # what Lambda sets for a function whose LoggingConfig has LogFormat JSON
        env.update(AWS_LAMBDA_LOG_FORMAT="JSON", AWS_LAMBDA_LOG_LEVEL=args.log_level)
    stand_in = subprocess.Popen([sys.executable, "-c", STAND_IN, str(args.idle_ms)], env={**env, "PYTHONPATH": str(ROOT)},
                                cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        address = stand_in.stdout.readline().strip()
        done = subprocess.run([sys.executable, "-c", CLIENT, address, str(args.invocations), str(args.entries),
                               "yes" if args.thread_polling else "no"],
                              env=env, cwd=tree, capture_output=True, text=True, timeout=900)
    finally:
        stand_in.kill()
        stand_in.wait()
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    *threads, figure = done.stderr.rstrip().splitlines()
    if args.threads:
        print(f"{tree}: {float(figure):.1f} µs;", "; ".join(line.strip() for line in threads if line.startswith("  ")))
    return float(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.benchmark.handovers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--invocations", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-ms", type=float, default=0.0, help="the stand-in waits this long between invocations")
    parser.add_argument("--entries", type=int, choices=(0, 1), default=1, help="usage entries an invocation records")
    parser.add_argument("--thread-polling", action="store_true", help="awslambdaric's `next` from a thread")
    parser.add_argument("--log-level", help="the runtime's JSON logging at this level (AWS_LAMBDA_LOG_LEVEL)")
    parser.add_argument("--threads", action="store_true", help="each round's split by thread (clock ticks: rough)")
    parser.add_argument("--trees", type=Path, nargs="+", default=[ROOT])
    args = parser.parse_args(argv)
    results: dict[Path, list[float]] = {tree: [] for tree in args.trees}
    for _ in range(args.rounds):
        for tree in args.trees:
            results[tree].append(one_round(tree, args))
    for tree, values in results.items():
        print(f"{tree}: median {statistics.median(values):.1f} µs of CPU per invocation "
              f"(rounds: {', '.join(f'{v:.1f}' for v in values)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
