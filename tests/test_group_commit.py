"""Concurrent ledger writes are committed together, and still exactly once.

Requests that finish while a write is in flight share the next transaction:
one Put per record, one ADD per aggregate item. A batch that DynamoDB
refuses loses nothing: a record already there is found by writing each
alone, and an outage sends every entry to the fallback queue.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import boto3
import pytest
from botocore.exceptions import ClientError

from handler.metering.group_commit import GroupCommit
from handler.metering.ledger import Ledger
from handler.metering.items import MAX_BATCH, LedgerEntry, from_item, ledger_transaction
from handler.protocol.usage import Usage

CLAUDE = "anthropic/claude-sonnet-4-5"


def entry(key_id: str, n: int, *, tokens=(10, 5), status="ok", at: str | None = None) -> LedgerEntry:
    return LedgerEntry(key_id=key_id, request_id=f"req_{n}", at=at or datetime.now(timezone.utc).isoformat(),
                       requested_model=CLAUDE, served_model=CLAUDE, attempts=[], usage=Usage(*tokens),
                       cost_usd=Decimal("0.0001") * tokens[0], priced=True, stream=False, status=status,
                       reserved_tokens=100, reserved_usd=Decimal("0.01"))


def test_entries_of_one_key_share_one_update_per_aggregate_with_their_sums():
    at = "2026-11-25T10:00:00+00:00"
    entries = [entry("a", 1, tokens=(10, 5), at=at), entry("a", 2, tokens=(20, 7), status="error", at=at),
               entry("b", 3, tokens=(1, 1), at=at)]
    items = ledger_transaction("t", entries, ttl_days=30)
    puts = [item["Put"] for item in items if "Put" in item]
    updates = {(from_item(u["Update"]["Key"])["pk"], from_item(u["Update"]["Key"])["sk"]):
               from_item(u["Update"]["ExpressionAttributeValues"]) for u in items if "Update" in u}
    assert len(puts) == 3 and all(p["ConditionExpression"] == "attribute_not_exists(pk)" for p in puts)
    assert set(updates) == {("KEY#a", "DAY#2026-11-25"), ("KEY#a", "MONTH#2026-11"),
                            ("KEY#b", "DAY#2026-11-25"), ("KEY#b", "MONTH#2026-11")}
    month_a = updates[("KEY#a", "MONTH#2026-11")]
    assert (month_a[":one"], month_a[":errors"], month_a[":input_tokens"], month_a[":output_tokens"]) == (2, 1, 30, 12)
    assert month_a[":cost"] == Decimal("0.0030")
    assert month_a[":budget_tokens"] == (15 - 100) + (27 - 100)
    assert month_a[":budget_usd"] == Decimal("0.0030") - Decimal("0.02")
    assert ":budget_tokens" not in updates[("KEY#a", "DAY#2026-11-25")]


def test_entries_that_straddle_midnight_update_each_day():
    items = ledger_transaction("t", [entry("a", 1, at="2026-11-30T23:59:59+00:00"),
                                     entry("a", 2, at="2026-12-01T00:00:01+00:00")], ttl_days=30)
    keys = sorted(from_item(i["Update"]["Key"])["sk"] for i in items if "Update" in i)
    assert keys == ["DAY#2026-11-30", "DAY#2026-12-01", "MONTH#2026-11", "MONTH#2026-12"]


@pytest.mark.parametrize("count", [0, MAX_BATCH + 1])
def test_a_transaction_never_exceeds_dynamodbs_limits(count):
    with pytest.raises(ValueError):
        ledger_transaction("t", [entry("a", n) for n in range(count)], ttl_days=30)


@pytest.fixture
def ledger(moto_endpoint):
    table = f"test-usage-{uuid.uuid4().hex[:10]}"
    ledger = Ledger(table)
    ledger.create_table()
    return ledger


def month_of(ledger: Ledger, key_id: str) -> dict:
    item = boto3.client("dynamodb").get_item(TableName=ledger.table, ConsistentRead=True,
                                             Key={"pk": {"S": f"KEY#{key_id}"}, "sk": {"S": f"MONTH#{datetime.now(timezone.utc):%Y-%m}"}})
    return from_item(item.get("Item") or {})


def test_a_batch_is_one_transaction_and_counts_every_entry(ledger):
    entries = [entry("k", n, tokens=(n, 1)) for n in range(1, 11)]
    assert ledger.record_batch(entries) == ["written"] * 10
    month = month_of(ledger, "k")
    assert (month["requests"], month["input_tokens"], month["output_tokens"]) == (10, 55, 10)


def test_a_batch_holding_an_already_written_record_writes_the_others_once(ledger):
    at = datetime.now(timezone.utc).isoformat()
    ledger.write(entry("k", 3, at=at))
    outcomes = ledger.record_batch([entry("k", n, at=at) for n in range(1, 6)])
    assert outcomes == ["written", "written", "duplicate", "written", "written"]
    assert month_of(ledger, "k")["requests"] == 5


class Throttling:
    """A DynamoDB client that throttles every ledger transaction and counts them."""

    def __init__(self) -> None:
        self.transactions = 0

    def transact_write_items(self, **_):
        self.transactions += 1
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "TransactWriteItems")


def test_a_batch_dynamodb_keeps_refusing_goes_to_the_queue_without_trying_each_entry(moto_endpoint):
    queue_url = boto3.client("sqs").create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    throttling = Throttling()
    ledger = Ledger("unused", queue_url=queue_url, dynamodb=lambda: throttling, sleep=lambda _: None)
    assert ledger.record_batch([entry("k", n) for n in range(5)]) == ["queued"] * 5
    assert throttling.transactions == 4  # the batch's retries, and no per-entry attempts after them
    queued = boto3.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert queued["Attributes"]["ApproximateNumberOfMessages"] == "5"


class CountingLedger(Ledger):
    def __init__(self, table: str) -> None:
        super().__init__(table)
        self.batches: list[int] = []

    def record_batch(self, entries):
        self.batches.append(len(entries))
        return super().record_batch(entries)


def test_writes_that_arrive_during_a_write_go_out_together_in_the_next(ledger):
    counting = CountingLedger(ledger.table)
    commits = GroupCommit(counting, max_batch=8)

    async def burst():
        return await asyncio.gather(*(commits.record(entry("k", n)) for n in range(20)))

    assert asyncio.run(burst()) == ["written"] * 20
    assert counting.batches == [8, 8, 4]  # all twenty were waiting when the writer ran
    assert month_of(ledger, "k")["requests"] == 20


def test_a_lone_write_goes_out_at_once_as_one_transaction(ledger):
    counting = CountingLedger(ledger.table)
    commits = GroupCommit(counting)

    async def one_at_a_time():
        return [await commits.record(entry("k", n)) for n in range(3)]

    assert asyncio.run(one_at_a_time()) == ["written"] * 3
    assert counting.batches == [1, 1, 1]
