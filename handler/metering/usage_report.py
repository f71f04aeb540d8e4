"""Operator reports over every key: one month's totals, read from the aggregates.

Each key's month is one `MONTH#` item the ledger keeps up to date, so a
report reads one item per key, 100 to a BatchGetItem, several batches at once:
its cost grows with the number of keys, never with the number of requests.
(One key's per-day view is Ledger.month_report: one GetItem and one Query.)
"""

from __future__ import annotations

import csv
import io
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from .. import aws
from ..keys.store import ApiKey
from .hot_keys import add, ledger_ids, shards_of
from .items import REPORT_FIELDS, from_item, key_pk, report_row

BATCH = 100  # BatchGetItem's limit
COLUMNS = ("key_id", "name", "status", *REPORT_FIELDS)


def month_totals(table: str, key_ids: list[str], month: str, *, workers: int = 8,
                 dynamodb: Callable[[], Any] = lambda: aws.client("dynamodb")) -> dict[str, dict]:
    """key_id -> report row (zeros for a key without usage that month)."""
    wanted = list(dict.fromkeys(key_ids))
    batches = [wanted[start:start + BATCH] for start in range(0, len(wanted), BATCH)]
    totals = {key_id: report_row({}) for key_id in wanted}
    with ThreadPoolExecutor(max(1, min(workers, len(batches)))) as pool:
        for items in pool.map(lambda batch: _batch_get(dynamodb(), table, batch, month), batches):
            for item in items:
                totals[item["pk"].removeprefix("KEY#")] = report_row(item)
    return totals


def key_totals(table: str, keys: list[dict], month: str) -> dict[str, dict]:
    """key_id -> its month, a busy key's ledger shards (metering/hot_keys.py) summed."""
    ids = {key["key_id"]: ledger_ids(key["key_id"], shards_of(ApiKey(key["key_id"], "", limits=key.get("limits") or {})))
           for key in keys}
    found = month_totals(table, [ledger_id for group in ids.values() for ledger_id in group], month)
    totals = {}
    for key_id, group in ids.items():
        row: dict = {}
        for ledger_id in group:
            row = add(row, found[ledger_id])
        totals[key_id] = row
    return totals


def _batch_get(client, table: str, key_ids: list[str], month: str, attempts: int = 8) -> list[dict]:
    request = {table: {"Keys": [{"pk": {"S": key_pk(k)}, "sk": {"S": f"MONTH#{month}"}} for k in key_ids]}}
    found: list[dict] = []
    for attempt in range(attempts):
        answer = client.batch_get_item(RequestItems=request)
        found += [from_item(item) for item in answer.get("Responses", {}).get(table, [])]
        request = answer.get("UnprocessedKeys") or {}
        if not request:
            return found
        time.sleep(0.05 * 2 ** attempt)  # DynamoDB throttled part of the batch: back off, ask for the rest
    raise RuntimeError(f"DynamoDB left {len(request[table]['Keys'])} month items unread after {attempts} tries")


def rows(keys: list[dict], totals: dict[str, dict], *, top: int | None = None) -> list[dict]:
    """One row per key, dearest first (then busiest, then by id)."""
    table = [{"key_id": key["key_id"], "name": key.get("name", ""), "status": key.get("status", "active"),
              **totals.get(key["key_id"], report_row({}))} for key in keys]
    table.sort(key=lambda row: (-row["cost_usd"], -row["requests"], row["key_id"]))
    return table[:top] if top is not None else table


def as_csv(table: list[dict], columns: tuple[str, ...] = COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    return out.getvalue()


def as_text(table: list[dict], first: str = "key_id") -> str:
    """Aligned columns: `first` (key_id, or date for one key's days), then the figures."""
    names = [first, *(["name"] if first == "key_id" else []), *REPORT_FIELDS]
    width = {name: max([len(name), *(len(_cell(row.get(name))) for row in table)]) for name in names}
    lines = ["  ".join(name.ljust(width[name]) if name in (first, "name") else name.rjust(width[name])
                       for name in names)]
    for row in table:
        lines.append("  ".join(_cell(row.get(name)).ljust(width[name]) if name in (first, "name")
                               else _cell(row.get(name)).rjust(width[name]) for name in names))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return f"{value:.6f}" if isinstance(value, float) else str(value if value is not None else "")
