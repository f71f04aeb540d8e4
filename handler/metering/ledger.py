"""The usage ledger's I/O: limit reservations, ledger writes, the fallback queue, reports.

Synchronous boto3 calls (the app runs them in a worker thread). A ledger
write is retried with backoff; one that still fails goes to the SQS fallback
queue, and `replay` writes those back: the write is conditioned on the
record's absence, so a replayed or retried entry never counts twice. If even
the queue fails, the entry is logged whole (CloudWatch keeps it) rather than
dropped silently.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping

from botocore.exceptions import BotoCoreError, ClientError

from .. import aws
from ..observe import telemetry
from . import transact_wire
from ..protocol.errors import SHOULD_RETRY_HEADER, GatewayError
from .items import (
    TABLE_KEYS,
    TTL_ATTRIBUTE,
    Estimate,
    LedgerEntry,
    Limits,
    Refusal,
    from_item,
    key_pk,
    ledger_transaction,
    minute_window,
    next_minute,
    refusal_reason,
    release_update,
    report_row,
    reservation_update,
)

log = logging.getLogger(__name__)

# What botocore's standard retry mode retries (botocore/retries/standard.py: TransientRetryableChecker,
# ThrottledRetryableChecker), with DynamoDB's own transient ones: the ledger's TransactWriteItems
# (transact_wire) makes one attempt a call, so these attempts are its only ones.
_RETRYABLE_CODES = {
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "TransactionConflictException",
    "TransactionInProgressException", "Throttling", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "RequestThrottled", "RequestTimeout", "RequestTimeoutException",
    "PriorRequestNotComplete",
}
_RETRYABLE_STATUSES = {500, 502, 503, 504}
_RETRYABLE_REASONS = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "InternalServerError"}


@dataclass(frozen=True)
class RateInfo:
    """What the anthropic-ratelimit-requests-* headers say."""

    limit: int
    remaining: int
    reset: datetime

    def headers(self) -> dict[str, str]:
        return {
            "anthropic-ratelimit-requests-limit": str(self.limit),
            "anthropic-ratelimit-requests-remaining": str(max(0, self.remaining)),
            "anthropic-ratelimit-requests-reset": self.reset.isoformat().replace("+00:00", "Z"),
        }


def _refused(refusal: Refusal, at: datetime, limits: Limits, old: Mapping[str, Any]) -> GatewayError:
    """A 429 as Anthropic sends it: retry-after, and for an rpm key the rate-limit headers.
    A monthly cap points at the month's end: no retry before then can pass, so it says
    `x-should-retry: false` (a rate limit's 429 says true, as every 429 does)."""
    headers = {"retry-after": str(refusal.retry_after)}
    if refusal.limit != "rpm":
        headers[SHOULD_RETRY_HEADER] = "false"
    if limits.rpm is not None:
        used = int(old.get("rpm_count", 0)) if old.get("rpm_window") == minute_window(at) else 0
        remaining = limits.rpm - used
        headers.update(RateInfo(limits.rpm, remaining, next_minute(at)).headers())
    return GatewayError(429, refusal.message, headers=headers)


class Unavailable(Exception):
    """DynamoDB could not be reached after retries."""


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, BotoCoreError):
        return True
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        if error.get("Code") in _RETRYABLE_CODES:
            return True
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in _RETRYABLE_STATUSES:
            return True
        reasons = {r.get("Code") for r in exc.response.get("CancellationReasons", [])}
        return bool(reasons & _RETRYABLE_REASONS) and "ConditionalCheckFailed" not in reasons
    return False


def _duplicate(exc: Exception) -> bool:
    """The transaction failed only because the request record already exists."""
    if not isinstance(exc, ClientError) or exc.response["Error"].get("Code") != "TransactionCanceledException":
        return False
    reasons = exc.response.get("CancellationReasons") or []
    return bool(reasons) and reasons[0].get("Code") == "ConditionalCheckFailed"


def _token() -> str:
    """One ClientRequestToken for every attempt of one write: DynamoDB answers a retried
    transaction it already applied (an answer lost on the way) as written, for 10 minutes,
    instead of cancelling it as a duplicate."""
    return str(uuid.uuid4())


