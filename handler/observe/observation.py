"""What one request did, as the operator reads it: one log line, which carries its metrics.

Pure: `Observation` gathers the facts (observe/telemetry.py fills it in from the ASGI
layer, the routes and the ledger), `request_line` and `metric_fields` turn them
into what is written. Never in either: the caller's key (its `key_id` only),
provider credentials, prompts or completions.

CloudWatch bills each metric (name and dimension values) per month it is sent,
whatever the traffic, while a log line costs its bytes once: so the metrics are
the few series the dashboard's graphs and the alarms read, by service only (and
by function version, the two a release is judged on), and every other view (per
model, per provider, per key, tokens, cost, fallbacks) is a Logs Insights query
on the line's fields (template.yaml's saved queries and dashboard tables). The
metrics ride in the line itself, in CloudWatch's embedded metric format: one
JSON document per request, no second document and no API call.
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
# use exactly these names (tests/test_template.py compares them), each by `service`.
METRIC_UNITS = {
    "Requests": "Count",
    "Errors": "Count",  # 0 or 1, so that its average is the error rate; the type is the line's error_type
    "Latency": "Milliseconds",  # request in to response end
    "TTFB": "Milliseconds",  # request in to the response's first byte: the first token when streamed
    # TTFB less the time spent waiting for providers (every attempt's): what the gateway itself adds.
    # Per version too: a release rolls back on its own, never on a slow model or a long answer.
    "AddedLatency": "Milliseconds",
    "LedgerSpills": "Count",  # usage that went to the fallback queue (or the log), not the table
    "KeySpendOverShare": "Count",  # requests from keys past GATEWAY_KEY_SPEND_ALERT_SHARE of their monthly_usd
}
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


def metric_fields(o: Observation, *, namespace: str, spend_share: float, version: str | None,
                  now_ms: int) -> dict[str, Any]:
    """The line's embedded-metric-format fields: each metric's value at the top level, `_aws` naming them.

    Messages requests only (the other routes are in the log). One directive by
    `service` (the line's own `service` field); with `version` (the function version
    serving, under Lambda) two more, for the series a release is judged on: its
    AddedLatency and its unhandled exceptions (the line's `error_type`).
    """
    if not o.is_messages:
        return {}
    error = o.error_type()
    values: dict[str, Any] = {"Requests": 1, "Errors": 1 if error else 0, "Latency": o.latency_ms or 0}
    added = o.added_latency_ms()
    if added is not None:
        values.update(TTFB=o.ttfb_ms, AddedLatency=added)
    if o.entry is not None:
        values["LedgerSpills"] = 1 if o.ledger in SPILLED else 0
    if o.month_cap_share is not None:
        values["KeySpendOverShare"] = 1 if o.month_cap_share >= spend_share else 0
    directives = [_directive(namespace, ["service"], values)]
    if version:
        values["version"] = version
        if added is not None:
            directives.append(_directive(namespace, ["service", "version"], ["AddedLatency"]))
        if error == UNHANDLED:
            directives.append(_directive(namespace, ["service", "error_type", "version"], ["Errors"]))
    values["_aws"] = {"Timestamp": now_ms, "CloudWatchMetrics": directives}
    return values


def _directive(namespace: str, dimensions: list[str], names) -> dict[str, Any]:
    return {"Namespace": namespace, "Dimensions": [dimensions],
            "Metrics": [{"Name": name, "Unit": METRIC_UNITS[name]} for name in names]}
