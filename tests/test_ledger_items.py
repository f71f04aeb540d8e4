"""The ledger's items in DynamoDB's JSON are what boto3's TypeSerializer made of them (metering/items.py).

The items are built straight in DynamoDB's wire format, told by exact type,
rather than through boto3's `TypeSerializer`; these pin that DynamoDB receives
the same bytes: every value as TypeSerializer serializes it (or refuses it,
with its error), and whole transactions byte for byte as they were written
with it (tests/data/ledger-transactions.json, written by the TypeSerializer-built
ledger for the batches below).
"""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import IntEnum
from pathlib import Path

import pytest
from boto3.dynamodb.types import Binary, TypeSerializer

from handler.metering import transact_wire
from handler.metering.items import LedgerEntry, day_sk, ledger_transaction, month_sk, to_value
from handler.protocol.usage import Usage
from tests.support.dynamodb_faults import WRITTEN, FaultyDynamoDB

GOLDEN = Path(__file__).parent / "data" / "ledger-transactions.json"
CLAUDE = "anthropic/claude-sonnet-4-5"


class Level(IntEnum):
    HIGH = 3


VALUES = [
    "", "k_3f9a1c2b7d", "caf\u00e9 \u2603 \U0001f600", "with \"quotes\" and \\ and \n",
    0, 1, -1, 4000, 10**38 - 1, -(10**38 - 1), 10**38, -(10**38), 10**60,
    True, False, None,
    Decimal(0), Decimal("0.00996"), Decimal("-0"), Decimal("1.000"), Decimal("1E+5"), Decimal("12.5"),
    Decimal("0E-7"), Decimal("-0.000001234"), Decimal("1" * 38), Decimal("1" * 39), Decimal("1E+200"),
    Decimal("1E-200"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("NaN"),
    1.5, float("nan"), [1.5], {"ms": 0.5},
    [], {}, [1, "a", None, True, Decimal("2.5"), [[]], {"x": {}}],
    {"model": CLAUDE, "status": 200, "latency_ms": 812, "declined": True},
    [{"model": CLAUDE, "status": 429, "latency_ms": 12}, {"model": "openai/gpt-5", "status": 200, "latency_ms": 90}],
    {"web_search_requests": 3, "nested": {"deeper": [1, {"n": Decimal("0.1")}]}},
    {1: "an int key"}, ("a", 1), {"a", "b"}, {1, 2}, {b"x"}, b"bytes", bytearray(b"ba"), Binary(b"bin"),
    Level.HIGH, OrderedDict(a=1), set(), object(),
]


def serialized(serialize, value):
    """What serializing `value` gives: its DynamoDB JSON, or the error's type and words."""
    try:
        return ("value", serialize(value))
    except Exception as exc:  # noqa: BLE001 - the refusal itself is what is compared
        return ("refused", type(exc), str(exc))


@pytest.mark.parametrize("value", VALUES, ids=[f"{type(v).__name__}-{n}" for n, v in enumerate(VALUES)])
def test_every_value_is_written_as_boto3s_type_serializer_writes_it_or_refused_as_it_refuses(value):
    ours, boto3s = serialized(to_value, value), serialized(TypeSerializer().serialize, value)
    assert ours == boto3s, f"DynamoDB would receive {ours} where boto3 sends {boto3s}"
    if ours[0] == "value":
        assert json.dumps(ours[1], default=repr) == json.dumps(boto3s[1], default=repr)


def test_day_and_month_keys_are_written_as_strftime_writes_them_in_any_year():
    days = [datetime(year, month, day, tzinfo=timezone.utc) + timedelta(hours=hours)
            for year in (1, 9, 999, 1000, 1970, 2026, 9999) for month, day in ((1, 1), (2, 28), (12, 31))
            for hours in (0, 23)]
    for at in days:
        assert (day_sk(at), month_sk(at)) == (f"DAY#{at:%Y-%m-%d}", f"MONTH#{at:%Y-%m}"), f"the keys of {at}"


def entry(n: int, *, key: str = "k_a", at: str = "2026-12-07T01:30:00.123456+00:00", **fields) -> LedgerEntry:
    values = dict(key_id=key, request_id=f"req_{n:024x}", at=at, requested_model=CLAUDE, served_model=CLAUDE,
                  attempts=[{"model": CLAUDE, "status": 200, "latency_ms": 812}],
                  usage=Usage(input_tokens=1200, output_tokens=350, cache_read_input_tokens=4000),
                  cost_usd=Decimal("0.00996"), priced=True, stream=False, status="ok")
    return LedgerEntry(**{**values, **fields})


def batches() -> dict[str, list[LedgerEntry]]:
    tools = Usage(10, 20, 30, 40, {"web_search_requests": 3, "web_fetch_requests": 1, "Not-A-Tool": 9})
    return {
        "one request": [entry(1)],
        "one streamed request with server tools, a reservation and extra fields": [entry(
            2, stream=True, usage=tools, reserved_tokens=5000, reserved_usd=Decimal("0.25"),
            extra={"usage_estimated": True, "estimate_reason": "stream ended early"}, status="stream_error")],
        "a fallback's attempts, unpriced, nothing served": [entry(
            3, served_model=None, priced=False, cost_usd=Decimal(0), usage=Usage(),
            attempts=[{"model": CLAUDE, "status": 529, "latency_ms": 40},
                      {"model": "openai/gpt-5", "status": 200, "latency_ms": 900, "declined": True}],
            status="error")],
        "a batch over two keys, midnight and a month's end": [
            entry(4), entry(5, at="2026-12-07T23:59:59.999999+00:00", cost_usd=Decimal("12.5"), usage=tools),
            entry(6, key="k_b", status="client_disconnected", reserved_tokens=70000,
                  reserved_usd=Decimal("1.05")),
            entry(7, at="2026-12-08T00:00:00+00:00", cost_usd=Decimal("0.000001234"), priced=False),
            entry(8, at="2026-12-31T23:59:59+00:00", usage=Usage(1, 1, 0, 0, {"web_search_requests": 2})),
            entry(9, key="k_b", at="2027-01-01T00:00:01+00:00", reserved_tokens=1, reserved_usd=Decimal("0.1"))],
        "the largest batch": [entry(100 + n, key=f"k_{n % 3}", usage=Usage(n, n * 2, n % 5, n * 7))
                              for n in range(32)],
    }


def test_each_transaction_is_byte_for_byte_what_the_ledger_wrote_through_boto3s_serializer():
    expected = json.loads(GOLDEN.read_text())
    for name, entries in batches().items():
        body = json.dumps(ledger_transaction("usage", entries, 400), separators=(",", ":"))
        assert body == expected[name], f"DynamoDB would receive another transaction for {name!r}"


def test_the_write_dynamodb_receives_is_the_transaction_and_its_token_as_compact_json(dynamodb_at):
    expected = json.loads(GOLDEN.read_text())
    with FaultyDynamoDB([WRITTEN]) as dynamodb:
        dynamodb_at(dynamodb.url)
        for name, entries in batches().items():
            token = str(uuid.uuid4())
            transact_wire.transact_write_items(ledger_transaction("usage", entries, 400), token)
            sent = f'{{"TransactItems":{expected[name]},"ClientRequestToken":"{token}"}}'.encode()
            assert dynamodb.calls[-1].raw == sent, f"DynamoDB received another body for {name!r}"
