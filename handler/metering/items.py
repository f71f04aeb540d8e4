"""The usage ledger's shape: request records, aggregates and limit reservations.

Pure: everything here builds DynamoDB requests or reads their answers; the
I/O lives in metering/ledger.py. One table, `pk`/`sk` strings:

  KEY#<key_id> / REQ#<iso time>#<request_id>   one record per request, expires by TTL
  KEY#<key_id> / DAY#<yyyy-mm-dd>              daily aggregate (atomic ADDs)
  KEY#<key_id> / MONTH#<yyyy-mm>               monthly aggregate, plus the limit state:
      budget_tokens, budget_usd   settled usage plus in-flight reservations
      rpm_window, rpm_count       the current minute's request count

A record and its aggregates are written in one transaction conditioned on the
record's absence, so a retried or replayed write cannot count twice; records
that arrive together share one transaction and one ADD per aggregate.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Mapping

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from ..protocol.usage import Usage

TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
REPORT_FIELDS = ("requests", *TOKEN_FIELDS, "cost_usd")

TTL_ATTRIBUTE = "expires_at"
# Server tool uses kept in the aggregates (web_search_requests, web_fetch_requests, ...).
SERVER_TOOL_USE = re.compile(r"[a-z][a-z_]{0,40}_requests")
# The table's key schema: template.yaml declares the same (a test compares them).
TABLE_KEYS = {"pk": "HASH", "sk": "RANGE"}

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


_EXACT_INT = 10**38  # an int within 38 digits is its own decimal form
_number = _serializer._serialize_n  # noqa: SLF001 - DynamoDB's 38 digits; Infinity and NaN refused


def to_value(value: Any) -> dict:
    """`TypeSerializer().serialize(value)`, told by exact type for what the ledger writes (strings,
    numbers, booleans, its dicts and lists) rather than through boto3's chain of isinstance checks;
    anything else (sets, bytes, tuples, subclasses, floats to refuse) is boto3's to serialize."""
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is int and -_EXACT_INT < value < _EXACT_INT:
        return {"N": str(value)}  # as DynamoDB's 38-digit context writes it
    if kind is int or kind is Decimal:
        return {"N": _number(value)}
    if kind is bool:
        return {"BOOL": value}
    if kind is dict:
        return {"M": {name: to_value(member) for name, member in value.items()}}
    if kind is list:
        return {"L": [to_value(member) for member in value]}
    if value is None:
        return {"NULL": True}
    return _serializer.serialize(value)


def to_item(values: Mapping[str, Any]) -> dict:
    return {name: to_value(value) for name, value in values.items()}


def from_item(item: Mapping[str, Any]) -> dict:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def key_pk(key_id: str) -> str:
    return f"KEY#{key_id}"


def day_sk(at: datetime) -> str:
    """DAY#yyyy-mm-dd as strftime's `%Y-%m-%d` writes it, in a third of its CPU (each write
    makes a day key and a month key)."""
    if at.year < 1000:  # strftime's %Y does not pad these
        return f"DAY#{at:%Y-%m-%d}"
    return f"DAY#{at.year}-{at.month:02d}-{at.day:02d}"


def month_sk(at: datetime) -> str:
    if at.year < 1000:
        return f"MONTH#{at:%Y-%m}"
    return f"MONTH#{at.year}-{at.month:02d}"


def minute_window(at: datetime) -> str:
    return f"{at:%Y-%m-%dT%H:%M}"


def seconds_to_next_minute(at: datetime) -> int:
    return max(1, 60 - at.second)


def next_minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0) + timedelta(minutes=1)


def seconds_to_next_month(at: datetime) -> int:
    first = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (first + timedelta(days=32)).replace(day=1)
    return max(1, math.ceil((following - at).total_seconds()))


