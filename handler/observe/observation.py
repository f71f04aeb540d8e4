"""What one request did, as the operator reads it: one log line and a few metrics.

Pure: `Observation` gathers the facts (observe/telemetry.py fills it in from the ASGI
layer, the routes and the ledger), `request_line` and `metric_sets` turn them
into what is written. Never in either: the caller's key (its `key_id` only),
provider credentials, prompts or completions.

Metrics have three views, each bounded: the whole service, per model and per
provider (catalogue ids only, never a name a caller typed, so no caller can
mint new metrics). Keys are not a dimension: one metric per key is what
explodes a CloudWatch bill. Per-key figures are in the log line (`key_id`,
`cost_usd`, `month_cap_share`), for Logs Insights and Contributor Insights;
the one per-key signal that is a metric, `KeySpendOverShare`, counts requests
from keys past a share of their monthly cap, without saying which (the line does).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from ..protocol.errors import error_type_for

MESSAGES_PATH = "/v3/v1/messages"
# The response header naming each upstream attempt and its time (pipeline/gateway.py's ATTEMPTS_HEADER):
# `model;status=200;ms=812, ...`, an attempt's ms being its wait for the provider's first content.
ATTEMPTS_HEADER = b"x-edenai-attempts"
_ATTEMPT_MS = re.compile(rb";ms=(\d+)")

# Every metric the gateway emits, with its unit: template.yaml's dashboard and alarms
# use exactly these names (tests/test_observability.py compares them).
METRIC_UNITS = {
    "Requests": "Count",
    "Errors": "Count",  # by error_type too (unhandled_exception: a bug, not a provider)
    "Latency": "Milliseconds",  # request in to response end
    "TTFB": "Milliseconds",  # request in to the response's first byte: the first token when streamed
    # TTFB less the time spent waiting for providers (every attempt's): what the gateway itself adds.
    # Per version too: a release rolls back on its own, never on a slow model or a long answer.
    "AddedLatency": "Milliseconds",
    "InputTokens": "Count",
    "OutputTokens": "Count",
    "CacheWriteTokens": "Count",
    "CacheReadTokens": "Count",
    "CostUSD": "None",
    "Fallbacks": "Count",  # attempts after the first
    "BreakerOpens": "Count",
    "LimitRefusals": "Count",  # 429 from the key's own limits, before any upstream call
    "LedgerSpills": "Count",  # usage that went to the fallback queue (or the log), not the table
    "KeySpendOverShare": "Count",  # requests from keys past GATEWAY_KEY_SPEND_ALERT_SHARE of their monthly_usd
}
TOKEN_METRICS = {"input_tokens": "InputTokens", "output_tokens": "OutputTokens",
                 "cache_creation_input_tokens": "CacheWriteTokens", "cache_read_input_tokens": "CacheReadTokens"}
SPILLED = frozenset({"queued", "logged"})
UNHANDLED = "unhandled_exception"
MAX_LOGGED_MODEL = 200  # a requested model is the caller's text


@dataclass
class Observation:
    method: str
    path: str
    started: float
    request_id: str | None = None
    lambda_request_id: str | None = None
    api_gateway_request_id: str | None = None
    trace_id: str | None = None  # X-Ray's root id
    key_id: str | None = None
    requested_model: str | None = None
    stream: bool | None = None
    served_model: str | None = None
    dropped_fields: list[str] = field(default_factory=list)
    expects_entry: bool = False  # the request reached an upstream: its ledger entry is coming
    status: int | None = None
    exception: str | None = None
    ttfb_ms: int | None = None
    upstream_wait_ms: int = 0  # the attempts' own times, from the response's ATTEMPTS_HEADER
    latency_ms: int | None = None
    entry: Any = None  # the request's ledger entry (metering's LedgerEntry), once written
    ledger: str | None = None  # written | duplicate | queued | logged
    breakers_opened: list[str] = field(default_factory=list)
    month_cap_share: float | None = None  # the key's monthly_usd used or reserved, this request included
    response_done: bool = False
    emitted: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def ready(self) -> bool:
        """Complete: the response ended, and the ledger entry is in if one is coming."""
        return self.response_done and (self.entry is not None or not self.expects_entry)

    @property
    def is_messages(self) -> bool:
        return self.method == "POST" and self.path == MESSAGES_PATH

    def model(self) -> str | None:
        """The catalogue model this request is counted under: the one that served, else the last tried."""
        if self.served_model:
            return self.served_model
        if self.entry is not None and self.entry.attempts:
            return self.entry.attempts[-1]["model"]
        return None

    def error_type(self) -> str | None:
        if self.exception is not None and self.status == 500:  # raised before any response: a bug
            return UNHANDLED
        if self.status is not None and self.status >= 400:
            return error_type_for(self.status)
        if self.entry is not None and self.entry.status == "stream_error" and self.entry.attempts:
            return error_type_for(self.entry.attempts[-1]["status"])
        return None

    def added_latency_ms(self) -> int | None:
        """The first byte's time not spent waiting for a provider (clock skew kept at 0)."""
        return None if self.ttfb_ms is None else max(0, self.ttfb_ms - self.upstream_wait_ms)

    def limit_refused(self) -> bool:
        """429 with no upstream attempt: the key's rpm or monthly cap, not a provider's."""
        return self.is_messages and self.status == 429 and self.entry is None


