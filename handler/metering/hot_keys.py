"""A busy key's usage spread over several ledger ids, so no DynamoDB item exceeds its share.

DynamoDB takes about 1,000 write units per second on one item (and on one
partition key). Each request writes its key's MONTH item twice (the
reservation, 1 unit; the settling transaction, 2) and its DAY item once (2),
so one key tops out near 333 requests per second with limits and 500
without (scripts/benchmark/hot_key.py counts it). A key whose entry sets
`"limits": {"ledger_shards": S}` keeps its request records, aggregates and
budget under S ledger ids `<key_id>.sNN`, each its own partition key; a
request picks one at random. Caps stay hard: each shard enforces a share of
every limit, the shares summing to no more than the cap, and a shard that
refuses passes the request to the next, so a request is refused only when no
shard has room for it. (The cost: one request must fit in one share, and a
refusal near the cap may try every shard.)
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from ..keys.store import ApiKey
from ..protocol.errors import GatewayError
from .items import REPORT_FIELDS, Estimate, Limits

MAX_SHARDS = 64


def shards_of(key: ApiKey) -> int:
    """The key's ledger shards, never more than its rpm: a shard whose share of the rpm is 0
    would still admit the first request of each minute, so the key's rpm would not hold."""
    value = key.limits.get("ledger_shards")
    if not (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_SHARDS):
        return 1
    rpm = key.limits.get("rpm")
    if isinstance(rpm, int) and not isinstance(rpm, bool) and rpm >= 1:
        return min(value, rpm)
    return value


def ledger_ids(key_id: str, shards: int) -> list[str]:
    """Shard 1 of 1 is the key id itself: a key that never shards keeps its items' names."""
    return [key_id] if shards == 1 else [f"{key_id}.s{index:02d}" for index in range(shards)]


def _split(total: int, shards: int, index: int) -> int:
    return total // shards + (1 if index < total % shards else 0)


def share(limits: Limits, shards: int, index: int) -> Limits:
    """Shard `index`'s part of every limit; the parts sum to the limit (USD: to at most it)."""
    if shards == 1:
        return limits
    usd = limits.monthly_usd
    return Limits(
        rpm=_split(limits.rpm, shards, index) if limits.rpm is not None else None,
        monthly_tokens=_split(limits.monthly_tokens, shards, index) if limits.monthly_tokens is not None else None,
        monthly_usd=(usd / shards).quantize(Decimal("1e-12"), rounding=ROUND_DOWN) if usd is not None else None,
    )


def pick(key: ApiKey) -> str:
    """The ledger id of a request that reserves nothing (a key without limits)."""
    return random.choice(ledger_ids(key.key_id, shards_of(key)))


def reserve(ledger, key: ApiKey, at: datetime, limits: Limits, estimate: Estimate):
    """(ledger id, RateInfo) of a reservation in one of the key's shards, tried in random order."""
    ids = ledger_ids(key.key_id, shards_of(key))
    if len(ids) == 1:
        return ids[0], ledger.reserve(ids[0], at, limits, estimate)
    refused: GatewayError | None = None
    for index in random.sample(range(len(ids)), len(ids)):
        try:
            rate = ledger.reserve(ids[index], at, share(limits, len(ids), index), estimate, whole=limits)
        except GatewayError as error:
            if error.status != 429:
                raise
            # The soonest retry is the true one: a shard whose room is held by requests in
            # flight frees it in seconds, even when another shard's month is used up.
            if refused is None or _retry_after(error) < _retry_after(refused):
                refused = error
            continue
        if rate is not None:  # the headers speak of the key's whole limit
            rate = replace(rate, limit=limits.rpm, remaining=min(limits.rpm, rate.remaining * len(ids)))
        return ids[index], rate
    assert refused is not None
    raise refused


def every_ledger_id(key_id: str) -> list[str]:
    """Every ledger id a key can have used, whatever its ledger_shards was: the key id, and
    shards .s00 to .s63 (a layout of S shards uses the first S)."""
    return [key_id, *ledger_ids(key_id, MAX_SHARDS)]


def _retry_after(error: GatewayError) -> int:
    return int(error.headers.get("retry-after", 0))


def month_report(ledger, key: ApiKey, month: str) -> dict:
    """One key's month, its shards summed (totals and each day): every layout the month used,
    since `ledger_shards` may have changed during it (the current layout is always read)."""
    current = ledger_ids(key.key_id, shards_of(key))
    used = ledger.months_present(every_ledger_id(key.key_id), month)
    ids = [ledger_id for ledger_id in every_ledger_id(key.key_id) if ledger_id in used or ledger_id in current]
    reports = [ledger.month_report(ledger_id, month) for ledger_id in ids]
    if len(reports) == 1:
        return reports[0]
    days: dict[str, dict] = {}
    for report in reports:
        for day in report["days"]:
            days[day["date"]] = add(days.get(day["date"], {"date": day["date"]}), day)
    totals: dict = {}
    for report in reports:
        totals = add(totals, report["totals"])
    return {"key_id": key.key_id, "month": month, "totals": totals,
            "days": [days[date] for date in sorted(days)]}


def add(row: dict, other: dict) -> dict:
    summed = dict(row)
    for name in REPORT_FIELDS:
        summed[name] = row.get(name, 0) + other.get(name, 0)
    return summed