class Ledger:
    def __init__(
        self,
        table: str,
        *,
        ttl_days: int = 400,
        queue_url: str | None = None,
        dynamodb: Callable[[], Any] | None = None,
        sqs: Callable[[], Any] = lambda: aws.client("sqs"),
        write_attempts: int = 4,
        reserve_attempts: int = 2,
        backoff: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table = table
        self.ttl_days = ttl_days
        self.queue_url = queue_url
        self._dynamodb = dynamodb or (lambda: aws.client("dynamodb"))
        # The ledger's writes go on the wire (transact_wire: a third of botocore's CPU), unless a
        # client was given: then everything goes through it.
        self._transact: Callable[[list[dict], str], Any] = transact_wire.transact_write_items if dynamodb is None \
            else (lambda items, token: dynamodb().transact_write_items(TransactItems=items, ClientRequestToken=token))
        self._sqs = sqs
        self._write_attempts = write_attempts
        self._reserve_attempts = reserve_attempts
        self._backoff = backoff
        self._sleep = sleep

    def _with_retries(self, call: Callable[[], Any], attempts: int) -> Any:
        for attempt in range(attempts):
            try:
                return call()
            except (BotoCoreError, ClientError) as exc:
                if _duplicate(exc) or not _retryable(exc) or attempt == attempts - 1:
                    raise
                self._sleep(self._backoff * (4 ** attempt))
        raise AssertionError("unreachable")

    # ---------------------------------------------------------- limits

    def reserve(self, key_id: str, at: datetime, limits: Limits, estimate: Estimate, *,
                whole: Limits | None = None) -> RateInfo | None:
        """Count the request against its rpm and reserve its estimate, or refuse with 429.
        `whole`: the key's limits when `limits` are a ledger shard's share (for the refusal's words).

        Fails closed: if DynamoDB cannot answer, a key with limits gets 503.
        """
        alone = refusal_reason({}, at, limits, estimate, whole=whole)
        if alone is not None:  # this request would pass the cap on an empty month
            raise _refused(alone, at, limits, {})
        dynamodb = self._dynamodb()
        same_window = True
        for _ in range(4):
            request = reservation_update(self.table, key_id, at, limits, estimate, same_window=same_window)
            try:
                answer = self._with_retries(lambda: dynamodb.update_item(**request), self._reserve_attempts)
            except ClientError as exc:
                if exc.response["Error"].get("Code") != "ConditionalCheckFailedException":
                    raise self._limits_unavailable(exc) from None
                old = from_item(exc.response.get("Item") or {})
                refusal = refusal_reason(old, at, limits, estimate, whole=whole)
                if refusal is not None:
                    raise _refused(refusal, at, limits, old)
                same_window = old.get("rpm_window") == minute_window(at)
                continue
            except BotoCoreError as exc:
                raise self._limits_unavailable(exc) from None
            attributes = from_item(answer.get("Attributes") or {})
            telemetry.month_spend(attributes.get("budget_usd"), limits.monthly_usd)
            if limits.rpm is None:
                return None
            count = int(attributes.get("rpm_count", 1))
            return RateInfo(limits.rpm, limits.rpm - count, next_minute(at))
        raise self._limits_unavailable(RuntimeError("rpm window kept moving"))

    @staticmethod
    def _limits_unavailable(exc: Exception) -> GatewayError:
        log.error("limit check failed (%s): refusing a key with limits", type(exc).__name__)
        return GatewayError(503, "Usage limits cannot be checked right now; try again shortly.",
                            headers={"retry-after": "5"})

    def release(self, key_id: str, at: datetime, estimate: Estimate) -> None:
        try:
            self._with_retries(lambda: self._dynamodb().update_item(
                **release_update(self.table, key_id, at, estimate)), self._write_attempts)
        except (BotoCoreError, ClientError) as exc:
            log.error("could not release a reservation for %s (%s)", key_id, type(exc).__name__)

    # ---------------------------------------------------------- ledger

    def write(self, entry: LedgerEntry) -> str:
        """Record + aggregates, exactly once: 'written' or 'duplicate'; raises if DynamoDB keeps failing."""
        items, token = ledger_transaction(self.table, [entry], self.ttl_days), _token()
        try:
            self._with_retries(lambda: self._transact(items, token), self._write_attempts)
        except ClientError as exc:
            if _duplicate(exc):
                return "duplicate"
            raise
        return "written"

    def record(self, entry: LedgerEntry) -> str:
        """write(), falling back to the queue, then to the log: never raises, never drops."""
        try:
            return self.write(entry)
        except (BotoCoreError, ClientError) as exc:
            return self._keep(entry, exc)

    def record_batch(self, entries: list[LedgerEntry]) -> list[str]:
        """record() for entries that arrived together, in one transaction when they can be.

        A record that is already there (or any other refusal) cancels the whole
        transaction, so then each is written alone; DynamoDB still failing after
        the retries sends them all to the queue, without trying each in turn.
        """
        if len(entries) == 1:
            return [self.record(entries[0])]
        items, token = ledger_transaction(self.table, entries, self.ttl_days), _token()
        try:
            self._with_retries(lambda: self._transact(items, token), self._write_attempts)
            return ["written"] * len(entries)
        except ClientError as exc:
            if not _retryable(exc):
                return [self.record(entry) for entry in entries]
            failure: Exception = exc
        except BotoCoreError as exc:
            failure = exc
        return self.spill_all(entries, failure)

    def spill_all(self, entries: list[LedgerEntry], failure: Exception) -> list[str]:
        """Entries DynamoDB would not take, or that cannot wait for it (the invocation's time is
        running out): queue, else log."""
        return [self._keep(entry, failure) for entry in entries]

    def _keep(self, entry: LedgerEntry, failure: Exception) -> str:
        """An entry DynamoDB would not take: to the queue, else whole to the log."""
        log.error("ledger write failed after retries (%s); queueing request %s",
                  type(failure).__name__, entry.request_id)
        return self.spill(entry)

    def spill(self, entry: LedgerEntry) -> str:
        """An entry the table cannot take now (failing, or too far behind): to the fallback
        queue, else whole to the log; `replay` writes queued ones back exactly once."""
        if self.queue_url:
            try:
                self._sqs().send_message(QueueUrl=self.queue_url, MessageBody=entry.to_json())
                return "queued"
            except (BotoCoreError, ClientError) as exc:
                log.error("ledger fallback queue failed (%s)", type(exc).__name__)
        log.critical("LEDGER_ENTRY_UNWRITTEN %s", entry.to_json())
        return "logged"

    def replay(self, *, wait_seconds: int = 1) -> dict[str, int]:
        """Write every queued entry back; each is deleted only once it is in the table."""
        counts = {"written": 0, "duplicate": 0, "failed": 0}
        sqs = self._sqs()
        while True:
            answer = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                         WaitTimeSeconds=wait_seconds, VisibilityTimeout=60)
            messages = answer.get("Messages") or []
            if not messages:
                return counts
            for message in messages:
                try:
                    outcome = self.write(LedgerEntry.from_json(message["Body"]))
                except (BotoCoreError, ClientError, ValueError, KeyError, TypeError) as exc:
                    log.error("replay of a queued entry failed (%s); it stays queued", type(exc).__name__)
                    counts["failed"] += 1
                    continue
                counts[outcome] += 1
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            if counts["failed"]:
                return counts

    def create_table(self) -> None:
        """The table as template.yaml declares it: for local stacks and tests (moto)."""
        dynamodb = self._dynamodb()
        try:  # asked of the table itself: ListTables answers a page of 100 names at a time
            dynamodb.create_table(
                TableName=self.table,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in TABLE_KEYS],
                KeySchema=[{"AttributeName": name, "KeyType": kind} for name, kind in TABLE_KEYS.items()],
            )
        except ClientError as exc:
            if exc.response["Error"].get("Code") == "ResourceInUseException":
                return  # already there
            raise
        dynamodb.update_time_to_live(TableName=self.table, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": TTL_ATTRIBUTE})

    # ---------------------------------------------------------- reports

    def months_present(self, key_ids: list[str], month: str) -> set[str]:
        """Which of these ledger ids have a MONTH item for `month` (YYYY-MM): BatchGetItem,
        100 keys a call, keys DynamoDB left unprocessed asked again."""
        dynamodb = self._dynamodb()
        found: set[str] = set()
        for start in range(0, len(key_ids), 100):
            keys = [{"pk": {"S": key_pk(key_id)}, "sk": {"S": f"MONTH#{month}"}}
                    for key_id in key_ids[start:start + 100]]
            request = {self.table: {"Keys": keys, "ProjectionExpression": "pk"}}
            while request:
                answer = dynamodb.batch_get_item(RequestItems=request)
                found.update(item["pk"]["S"].removeprefix("KEY#")
                             for item in answer.get("Responses", {}).get(self.table, []))
                request = answer.get("UnprocessedKeys") or None
        return found

    def month_report(self, key_id: str, month: str) -> dict:
        """Totals and per-day rows for one key and month (YYYY-MM)."""
        dynamodb = self._dynamodb()
        pk = {"S": key_pk(key_id)}
        month_item = dynamodb.get_item(TableName=self.table, Key={"pk": pk, "sk": {"S": f"MONTH#{month}"}})
        days, start = [], None
        while True:
            query = {"TableName": self.table,
                     "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
                     "ExpressionAttributeValues": {":pk": pk, ":prefix": {"S": f"DAY#{month}-"}}}
            if start:
                query["ExclusiveStartKey"] = start
            page = dynamodb.query(**query)
            days += [from_item(item) for item in page.get("Items", [])]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        return {
            "key_id": key_id,
            "month": month,
            "totals": report_row(from_item(month_item.get("Item") or {})),
            "days": [{"date": day["sk"].removeprefix("DAY#"), **report_row(day)} for day in days],
        }