def upstream_wait_ms(attempts_header: bytes) -> int:
    """The summed `ms=` of an ATTEMPTS_HEADER value."""
    return sum(int(ms) for ms in _ATTEMPT_MS.findall(attempts_header))


def provider_of(model_id: str) -> str:
    """Catalogue ids are `provider/model`."""
    return model_id.split("/", 1)[0]


def request_line(o: Observation, *, spend_share: float) -> dict[str, Any]:
    """The structured log line's fields (None left out)."""
    entry, model = o.entry, o.model()
    line: dict[str, Any] = {
        "request_id": o.request_id, "lambda_request_id": o.lambda_request_id,
        "api_gateway_request_id": o.api_gateway_request_id, "trace_id": o.trace_id,
        "method": o.method, "path": o.path, "status": o.status, "key_id": o.key_id or (entry.key_id if entry else None),
        "requested_model": (o.requested_model or "")[:MAX_LOGGED_MODEL] or None,
        "served_model": o.served_model, "provider": provider_of(model) if model else None,
        "stream": o.stream, "ttfb_ms": o.ttfb_ms, "added_latency_ms": o.added_latency_ms(),
        "latency_ms": o.latency_ms,
        "dropped_fields": o.dropped_fields or None,
        "error_type": o.error_type(), "exception": o.exception,
        "breakers_opened": o.breakers_opened or None,
    }
    if entry is not None:
        line.update(attempts=entry.attempts, fallbacks=max(0, len(entry.attempts) - 1), **entry.usage.as_dict(),
                    cost_usd=float(entry.cost_usd), priced=entry.priced, outcome=entry.status, ledger=o.ledger)
    if o.month_cap_share is not None:
        line.update(month_cap_share=round(o.month_cap_share, 4), key_over_spend_share=o.month_cap_share >= spend_share)
    if o.limit_refused():
        line["limit_refused"] = True
    return {name: value for name, value in line.items() if value is not None}


MetricSet = tuple[dict[str, float], list[dict[str, str]]]


def metric_sets(o: Observation, *, spend_share: float, version: str | None = None) -> list[MetricSet]:
    """(values, extra dimension sets) per EMF document; each also counts at the service level.

    Messages requests only (the other routes are in the log). Errors and breaker
    openings are documents of their own, so that their per-type and per-model views
    do not multiply every other metric. `version` (the function version serving,
    under Lambda) adds the two series a release is judged on: its AddedLatency and
    its unhandled exceptions.
    """
    if not o.is_messages:
        return []
    model, entry = o.model(), o.entry
    by_model = [{"model": model}, {"provider": provider_of(model)}] if model else []
    values: dict[str, float] = {"Requests": 1, "Latency": o.latency_ms or 0}
    if o.ttfb_ms is not None:
        values["TTFB"] = o.ttfb_ms
    if entry is not None:
        usage = entry.usage.as_dict()
        values.update({metric: usage[name] for name, metric in TOKEN_METRICS.items()})
        values.update(CostUSD=float(entry.cost_usd), Fallbacks=max(0, len(entry.attempts) - 1),
                      LedgerSpills=1 if o.ledger in SPILLED else 0)
    if o.limit_refused():
        values["LimitRefusals"] = 1
    if o.month_cap_share is not None:
        values["KeySpendOverShare"] = 1 if o.month_cap_share >= spend_share else 0
    sets: list[MetricSet] = [(values, by_model)]
    added = o.added_latency_ms()
    if added is not None:
        sets.append(({"AddedLatency": added}, [{"version": version}] if version else []))
    error = o.error_type()
    if error is not None:
        by_version = [{"error_type": error, "version": version}] if version and error == UNHANDLED else []
        sets.append(({"Errors": 1}, [{"error_type": error}, *by_model, *by_version]))
    for opened in o.breakers_opened:
        sets.append(({"BreakerOpens": 1}, [{"model": opened}, {"provider": provider_of(opened)}]))
    return sets
