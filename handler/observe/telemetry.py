"""Writes each request's Observation once it is complete: one JSON log line that carries its metrics.

A request's outcome is known in pieces, at different times: `Middleware` sees
the response (status, first byte, end) and any exception; the routes `note`
who called and what was asked; `ObservedLedger` sees the ledger entry that the
gateway records for every request that reached an upstream, and whether it
reached the table. For a stream that entry can come after the response ended
(the upstream is read to its end), so the observation is written by whichever
comes last, under its lock: exactly once.

Powertools for AWS Lambda's Logger writes the line to stdout (Lambda sends it to
CloudWatch Logs, which turns the line's embedded metric format into metrics
without an API call on the request path). The metrics' fields are built here
(observation.metric_fields), not by Powertools' Metrics, which validated each
metric and wrote a document of its own per dimension set: most of the
telemetry's CPU per request. Its Tracer is not used: the X-Ray SDK it wraps
cost 434 ms to import and patch botocore and httpx (README: Operating).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from contextvars import ContextVar
from typing import Any, Mapping

from aws_lambda_powertools import Logger

from .line_format import LineFormatter
from .observation import ATTEMPTS_HEADER, Observation, metric_fields, request_line, upstream_wait_ms

UNOBSERVED_PATHS = frozenset({"/health", "/_lambda/snapstart/before-snapshot", "/_lambda/snapstart/after-restore"})

_current: ContextVar[Observation | None] = ContextVar("gateway_observation", default=None)
log = logging.getLogger(__name__)


class _Stdout:
    """Whatever sys.stdout is when a line is written (Lambda's, uvicorn's, a test's capture)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


# ------------------------------------------------------------------ notes from the routes and the ledger

def note(**facts: Any) -> None:
    """Set facts on the current request's observation (none outside a request)."""
    observation = _current.get()
    if observation is not None:
        for name, value in facts.items():
            setattr(observation, name, value)


def request_body(document: Any) -> None:
    if not isinstance(document, Mapping):
        return
    model = document.get("model")
    note(requested_model=model if isinstance(model, str) else None, stream=bool(document.get("stream")))


def served(model, dropped: tuple[str, ...] = ()) -> None:
    """The model that answered, and the request's fields it could not be sent (pipeline/adaptation.py);
    its ledger entry is on its way."""
    observation = _current.get()
    if observation is not None:
        observation.served_model = model.id
        observation.expects_entry = True
        observation.dropped_fields = list(dropped)


def breaker_opened(model_id: str) -> None:
    observation = _current.get()
    if observation is not None:
        observation.breakers_opened.append(model_id)


def month_spend(budget_usd: Any, monthly_usd: Any) -> None:
    """The key's month so far (settled and reserved, this request included) against its cap."""
    if budget_usd is not None and monthly_usd:
        note(month_cap_share=float(budget_usd) / float(monthly_usd))


# ------------------------------------------------------------------ writing

class Telemetry:
    def __init__(self, *, service: str, namespace: str, spend_share: float) -> None:
        self.service = service
        self.namespace = namespace
        self.spend_share = spend_share
        # xray_trace_id=None: Powertools' own field reads _X_AMZN_TRACE_ID, which the streaming
        # mode's process never has; the line's `trace_id` is known in both modes.
        # Powertools' own formatter, its reserved-name test a set lookup (line_format.py).
        self._logger = Logger(service=service, stream=_Stdout(), xray_trace_id=None,
                              logger_formatter=LineFormatter(service=service, sampling_rate=None, xray_trace_id=None))
        # Its own handler writes the line; the root logger's (Lambda's JSON one) must not write it again.
        logging.getLogger(service).propagate = False
        self._live: dict[str, Observation] = {}

    @classmethod
    def from_settings(cls, settings) -> "Telemetry":
        return cls(service=settings.service_name, namespace=settings.metrics_namespace,
                   spend_share=settings.key_spend_alert_share)

    def started(self, observation: Observation) -> None:
        if observation.request_id:
            self._live[observation.request_id] = observation

    def response_ended(self, observation: Observation) -> None:
        observation.response_done = True
        self._emit_if_ready(observation)

    def metered(self, request_id: str, entry, outcome: str) -> None:
        observation = self._live.get(request_id)
        if observation is not None:
            observation.entry, observation.ledger = entry, outcome
            self._emit_if_ready(observation)

    def flush(self) -> None:
        """Write what is still waiting for an entry that will not come (the invocation is over)."""
        for observation in list(self._live.values()):
            if observation.response_done:
                self._emit(observation)

    def _emit_if_ready(self, observation: Observation) -> None:
        if observation.ready():
            self._emit(observation)

    def _emit(self, observation: Observation) -> None:
        with observation.lock:
            if observation.emitted:
                return
            observation.emitted = True
        try:
            line = request_line(observation, spend_share=self.spend_share)
            # Lambda sets it per version ("$LATEST" unpublished): what a release's alarms select on.
            line.update(metric_fields(observation, namespace=self.namespace, spend_share=self.spend_share,
                                      version=os.environ.get("AWS_LAMBDA_FUNCTION_VERSION"),
                                      now_ms=int(time.time() * 1000)))
            self._logger.info("request", extra=line)
        except Exception:  # noqa: BLE001 - telemetry must never fail a request
            log.exception("could not write request telemetry")
        finally:
            # Out of the live set once written, not before: it is what is still to be written.
            self._live.pop(observation.request_id or "", None)


# ------------------------------------------------------------------ the ASGI side

LAMBDA_CONTEXT_HEADER = b"x-amzn-lambda-context"
REQUEST_CONTEXT_HEADER = b"x-amzn-request-context"


def _invocation_ids(scope) -> dict[str, str | None]:
    """The Lambda and API Gateway request ids, and the X-Ray trace id.

    Mangum puts the event and the context in the scope; the Lambda Web Adapter passes them
    as JSON headers. The trace id: the Python runtime sets _X_AMZN_TRACE_ID for each
    invocation (buffered); the adapter's Lambda context carries it (streaming).
    """
    context, event = scope.get("aws.context"), scope.get("aws.event")
    if event is not None:
        return {"lambda_request_id": getattr(context, "aws_request_id", None),
                "api_gateway_request_id": (event.get("requestContext") or {}).get("requestId"),
                "trace_id": _trace_root(os.environ.get("_X_AMZN_TRACE_ID"))}
    lambda_raw = request_raw = None  # one pass over the headers, no JSON read when neither came
    for name, value in scope.get("headers") or ():
        if name == LAMBDA_CONTEXT_HEADER:
            lambda_raw = value
        elif name == REQUEST_CONTEXT_HEADER:
            request_raw = value
    if lambda_raw is None and request_raw is None:
        return {}
    try:
        lambda_context = json.loads(lambda_raw or b"{}")
        request_context = json.loads(request_raw or b"{}")
    except ValueError:
        return {}
    if not isinstance(lambda_context, dict) or not isinstance(request_context, dict):
        return {}
    return {"lambda_request_id": lambda_context.get("request_id"),
            "api_gateway_request_id": request_context.get("requestId"),
            "trace_id": _trace_root(lambda_context.get("xray_trace_id"))}


def _trace_root(header: str | None) -> str | None:
    """`Root=1-…;Parent=…;Sampled=1` -> `1-…`, the id X-Ray's console searches by."""
    if not isinstance(header, str):
        return None
    fields = dict(part.split("=", 1) for part in header.split(";") if "=" in part)
    return fields.get("Root")


class Middleware:
    """Opens an Observation per request, times the response, hands it to Telemetry at the end.

    Installed inside ResponseHeadersMiddleware, so the request id is in the scope already.
    """

    def __init__(self, app, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] in UNOBSERVED_PATHS:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        observation = Observation(scope["method"], scope["path"], started,
                                  request_id=(scope.get("state") or {}).get("request_id"), **_invocation_ids(scope))
        self.telemetry.started(observation)
        token = _current.set(observation)

        def ms() -> int:
            return int((time.perf_counter() - started) * 1000)

        async def observed_send(message) -> None:
            if message["type"] == "http.response.start":
                observation.status = message["status"]
                for name, value in message.get("headers") or ():
                    if name.lower() == ATTEMPTS_HEADER:
                        observation.upstream_wait_ms = upstream_wait_ms(value)
            elif message["type"] == "http.response.body":
                if observation.ttfb_ms is None and (message.get("body") or not message.get("more_body")):
                    observation.ttfb_ms = ms()
                if not message.get("more_body"):
                    observation.latency_ms = ms()
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except BaseException as exc:
            # Raised before any response: ServerErrorMiddleware answers 500 (a bug, unhandled_exception);
            # cancelled, the client left (499, nginx's word for it). After the response began: noted only.
            observation.exception = type(exc).__name__
            if observation.status is None:
                observation.status = 499 if isinstance(exc, asyncio.CancelledError) else 500
            raise
        finally:
            _current.reset(token)
            if observation.latency_ms is None:
                observation.latency_ms = ms()
            self.telemetry.response_ended(observation)


class ObservedLedger:
    """The ledger, telling Telemetry what became of each entry (written, queued...).

    Entries are matched to their request by request id, not by context: group
    commit writes several requests' entries in one call.
    """

    def __init__(self, ledger, telemetry: Telemetry) -> None:
        self._ledger = ledger
        self._telemetry = telemetry

    def __getattr__(self, name: str):
        return getattr(self._ledger, name)

    def record_batch(self, entries: list) -> list[str]:
        return self._told(entries, self._ledger.record_batch(entries))

    def spill(self, entry) -> str:
        return self._told([entry], [self._ledger.spill(entry)])[0]

    def spill_all(self, entries: list, error: BaseException) -> list[str]:
        return self._told(entries, self._ledger.spill_all(entries, error))

    def _told(self, entries: list, outcomes: list[str]) -> list[str]:
        for entry, outcome in zip(entries, outcomes):
            self._telemetry.metered(entry.request_id, entry, outcome)
        return outcomes
