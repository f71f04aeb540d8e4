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
from pydantic import BaseModel, TypeAdapter, ValidationError

from .errors import GatewayError
from .schemas import AnthropicContentBlock, AnthropicMessage

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


# Content blocks per validation call: the validator holds the GIL for a whole call, so a
# worker thread running it gives the event loop its turn between slices, never mid-slice.
SLICE = 1_000
_MESSAGES = TypeAdapter(list[AnthropicMessage])
_BLOCKS = TypeAdapter(list[AnthropicContentBlock])


def _head(message: Any) -> Any:
    """A message with its content cut to one block: the rest is validated in slices."""
    if isinstance(message, dict) and isinstance(message.get("content"), list):
        return {**message, "content": message["content"][:1]}
    return message


def _slices(model: type[BaseModel], document: Any):
    """(validator, value, where) calls that together validate `document` as `model`, each
    over at most about SLICE blocks."""
    messages = document.get("messages") if isinstance(document, dict) else None
    if not isinstance(messages, list) or model.model_fields.get("messages") is None \
            or model.model_fields["messages"].annotation != list[AnthropicMessage]:
        yield model, document, ()
        return
    yield model, {**document, "messages": [_head(m) for m in messages[:1]]}, ()
    start, batch, size = 0, [], 0
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and len(content) > SLICE:
            if batch:
                yield _MESSAGES, batch, ("messages", start)
            yield _MESSAGES, [_head(message)], ("messages", i)
            for j in range(1, len(content), SLICE):
                yield _BLOCKS, content[j:j + SLICE], ("messages", i, "content", j)
            start, batch, size = i + 1, [], 0
            continue
        batch.append(message)
        size += len(content) if isinstance(content, list) else 1
        if size >= SLICE:
            yield _MESSAGES, batch, ("messages", start)
            start, batch, size = i + 1, [], 0
    if batch:
        yield _MESSAGES, batch, ("messages", start)


def _located(loc: tuple, where: tuple) -> list:
    """An error's place in the whole body: a slice's indices shifted by where it starts."""
    if not where:
        return list(loc)
    *path, offset = where
    return [*path, loc[0] + offset, *loc[1:]] if loc and isinstance(loc[0], int) else [*path, *loc]


def _one_slice(document: Any) -> bool:
    """Whether the body's messages hold fewer than SLICE blocks: its slices are then the
    whole body twice over (its head, then every message), and one call is their verdict."""
    messages = document.get("messages") if isinstance(document, dict) else None
    if not isinstance(messages, list) or len(messages) >= SLICE:
        return False
    size = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        size += len(content) if isinstance(content, list) else 1
    return size < SLICE


def validate(model: type[M], document: Any) -> None:
    """The spec's schema; failures answer 422 in FastAPI's HTTPValidationError shape.
    Validated in slices (see SLICE), so a large body never holds the GIL long. A body of
    one slice is validated whole first (one call instead of two, every request pays it);
    only a refused one goes through the slices, whose errors are the ones a caller reads
    (the first slice's only: its head, before any other message is looked at)."""
    if _one_slice(document):
        try:
            model.model_validate(document)
            return
        except ValidationError:
            pass
        except RecursionError:
            raise GatewayError(400, "Request body is nested too deeply.") from None
    for validator, value, where in _slices(model, document):
        try:
            if isinstance(validator, TypeAdapter):
                validator.validate_python(value)
            else:
                validator.model_validate(value)
        except ValidationError as exc:
            errors = [
                {"loc": ["body", *_located(error["loc"], where)], "msg": error["msg"], "type": error["type"]}
                for error in exc.errors(include_url=False, include_input=False, include_context=False)
            ]
            raise RequestValidationError(errors) from None
        except RecursionError:
            raise GatewayError(400, "Request body is nested too deeply.") from None
