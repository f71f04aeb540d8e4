"""Reading a request body: size cap, content type, strict JSON, the spec's schema.

Anthropic's API and API Gateway both refuse bodies over 10 MB; reading stops
at the cap rather than buffering whatever arrives. JSON that Python would
accept but no other parser agrees on (NaN, Infinity, duplicate keys) is
refused, so what we validate is what the upstream will see.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Mapping, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from .errors import GatewayError

M = TypeVar("M", bound=BaseModel)


async def read_limited(headers: Mapping[str, str], chunks: AsyncIterator[bytes], limit: int) -> bytes:
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise GatewayError(413, f"Request body is larger than {limit} bytes.")
    received = bytearray()
    async for chunk in chunks:
        received += chunk
        if len(received) > limit:
            raise GatewayError(413, f"Request body is larger than {limit} bytes.")
    return bytes(received)


def check_content_type(content_type: str | None) -> None:
    """JSON bodies only; a missing header is taken as JSON, as curl users expect."""
    if not content_type:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise GatewayError(415, f"Content-Type must be application/json, not {media!r}.")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise GatewayError(400, f"Malformed JSON: duplicate key {duplicate!r}.")
    return obj


def _no_constants(name: str) -> Any:
    raise GatewayError(400, f"Malformed JSON: {name} is not a JSON number.")


INT64 = 2**63


def _int64(text: str) -> int:
    """Integers beyond 64 bits parse in Python but overflow every other parser upstream."""
    try:
        value = int(text)
    except ValueError:  # more digits than Python will convert
        raise GatewayError(400, "Malformed JSON: an integer has too many digits.") from None
    if not -INT64 <= value < INT64:
        raise GatewayError(400, f"Malformed JSON: {text[:30]} does not fit in 64 bits.")
    return value


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise GatewayError(400, "Request body is empty; a JSON object is required.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GatewayError(400, f"Request body is not valid UTF-8 (byte {exc.start}).") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants,
                          parse_int=_int64)
    except json.JSONDecodeError as exc:
        raise GatewayError(400, f"Malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.") from None
    except RecursionError:
        raise GatewayError(400, "Malformed JSON: nested too deeply.") from None


def validate(model: type[M], document: Any) -> M:
    """The spec's schema; failures answer 422 in FastAPI's HTTPValidationError shape."""
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        errors = [
            {"loc": ["body", *error["loc"]], "msg": error["msg"], "type": error["type"]}
            for error in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
        raise RequestValidationError(errors) from None
    except RecursionError:
        raise GatewayError(400, "Request body is nested too deeply.") from None
