"""The request line's formatter writes what Powertools' own formatter writes, byte for byte.

handler/observe/line_format.py keeps Powertools' LambdaPowertoolsFormatter but for one
lookup; these write the same records through the gateway's logger and a stock Powertools
Logger configured as the gateway's was, and compare the lines an operator would read.
"""

from __future__ import annotations

import io
import logging
import uuid
from decimal import Decimal

import pytest
from aws_lambda_powertools import Logger

from handler.observe.observation import Observation, metric_fields, request_line
from handler.observe.telemetry import Telemetry
from handler.metering.items import LedgerEntry
from handler.protocol.usage import Usage

SERVICE = "edenai-gateway"


def _observation(**facts) -> Observation:
    observation = Observation("POST", "/v3/v1/messages", 0.0, request_id="req_0123456789abcdef01234567",
                              lambda_request_id="8a1f-lambda", trace_id="1-6752-abc")
    for name, value in {"status": 200, "ttfb_ms": 412, "latency_ms": 980, "key_id": "k_1",
                        "requested_model": "anthropic/claude-sonnet-4-5", "served_model": "anthropic/claude-sonnet-4-5",
                        "stream": False, "upstream_wait_ms": 400, **facts}.items():
        setattr(observation, name, value)
    return observation


def _entry() -> LedgerEntry:
    return LedgerEntry(key_id="k_1", request_id="req_0123456789abcdef01234567", at="2026-12-07T08:00:00+00:00",
                       requested_model="anthropic/claude-sonnet-4-5", served_model="anthropic/claude-sonnet-4-5",
                       attempts=[{"model": "anthropic/claude-sonnet-4-5", "status": 200, "latency_ms": 400}],
                       usage=Usage(12, 9, 3, 4, {"web_search_requests": 1}), cost_usd=Decimal("0.000171"),
                       priced=True, stream=False, status="ok")


def _fields(observation: Observation) -> dict:
    line = request_line(observation, spend_share=0.8)
    line.update(metric_fields(observation, namespace="EdenAIGateway", spend_share=0.8, version="7", now_ms=1_796_629_744_908))
    return line


OBSERVATIONS = {
    "served": lambda: _observation(entry=_entry(), ledger="written", response_done=True),
    "refused": lambda: _observation(status=429, served_model=None, ttfb_ms=3, latency_ms=3),
    "unhandled": lambda: _observation(status=500, exception="KeyError", served_model=None),
    "odd text": lambda: _observation(requested_model="ünïcode/模型 \"quoted\"\n", dropped_fields=["speed"]),
}


def _record(extra: dict, *, level: int = logging.INFO, msg: str = "request") -> logging.LogRecord:
    record = logging.LogRecord("edenai-gateway", level, "/work/handler/observe/telemetry.py", 144, msg, None, None,
                               func="_emit")
    record.__dict__.update(extra)
    return record


class _Same:
    """Two loggers' formatters writing one record; the service names told apart (Powertools
    shares one logging.Logger, and its formatter, between Loggers of one service)."""

    def __init__(self, ours: Logger, stock: Logger, names: tuple[str, str]) -> None:
        self.ours, self.stock, self.names = ours, stock, names

    def lines(self, record: logging.LogRecord) -> tuple[str, str]:
        return (self.ours.registered_formatter.format(record).replace(self.names[0], SERVICE),
                self.stock.registered_formatter.format(record).replace(self.names[1], SERVICE))


@pytest.fixture
def loggers():
    """The gateway's logger and Powertools' stock one, configured as the gateway configured it."""
    names = (f"gw-ours-{uuid.uuid4().hex}", f"gw-stock-{uuid.uuid4().hex}")
    ours = Telemetry(service=names[0], namespace="EdenAIGateway", spend_share=0.8)._logger
    stock = Logger(service=names[1], stream=io.StringIO(), xray_trace_id=None)
    assert type(ours.registered_formatter) is not type(stock.registered_formatter)
    return _Same(ours, stock, names)


@pytest.mark.parametrize("name", OBSERVATIONS)
def test_the_request_line_is_what_powertools_writes(loggers, name):
    mine, theirs = loggers.lines(_record(_fields(OBSERVATIONS[name]())))
    assert '"request_id":"req_0123456789abcdef01234567"' in mine
    assert mine == theirs, "the operator's log line differs from the one Powertools' own formatter writes"


def test_other_lines_keys_and_context_keys_are_written_as_powertools_writes_them(loggers):
    for logger in (loggers.ours, loggers.stock):
        logger.append_keys(cold_start=True, location_hint="eu")
    record = _record({"detail": {"a": [1, 2]}, "amount": Decimal("1.5")}, level=logging.WARNING, msg='{"as": "json"}')
    loggers.ours.thread_safe_append_keys(tenant="t1")  # a context variable, shared by every formatter
    try:
        with loggers.ours.append_context_keys(step="one"), loggers.stock.append_context_keys(step="one"):
            mine, theirs = loggers.lines(record)
    finally:
        loggers.ours.thread_safe_clear_keys()
    assert '"tenant":"t1"' in mine and '"cold_start":true' in mine and '"step":"one"' in mine
    assert mine == theirs, "a line with appended and context keys differs from Powertools' own"


@pytest.mark.parametrize("message", ["request", "", "   ", "not json", "{broken", ' {"as": "json"}', "\n42", "-1.5",
                                     "true", "null", "NaN", "Infinity", '"quoted"', "[1, 2]", "\ufeff{}", "ünï"])
def test_a_message_is_written_as_powertools_writes_it_json_or_not(loggers, message):
    mine, theirs = loggers.lines(_record({"status": 200}, msg=message))
    assert mine == theirs, f"the message {message!r} is written otherwise than Powertools writes it"
