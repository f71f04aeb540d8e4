"""10,000 keys through gateway-admin and the gateway, counting Secrets Manager calls.

Everything on loopback: a moto server (with tests/support's fixes), the fake
upstream, the gateway under uvicorn. gateway-admin runs in-process (its `run`
entry point, what the console script calls) so its calls are counted by the
same botocore hook as the gateway's.

    .venv/bin/python -m scripts.benchmark.keys_at_scale [--keys 10000] [--shards 64] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
import time
from collections import Counter
from decimal import Decimal
from concurrent.futures import ThreadPoolExecutor

import httpx

from handler import admin, aws
from handler.metering.ledger import Ledger
from handler.metering.items import LedgerEntry
from handler.protocol.usage import Usage
from handler.keys.store import new_key
from tests.support.fake_upstream import FakeUpstream
from tests.support.stack import UvicornThread, new_stack, start_moto
from handler.app import create_app

CLAUDE = "anthropic/claude-sonnet-4-5"


class Calls:
    """Secrets Manager and DynamoDB calls by operation, the providers secret's reads left out."""

    def __init__(self) -> None:
        self.counted: Counter = Counter()
        aws.client("secretsmanager").meta.events.register("before-call.secretsmanager.*", self._count)
        aws.client("dynamodb").meta.events.register("before-call.dynamodb.*", self._count)

    def _count(self, event_name, params=None, **_) -> None:
        body = json.loads((params or {}).get("body") or b"{}")
        if "/providers" not in body.get("SecretId", ""):
            self.counted[event_name.split(".", 1)[1]] += 1

    def take(self) -> dict:
        taken, self.counted = dict(self.counted), Counter()
        return taken


def cli(settings, *argv: str) -> tuple[str, float]:
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = admin.run(list(argv), settings)
    if code:
        raise SystemExit(f"gateway-admin {' '.join(argv)} failed ({code})")
    return out.getvalue(), time.perf_counter() - started


def requests(url: str, keys: list[str], *, path: str = "/v3/v1/models", workers: int = 8) -> tuple[Counter, float]:
    def one(key: str) -> int:
        if path == "/v3/v1/messages":
            return http.post(url + path, headers={"x-api-key": key},
                             json={"model": CLAUDE, "max_tokens": 5,
                                   "messages": [{"role": "user", "content": "hi"}]}).status_code
        return http.get(url + path, headers={"x-api-key": key}).status_code

    started = time.perf_counter()
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=workers)) as http, \
            ThreadPoolExecutor(workers) as pool:
        statuses = Counter(pool.map(one, keys))
    return statuses, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--shards", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    results: dict = {"keys": args.keys, "shards": args.shards}

    def note(name: str, **values) -> None:
        results[name] = values
        print(f"{name}: {json.dumps(values)}", file=sys.stderr)

    moto, _ = start_moto()
    with FakeUpstream() as fake:
        stack = new_stack(fake.url, key_shards=args.shards)  # production cache settings
        settings = stack.settings
        calls = Calls()
        _, seconds = cli(settings, "keys", "reshard", "--json")
        note("reshard", seconds=round(seconds, 2), calls=calls.take())
        output, seconds = cli(settings, "keys", "create", "--name", "bulk", "--count", str(args.keys), "--json")
        created = json.loads(output)
        note("create", seconds=round(seconds, 2), calls=calls.take())
        sizes = [len(aws.secret_payload(aws.read_json_secret(f"{settings.keys_secret_id}/shard-{i:04d}-of-"
                                                             f"{args.shards:04d}"))) for i in range(args.shards)]
        calls.take()
        note("shards", largest_bytes=max(sizes), smallest_bytes=min(sizes), mean_bytes=sum(sizes) // len(sizes))
        output, seconds = cli(settings, "keys", "list", "--json")
        note("list", seconds=round(seconds, 2), listed=len(json.loads(output)), calls=calls.take())

        server = UvicornThread(create_app(settings)).start()
        try:
            keys = [c["key"] for c in created]
            statuses, seconds = requests(server.url, keys)
            note("first_pass_cold", requests=len(keys), statuses=dict(statuses), seconds=round(seconds, 2),
                 calls=calls.take(), loads=server.app.state.keys.loads)
            statuses, seconds = requests(server.url, keys[:1000])
            note("warm_pass", requests=1000, statuses=dict(statuses), seconds=round(seconds, 2), calls=calls.take())
            statuses, seconds = requests(server.url, keys[:500], path="/v3/v1/messages")
            note("messages", requests=500, statuses=dict(statuses), seconds=round(seconds, 2),
                 calls=calls.take(), upstream_calls=fake.count())
            unknown = [new_key() for _ in range(1000)]
            statuses, seconds = requests(server.url, unknown)
            note("unknown_keys", requests=1000, statuses=dict(statuses), seconds=round(seconds, 2),
                 calls=calls.take(), refresh_gap_s=settings.secret_refresh_gap)
            ledger, month = Ledger(settings.usage_table), time.strftime("%Y-%m", time.gmtime())
            entries = [LedgerEntry(key_id=c["key_id"], request_id=f"req_scale_{n}",
                                   at=time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                                   requested_model=CLAUDE, served_model=CLAUDE, attempts=[],
                                   usage=Usage(input_tokens=n % 977, output_tokens=n % 131),
                                   cost_usd=Decimal(n % 977) / 1000, priced=True, stream=False, status="ok")
                       for n, c in enumerate(created)]
            for start in range(0, len(entries), 30):
                ledger.record_batch(entries[start:start + 30])
            calls.take()
            for argv in (("usage", "--json"), ("usage", "--top", "10"), ("usage", "--csv")):
                output, seconds = cli(settings, *argv, "--month", month)
                note("usage " + " ".join(argv[1:]), seconds=round(seconds, 2), output_lines=output.count("\n"),
                     calls=calls.take())
            path = "/tmp/keys_at_scale_ids.txt"
            with open(path, "w", encoding="utf-8") as handle:
                handle.write("\n".join(c["key_id"] for c in created))
            _, seconds = cli(settings, "keys", "revoke", "--file", path, "--json")
            note("revoke_all", seconds=round(seconds, 2), calls=calls.take())
        finally:
            server.stop()
        server = UvicornThread(create_app(settings)).start()  # a new instance: what every one sees after the TTL
        try:
            statuses, seconds = requests(server.url, keys)
            note("after_revoke_new_instance", requests=len(keys), statuses=dict(statuses),
                 seconds=round(seconds, 2), calls=calls.take())
        finally:
            server.stop()
            moto.stop()
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
