"""CPU per ledger write: botocore's client against the ledger's own TransactWriteItems caller.

`python -m scripts.benchmark.ledger_write` starts the benchmark's moto server
(scripts/benchmark/moto_server.py), creates the usage table, and writes the
same kind of transaction the gateway writes per request (one request record,
its day and month aggregates: `items.ledger_transaction`) through each
caller in turn, alternating blocks so both see the same machine load. It
prints this process's CPU per write for each (moto's own CPU is its
process's, not counted): `botocore` is `aws.client("dynamodb").transact_write_items`,
`wire` is `handler.metering.transact_wire`.

`--against keepalive` writes to a loopback endpoint in its own process that
answers every call as DynamoDB answers a written transaction (`{}`) on kept-alive
connections (tests/support/dynamodb_faults.py), as DynamoDB keeps them: moto's
server closes each connection after its answer, so against moto each write
of either caller also opens a connection.

`--build-and-sign` leaves the network out: the CPU of one write's building (its
items: `items.ledger_transaction`) and of its way to the wire (the hooks, the JSON body,
the signature) with the writer's send answering at once as DynamoDB answers a written
transaction; `--trees` compares checkouts (each imported through PYTHONPATH), rounds
alternating, so a busy machine weighs on each alike.

    python -m scripts.benchmark.ledger_write [--writes 2000] [--blocks 4] [--against moto|keepalive]
    python -m scripts.benchmark.ledger_write --build-and-sign [--writes 5000] [--blocks 4] [--trees DIR ...]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from .procs import Process, free_port

ROOT = Path(__file__).resolve().parents[2]
TABLE = "bench-ledger-write"


def entry(index: int):
    from handler.metering.items import LedgerEntry
    from handler.protocol.usage import Usage

    model = "anthropic/claude-sonnet-4-5"
    return LedgerEntry(key_id="k_3f9a1c2b7d", request_id=f"req_{index:024x}", at="2026-12-07T01:30:00+00:00",
                       requested_model=model, served_model=model,
                       attempts=[{"model": model, "status": 200, "ms": 812}],
                       usage=Usage(input_tokens=1200, output_tokens=350, cache_read_input_tokens=4000),
                       cost_usd=Decimal("0.00996"), priced=True, stream=False, status="ok")


KEEPALIVE_SERVER = """
import time
from tests.support.dynamodb_faults import WRITTEN, FaultyDynamoDB
with FaultyDynamoDB([WRITTEN], keep_calls=False) as dynamodb:
    print(dynamodb.url, flush=True)
    time.sleep(3600)
"""


def measure(writes: int, blocks: int, *, create_table: bool = True) -> dict:
    from handler import aws
    from handler.metering import transact_wire
    from handler.metering.items import ledger_transaction
    from handler.metering.ledger import Ledger

    if create_table:
        Ledger(TABLE).create_table()
    client = aws.client("dynamodb")
    callers = {
        "botocore": lambda items: client.transact_write_items(TransactItems=items),
        "wire": transact_wire.transact_write_items,
    }
    numbers = iter(range(10**9))
    for name, call in callers.items():  # warm: connections open, models loaded
        for _ in range(10):
            call(ledger_transaction(TABLE, [entry(next(numbers))], 400))
    gc.collect()
    gc.freeze()  # as the gateway freezes its init heap (handler/runtime/heap.py)
    cpu = dict.fromkeys(callers, 0.0)
    wall = dict.fromkeys(callers, 0.0)
    per_block = writes // blocks
    for _ in range(blocks):
        for name, call in callers.items():
            # Made per block, not all at first: thousands of waiting transactions would make each
            # garbage collection the calls set off walk them, a cost of the bench, not of the write.
            batch = [ledger_transaction(TABLE, [entry(next(numbers))], 400) for _ in range(per_block)]
            started, clock = time.process_time(), time.perf_counter()
            for items in batch:
                call(items)
            cpu[name] += time.process_time() - started
            wall[name] += time.perf_counter() - clock
    done = per_block * blocks
    result = {name: {"cpu_ms_per_write": round(cpu[name] * 1000 / done, 4),
                     "wall_ms_per_write": round(wall[name] * 1000 / done, 4)} for name in callers}
    result["saved_cpu_ms_per_write"] = round((cpu["botocore"] - cpu["wire"]) * 1000 / done, 4)
    result["writes_each"] = done
    return result


BUILD_AND_SIGN = """
import gc, sys, time, uuid
from handler.metering import transact_wire
from handler.metering.items import ledger_transaction
from scripts.benchmark.ledger_write import TABLE, entry

