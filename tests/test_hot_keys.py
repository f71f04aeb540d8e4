"""A busy key's usage spread over ledger shards: items under DynamoDB's per-item rate, caps still hard.

The capacity claim is shown by simulation (the real ledger code against a
DynamoDB stand-in that counts writes per item per second); the behaviour by
the gateway under uvicorn against the moto server.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import boto3
import httpx
import pytest

from handler.metering import hot_keys
from handler.metering.items import Limits, from_item
from scripts.benchmark.hot_key import ITEM_LIMIT, simulate

CLAUDE = "anthropic/claude-sonnet-4-5"


@pytest.mark.parametrize("shards", [1, 3, 7, 16])
@pytest.mark.parametrize("limits", [Limits(rpm=100, monthly_tokens=1_000_003, monthly_usd=Decimal("10")),
                                    Limits(rpm=5, monthly_tokens=16, monthly_usd=Decimal("0.000000000017"))])
def test_the_shares_of_a_limit_never_add_up_to_more_than_the_limit(shards, limits):
    parts = [hot_keys.share(limits, shards, index) for index in range(shards)]
    assert sum(p.rpm for p in parts) == limits.rpm
    assert sum(p.monthly_tokens for p in parts) == limits.monthly_tokens
    assert sum(p.monthly_usd for p in parts) <= limits.monthly_usd


def test_a_key_without_ledger_shards_keeps_its_items_names():
    assert hot_keys.ledger_ids("k_1", 1) == ["k_1"]
    assert hot_keys.ledger_ids("k_1", 3) == ["k_1.s00", "k_1.s01", "k_1.s02"]


@pytest.mark.parametrize("limited", [False, True])
def test_at_2000_requests_a_second_on_one_key_20_ledger_shards_keep_every_item_under_its_limit(limited):
    random.seed(16)
    before = simulate(2000, 2, 200, limited, shards=1)
    assert before["items_over_limit"] == ["DAY", "MONTH"], "one item per key cannot take 2,000 requests a second"
    after = simulate(2000, 2, 200, limited, shards=20)
    assert after["items_over_limit"] == []
    assert max(row["units"] for row in after["max_per_item_per_second"].values()) < ITEM_LIMIT
    assert after["max_units_per_partition_key_per_second"] < ITEM_LIMIT
    assert after["write_units_per_request"] == before["write_units_per_request"], "sharding adds no writes"


def month_items(stack, key_id: str, shards: int) -> list[dict]:
    dynamodb = boto3.client("dynamodb")
    items = []
    for ledger_id in hot_keys.ledger_ids(key_id, shards):
        answer = dynamodb.query(TableName=stack.settings.usage_table, ConsistentRead=True,
                                KeyConditionExpression="pk = :pk AND begins_with(sk, :m)",
                                ExpressionAttributeValues={":pk": {"S": f"KEY#{ledger_id}"}, ":m": {"S": "MONTH#"}})
        items += [{**from_item(item), "ledger_id": ledger_id} for item in answer["Items"]]
    return items


def test_a_sharded_keys_caps_hold_under_parallel_requests_and_its_reports_sum_the_shards(server, stack, fake):
    # Each request reserves its upper bound (~700 tokens: metering/bounds.py) and settles to ~120, so a
    # 1,000-token share admits one at a time while 40 of them need more than the whole cap.
    key = stack.add_key(limits={"monthly_tokens": 4000, "ledger_shards": 4})
    key_id = stack.key_id(key)
    prompt = "hello " * 100  # 100 input tokens (the fake counts words): 40 requests need 4,800

    def post(_):
        return httpx.post(f"{server.url}/v3/v1/messages", headers={"x-api-key": key}, timeout=30,
                          json={"model": CLAUDE, "max_tokens": 20, "messages": [{"role": "user", "content": prompt}]})

    with ThreadPoolExecutor(24) as pool:
        statuses = [r.status_code for r in pool.map(post, range(40))]
    served = statuses.count(200)
    assert set(statuses) <= {200, 429} and 0 < served < 40
    import time
    deadline = time.monotonic() + 10
    while sum(item.get("requests", 0) for item in month_items(stack, key_id, 4)) < served:
        assert time.monotonic() < deadline, "the ledger did not record every served request"
        time.sleep(0.05)
    items = month_items(stack, key_id, 4)
    assert len({item["ledger_id"] for item in items}) >= 2, "every request went to one shard"
    metered = sum(int(item.get("input_tokens", 0)) + int(item.get("output_tokens", 0)) for item in items)
    assert metered <= 4000, f"the monthly cap of 4000 tokens was passed: {metered} metered"
    assert all(int(item.get("budget_tokens", 0)) <= 1000 for item in items), "a shard passed its share"
    report = httpx.get(f"{server.url}/v3/usage", headers={"x-api-key": key}).json()
    assert report["key_id"] == key_id and report["totals"]["requests"] == served
    assert sum(day["requests"] for day in report["days"]) == served
    env = {**os.environ, "GATEWAY_KEYS_SECRET_ID": stack.settings.keys_secret_id,
           "GATEWAY_USAGE_TABLE": stack.settings.usage_table}
    table = json.loads(subprocess.run([sys.executable, "-m", "handler.admin", "usage", "--json"], env=env,
                                      capture_output=True, text=True, timeout=60).stdout)
    assert [row["requests"] for row in table if row["key_id"] == key_id] == [served]


def test_a_sharded_key_never_passes_its_rpm_even_with_fewer_requests_a_minute_than_shards(server, stack):
    """With rpm 1 over 8 shards, seven shards' share of the rpm would be 0, and each would still
    admit the first request of its minute: the shards never outnumber the rpm."""
    key = stack.add_key(limits={"rpm": 1, "ledger_shards": 8})
    statuses = [httpx.post(f"{server.url}/v3/v1/messages", headers={"x-api-key": key}, timeout=30,
                           json={"model": CLAUDE, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
                           ).status_code for _ in range(6)]
    assert statuses.count(200) == 1 and statuses.count(429) == 5, statuses


def test_a_sharded_key_refused_everywhere_is_told_the_soonest_retry():
    """One shard's month is used up, another's room is held by requests in flight: the caller is
    told to retry in seconds (the second shard's room comes back), not at the month's end."""
    from datetime import datetime, timezone

    from handler.keys.store import ApiKey
    from handler.metering.items import Estimate, refusal_reason
    from handler.metering.ledger import _refused

    at = datetime(2026, 12, 6, 12, tzinfo=timezone.utc)
    months = {"k_1.s00": {"budget_tokens": 1000, "input_tokens": 1000},  # used up
              "k_1.s01": {"budget_tokens": 1000, "input_tokens": 10}}    # held by requests in flight

    class Refusing:
        def reserve(self, ledger_id, when, limits, estimate, whole=None):
            old = months[ledger_id]
            raise _refused(refusal_reason(old, when, limits, estimate, whole=whole), when, limits, old)

    key = ApiKey(key_id="k_1", name="busy", limits={"monthly_tokens": 2000, "ledger_shards": 2})
    for _ in range(8):  # the shards are tried in random order
        with pytest.raises(Exception) as caught:
            hot_keys.reserve(Refusing(), key, at, Limits(monthly_tokens=2000), Estimate(100, Decimal(0)))
        assert int(caught.value.headers["retry-after"]) <= 5, caught.value.message
        assert "limit (2000)" in caught.value.message, "the refusal named a shard's share as the key's limit"