@dataclass
class LedgerEntry:
    """Everything metered about one request that reached the upstream."""

    key_id: str
    request_id: str
    at: str  # ISO 8601 UTC
    requested_model: str
    served_model: str | None
    attempts: list[dict]
    usage: Usage
    cost_usd: Decimal
    priced: bool
    stream: bool
    status: str  # ok | error | stream_error | client_disconnected
    reserved_tokens: int = 0
    reserved_usd: Decimal = Decimal(0)
    extra: dict = field(default_factory=dict)

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(self.at)

    @property
    def total_tokens(self) -> int:
        return sum(self.usage.as_dict().values())

    def to_json(self) -> str:
        document = asdict(self)
        document["cost_usd"] = str(self.cost_usd)
        document["reserved_usd"] = str(self.reserved_usd)
        return json.dumps(document, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "LedgerEntry":
        document = json.loads(text)
        document["usage"] = Usage(**document["usage"])
        document["cost_usd"] = Decimal(document["cost_usd"])
        document["reserved_usd"] = Decimal(document["reserved_usd"])
        return cls(**document)


def request_record(entry: LedgerEntry, ttl_days: int) -> dict:
    expires = int(entry.time.timestamp()) + ttl_days * 86400
    return {
        "pk": key_pk(entry.key_id),
        "sk": f"REQ#{entry.at}#{entry.request_id}",
        "key_id": entry.key_id,
        "request_id": entry.request_id,
        "at": entry.at,
        "requested_model": entry.requested_model,
        "served_model": entry.served_model or "",
        "attempts": entry.attempts,
        **entry.usage.as_dict(),
        "cost_usd": entry.cost_usd,
        "priced": entry.priced,
        "stream": entry.stream,
        "status": entry.status,
        TTL_ATTRIBUTE: expires,
        **({"server_tool_use": entry.usage.server_tool_use} if entry.usage.server_tool_use else {}),
        **entry.extra,
    }


_AGGREGATE_ADDS = ("requests :one, errors :errors, unpriced_requests :unpriced, cost_usd :cost, "
                   + ", ".join(f"{name} :{name}" for name in TOKEN_FIELDS))
_BUDGET_ADDS = "budget_tokens :budget_tokens, budget_usd :budget_usd"


def _aggregate_update(table: str, pk: str, sk: str, entries: list[LedgerEntry], *, settle_budget: bool) -> dict:
    """One aggregate item's ADDs for every entry that counts toward it: the entries' sums, taken in
    one pass over them (left to right from 0, as `sum` adds)."""
    errors = unpriced = 0
    cost = Decimal(0)
    tokens = dict.fromkeys(TOKEN_FIELDS, 0)
    tools: dict[str, int] = {}
    for entry in entries:
        errors += entry.status != "ok"
        unpriced += not entry.priced
        cost = cost + entry.cost_usd
        usage = entry.usage
        for name in TOKEN_FIELDS:
            tokens[name] = tokens[name] + getattr(usage, name)
        for name, uses in usage.server_tool_use.items():
            if SERVER_TOOL_USE.fullmatch(name):
                tools[name] = tools.get(name, 0) + uses
    values: dict[str, Any] = {":one": len(entries), ":errors": errors, ":unpriced": unpriced, ":cost": cost,
                              ":key": entries[0].key_id}
    for name in TOKEN_FIELDS:
        values[f":{name}"] = tokens[name]
    adds = [_AGGREGATE_ADDS]
    names = {}
    for n, name in enumerate(sorted(tools)):  # e.g. web_search_requests, summed like the tokens
        names[f"#tool{n}"] = name
        values[f":tool{n}"] = tools[name]
        adds.append(f"#tool{n} :tool{n}")
    if settle_budget:
        # The reservation made before the call is replaced by what was really used.
        budget_tokens, budget_usd = 0, Decimal(0)
        for entry in entries:
            budget_tokens += entry.total_tokens - entry.reserved_tokens
            budget_usd = budget_usd + (entry.cost_usd - entry.reserved_usd)
        values[":budget_tokens"] = budget_tokens
        values[":budget_usd"] = budget_usd
        adds.append(_BUDGET_ADDS)
    update = {
        "TableName": table,
        "Key": {"pk": {"S": pk}, "sk": {"S": sk}},
        "UpdateExpression": "SET key_id = :key ADD " + ", ".join(adds),
        "ExpressionAttributeValues": to_item(values),
    }
    if names:
        update["ExpressionAttributeNames"] = names
    return {"Update": update}


# DynamoDB allows 100 actions per transaction; a batch of 32 entries needs at most 96.
MAX_BATCH = 32


def ledger_transaction(table: str, entries: list[LedgerEntry], ttl_days: int) -> list[dict]:
    """Records + their day and month aggregates, all or nothing, and nothing at all if any
    record exists. Entries of one key and day share one aggregate update (a transaction
    may touch an item only once), so concurrent requests can be committed together."""
    if not 0 < len(entries) <= MAX_BATCH:
        raise ValueError(f"a ledger transaction holds 1 to {MAX_BATCH} entries, not {len(entries)}")
    puts = [{"Put": {
        "TableName": table,
        "Item": to_item(request_record(entry, ttl_days)),
        "ConditionExpression": "attribute_not_exists(pk)",
    }} for entry in entries]
    days: dict[tuple[str, str], list[LedgerEntry]] = {}
    months: dict[tuple[str, str], list[LedgerEntry]] = {}
    for entry in entries:
        days.setdefault((key_pk(entry.key_id), day_sk(entry.time)), []).append(entry)
        months.setdefault((key_pk(entry.key_id), month_sk(entry.time)), []).append(entry)
    return [
        *puts,
        *(_aggregate_update(table, pk, sk, group, settle_budget=False) for (pk, sk), group in days.items()),
        *(_aggregate_update(table, pk, sk, group, settle_budget=True) for (pk, sk), group in months.items()),
    ]


# ---------------------------------------------------------------- limits


@dataclass(frozen=True)
class Limits:
    rpm: int | None = None
    monthly_tokens: int | None = None
    monthly_usd: Decimal | None = None

    @classmethod
    def of(cls, limits: Mapping[str, Any]) -> "Limits":
        def positive(name, kind):
            value = limits.get(name)
            return kind(str(value)) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        return cls(positive("rpm", int), positive("monthly_tokens", int), positive("monthly_usd", Decimal))

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.rpm, self.monthly_tokens, self.monthly_usd))