writes = int(sys.argv[1])
writer = transact_wire.writer()
writer._send = lambda headers, body: (200, {}, b"{}")  # DynamoDB's answer to a written transaction
entries = [entry(n) for n in range(writes)]
def run():
    for one in entries:
        writer.transact_write_items(ledger_transaction(TABLE, [one], 400), str(uuid.uuid4()))
run()  # warm
gc.collect()
gc.freeze()
started = time.process_time()
run()
print((time.process_time() - started) * 1000 / writes)
"""


def build_and_sign(trees: list[Path], writes: int, blocks: int) -> None:
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
           # On Lambda botocore's before-call hook adds the trace header, signed around
           "AWS_LAMBDA_FUNCTION_NAME": "bench", "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793"}
    env.pop("AWS_PROFILE", None)
    results: dict[Path, list[float]] = {tree: [] for tree in trees}
    for _ in range(blocks):
        for tree in trees:
            done = subprocess.run([sys.executable, "-c", BUILD_AND_SIGN, str(writes)],
                                  env={**env, "PYTHONPATH": f"{tree}{os.pathsep}{ROOT}"}, cwd=tree,
                                  capture_output=True, text=True, check=True, timeout=600)
            results[tree].append(float(done.stdout.strip()))
    for tree, values in results.items():
        print(f"{tree}: median {statistics.median(values):.4f} ms of CPU to build and sign a write "
              f"(rounds: {', '.join(f'{v:.4f}' for v in values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=2000, help="writes per caller")
    parser.add_argument("--blocks", type=int, default=4, help="alternating blocks per caller")
    parser.add_argument("--against", choices=["moto", "keepalive"], default="moto")
    parser.add_argument("--build-and-sign", action="store_true", help="no network: building and signing only")
    parser.add_argument("--trees", type=Path, nargs="+", default=[ROOT], help="with --build-and-sign")
    args = parser.parse_args()
    if args.build_and_sign:
        build_and_sign(args.trees, args.writes, args.blocks)
        return
    credentials = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    if args.against == "keepalive":
        with tempfile.TemporaryDirectory() as logs:
            server = Process("dynamodb", [sys.executable, "-c", KEEPALIVE_SERVER], env=dict(os.environ),
                             cwd=ROOT, log_dir=Path(logs))
            try:
                os.environ.pop("AWS_PROFILE", None)
                os.environ.update(credentials, AWS_ENDPOINT_URL=server.first_line(timeout=30).strip())
                print(json.dumps(measure(args.writes, args.blocks, create_table=False)))
            finally:
                server.stop()
        return
    port = free_port()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    with tempfile.TemporaryDirectory() as logs:
        argv = [sys.executable, "-m", "scripts.benchmark.moto_server", "-H", "127.0.0.1", "-p", str(port)]
        moto = Process("moto", argv, env={**os.environ, **env}, cwd=ROOT, log_dir=Path(logs))
        try:
            moto.wait_http(f"http://127.0.0.1:{port}/moto-api/", timeout=30)
            os.environ.pop("AWS_PROFILE", None)
            os.environ.update(env)
            print(json.dumps(measure(args.writes, args.blocks)))
        finally:
            moto.stop()


if __name__ == "__main__":
    main()
