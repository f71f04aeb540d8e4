"""One key at a fixed request rate across many Lambda instances: writes per DynamoDB item per second.

Drives the real ledger code (Ledger.reserve, then Ledger.record as the gateway
does on Lambda, where an instance serves one request at a time so no two
requests share a transaction) against a stand-in DynamoDB client that counts,
per item, the writes and write units it would take. Virtual time: each
request is stamped at its second, so the counts are per second whatever this
machine's speed. DynamoDB's limit is 1,000 write units per second per item
(per partition); a transactional write costs 2 units per KB, a plain one 1.

    .venv/bin/python -m scripts.benchmark.hot_key [--rate 2000] [--seconds 3] [--instances 200] [--shards 1 8]
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from handler.metering import hot_keys
from handler.keys.store import ApiKey
from handler.metering.ledger import Ledger
from handler.metering.items import Estimate, LedgerEntry, Limits
from handler.protocol.usage import Usage

ITEM_LIMIT = 1000  # write units per second on one item


class CountingDynamoDB:
    """Answers like DynamoDB that accepts everything, counting (second, item) writes and units."""

    def __init__(self) -> None:
        self.second = 0
        self.writes: Counter = Counter()
        self.units: Counter = Counter()

    def _item(self, op: dict) -> str:
        key = op.get("Key") or {name: op["Item"][name] for name in ("pk", "sk")}
        return f'{key["pk"]["S"]} {key["sk"]["S"]}'

    def update_item(self, **request) -> dict:
        item = self._item(request)
        self.writes[self.second, item] += 1
        self.units[self.second, item] += 1
        return {"Attributes": {"rpm_count": {"N": "1"}}}

    def transact_write_items(self, TransactItems: list, ClientRequestToken: str | None = None) -> dict:  # noqa: N803
        for entry in TransactItems:
            (_, op), = entry.items()
            item = self._item(op)
            self.writes[self.second, item] += 1
            self.units[self.second, item] += 2
        return {}


def simulate(rate: int, seconds: int, instances: int, limited: bool, shards: int = 1) -> dict:
    """The gateway's ledger calls for `rate` requests a second of one key (hot_keys.reserve / pick, then record)."""
    dynamodb = CountingDynamoDB()
    ledger = Ledger("usage", dynamodb=lambda: dynamodb)
    caps = {"rpm": 10**9, "monthly_tokens": 10**12, "monthly_usd": 10**6} if limited else {}
    key = ApiKey("k_hot", "hot", limits={**caps, "ledger_shards": shards})
    limits = Limits.of(key.limits)
    start = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
    for second in range(seconds):
        dynamodb.second = second
        for n in range(rate):
            at = start + timedelta(seconds=second, microseconds=n * 1_000_000 // rate)
            instance = random.randrange(instances)  # which Lambda instance serves it: each writes alone
            if limits.any:
                ledger_id, _ = hot_keys.reserve(ledger, key, at, limits, Estimate(1100, Decimal("0.02")))
            else:
                ledger_id = hot_keys.pick(key)
            ledger.record(LedgerEntry(
                key_id=ledger_id, request_id=f"req_{instance}_{second}_{n}", at=at.isoformat(),
                requested_model="anthropic/claude-sonnet-4-5", served_model="anthropic/claude-sonnet-4-5",
                attempts=[], usage=Usage(input_tokens=1000, output_tokens=100), cost_usd=Decimal("0.0045"),
                priced=True, stream=False, status="ok", reserved_tokens=1100 if limited else 0,
                reserved_usd=Decimal("0.02") if limited else Decimal(0)))
    per_item = defaultdict(lambda: {"writes": 0, "units": 0})
    for (second, item), count in dynamodb.writes.items():
        kind = item.split(" ", 1)[1].split("#", 1)[0]
        row = per_item[kind]
        row["writes"] = max(row["writes"], count)
        row["units"] = max(row["units"], dynamodb.units[second, item])
    per_pk: Counter = Counter()
    for (second, item), units in dynamodb.units.items():
        per_pk[second, item.split(" ", 1)[0]] += units
    total_units = sum(dynamodb.units.values())
    return {
        "rate": rate, "seconds": seconds, "instances": instances, "limits": limited, "ledger_shards": shards,
        "max_per_item_per_second": dict(per_item),
        "items_over_limit": sorted(kind for kind, row in per_item.items() if row["units"] > ITEM_LIMIT),
        # One partition key is one partition unless DynamoDB splits it for heat: 1,000 units a second too.
        "max_units_per_partition_key_per_second": max(per_pk.values()),
        "write_units_per_request": total_units / (rate * seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 8, 16])
    args = parser.parse_args()
    print(json.dumps([simulate(args.rate, args.seconds, args.instances, limited, shards)
                      for shards in args.shards for limited in (False, True)], indent=2))


if __name__ == "__main__":
    main()