@dataclass(frozen=True)
class Estimate:
    """An upper bound of what a request may use, reserved against monthly caps."""

    tokens: int
    usd: Decimal


@dataclass(frozen=True)
class Refusal:
    limit: str  # rpm | monthly_tokens | monthly_usd
    retry_after: int
    message: str


def reservation_update(table: str, key_id: str, at: datetime, limits: Limits, estimate: Estimate,
                       *, same_window: bool) -> dict:
    """UpdateItem kwargs that count this request and reserve its estimate, if every limit allows.

    DynamoDB conditions cannot add, so the room left is computed here
    (`budget <= cap - estimate`). The rpm window is a fixed minute kept on the
    month item: `same_window` increments it, otherwise it starts a new one.
    """
    names, values, conditions, sets, adds = {}, {":tok": estimate.tokens, ":usd": estimate.usd}, [], [], []
    adds += ["budget_tokens :tok", "budget_usd :usd"]
    if limits.rpm is not None:
        values[":w"] = minute_window(at)
        values[":one"] = 1
        if same_window:
            values[":rpm"] = limits.rpm
            conditions.append("rpm_window = :w AND rpm_count < :rpm")
            sets.append("rpm_window = :w")
            adds.append("rpm_count :one")
        else:
            conditions.append("(attribute_not_exists(rpm_window) OR rpm_window <> :w)")
            sets += ["rpm_window = :w", "rpm_count = :one"]
    if limits.monthly_tokens is not None:
        values[":tok_room"] = limits.monthly_tokens - estimate.tokens
        conditions.append("(attribute_not_exists(budget_tokens) OR budget_tokens <= :tok_room)")
    if limits.monthly_usd is not None:
        values[":usd_room"] = limits.monthly_usd - estimate.usd
        conditions.append("(attribute_not_exists(budget_usd) OR budget_usd <= :usd_room)")
    values[":key"] = key_id
    sets.append("key_id = :key")
    request = {
        "TableName": table,
        "Key": to_item({"pk": key_pk(key_id), "sk": month_sk(at)}),
        "UpdateExpression": "SET " + ", ".join(sets) + " ADD " + ", ".join(adds),
        "ExpressionAttributeValues": to_item(values),
        "ReturnValues": "UPDATED_NEW",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    if conditions:
        request["ConditionExpression"] = " AND ".join(conditions)
    if names:
        request["ExpressionAttributeNames"] = names
    return request


# A refusal because reservations of requests in flight hold the room: they settle within
# a request's deadline (or a stream's end), so the caller is told to retry this soon.
IN_FLIGHT_RETRY_S = 5


def _amount(unit: str, value: Any) -> str:
    """`$0.00047` or `1200`, never in exponent form."""
    return f"{unit}{Decimal(str(value)).normalize():f}"


def _settled_tokens(old: Mapping[str, Any]) -> int:
    return sum(int(old.get(name, 0)) for name in TOKEN_FIELDS)


def refusal_reason(old: Mapping[str, Any], at: datetime, limits: Limits, estimate: Estimate, *,
                   whole: Limits | None = None) -> Refusal | None:
    """Why a reservation was refused, from the item as it was; None if only the rpm window moved on.

    A monthly cap refuses for one of two reasons, told apart because the retry differs: the
    month's settled usage leaves no room for this request (it stays refused until the month
    ends), or reservations of requests still in flight hold the room (retry in seconds).
    `whole`: the key's limits when `limits` are one ledger shard's share (metering/hot_keys.py):
    the message speaks of those, and of the shard's usage as the shard's."""
    shown = whole or limits
    for cap, key_cap, budget, settled, needed, name, unit, what in (
            (limits.monthly_tokens, shown.monthly_tokens, old.get("budget_tokens", 0), _settled_tokens(old),
             estimate.tokens, "monthly_tokens", "", "token limit"),
            (limits.monthly_usd, shown.monthly_usd, old.get("budget_usd", Decimal(0)),
             Decimal(str(old.get("cost_usd", 0))), estimate.usd, "monthly_usd", "$", "spend limit")):
        if cap is None or budget <= cap - needed:
            continue
        if settled + needed > cap:
            used = (f"{_amount(unit, settled)} used this month" if whole is None else
                    f"{_amount(unit, settled)} used this month in a ledger shard whose share is {_amount(unit, cap)}")
            return Refusal(name, seconds_to_next_month(at),
                           f"This key's monthly {what} ({_amount(unit, key_cap)}) would be exceeded: {used} "
                           f"and this request may use up to {_amount(unit, needed)}. The limit resets at the "
                           f"start of next month (UTC).")
        return Refusal(name, IN_FLIGHT_RETRY_S,
                       f"This key's monthly {what} ({_amount(unit, key_cap)}) is held by requests still in "
                       f"flight; retry in a few seconds.")
    if limits.rpm is not None and old.get("rpm_window") == minute_window(at) and old.get("rpm_count", 0) >= limits.rpm:
        return Refusal("rpm", seconds_to_next_minute(at),
                       f"This key's rate limit ({shown.rpm} requests per minute) is reached.")
    return None


def release_update(table: str, key_id: str, at: datetime, estimate: Estimate) -> dict:
    """Give a reservation back when the request never reached the upstream."""
    return {
        "TableName": table,
        "Key": to_item({"pk": key_pk(key_id), "sk": month_sk(at)}),
        "UpdateExpression": "ADD budget_tokens :tok, budget_usd :usd",
        "ExpressionAttributeValues": to_item({":tok": -estimate.tokens, ":usd": -estimate.usd}),
    }


def input_token_estimate(body: Mapping[str, Any]) -> int:
    """Input tokens, roughly, from the request's size (about 3 bytes a token): for routing
    (does it fit a model's window?), not for caps; bounds.request_bound is the bound."""
    sized = json.dumps([body.get("system"), body.get("messages"), body.get("tools")], separators=(",", ":"))
    return math.ceil(len(sized.encode()) / 3)


def report_row(item: Mapping[str, Any]) -> dict:
    row = {name: int(item.get(name, 0)) for name in REPORT_FIELDS if name != "cost_usd"}
    row["cost_usd"] = float(item.get("cost_usd", 0))
    return row
