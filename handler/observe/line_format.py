"""Powertools' JSON formatter, with its one scan per field made a set lookup.

Powertools' LambdaPowertoolsFormatter picks a record's extra fields by testing
each of the record's attributes against `RESERVED_LOG_ATTRS`, a tuple of 24
names: a request's line carries about 40 fields of its own besides logging's 20,
so about 13 of the log call's 47 µs of CPU went to scanning that tuple
(`python -m scripts.benchmark.request_path`; README: CPU per request). It also
tries each message as JSON (a message that is a JSON document is written as
one), and the request line's "request" failed that try at the cost of an
exception. This formatter is Powertools' own with that test a frozenset lookup,
and no try for a text no JSON document can begin with: the same keys in the
same order, the same line (tests/test_line_format.py writes records through
both and compares the bytes).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aws_lambda_powertools.logging.formatter import RESERVED_LOG_ATTRS, LambdaPowertoolsFormatter, _get_context

_RESERVED = frozenset(RESERVED_LOG_ATTRS)
# What json.loads finds first in a document, after JSON's whitespace (NaN and Infinity included).
_JSON_STARTS = frozenset('{["-0123456789tfnNI')
_JSON_WHITESPACE = " \t\n\r"


class LineFormatter(LambdaPowertoolsFormatter):
    """LambdaPowertoolsFormatter: `_extract_log_keys` as Powertools 3 writes it but for the lookup,
    and a message no JSON document can begin with kept as it is without the try."""

    def _extract_log_message(self, log_record: logging.LogRecord) -> Any:
        message = log_record.msg
        if (isinstance(message, str) and not log_record.args and self.json_deserializer is json.loads
                and message.lstrip(_JSON_WHITESPACE)[:1] not in _JSON_STARTS):
            return message  # what Powertools returns once json.loads has refused it
        return super()._extract_log_message(log_record)

    def _extract_log_keys(self, log_record: logging.LogRecord) -> dict[str, Any]:
        record_dict = log_record.__dict__.copy()
        record_dict["asctime"] = self.formatTime(record=log_record)
        extras = {k: v for k, v in record_dict.items() if k not in _RESERVED}
        formatted_log: dict[str, Any] = {}
        for keys in (self.log_format, _get_context().get()):
            for key, value in keys.items():
                if value and key in _RESERVED:
                    if not isinstance(value, str):
                        raise ValueError("Logging keys that override reserved log attributes need to be type "
                                         f"'str', instead got '{type(value).__name__}'")
                    formatted_log[key] = value % record_dict
                else:
                    formatted_log[key] = value
        formatted_log.update(**extras)
        return formatted_log
