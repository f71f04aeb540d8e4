"""The litellm call, its failures in Anthropic's terms, and the stream relay.

litellm raises openai-style exceptions carrying the upstream's status; the
caller must see Anthropic's status and error type instead, with provider
credentials redacted from any relayed message. A stream is relayed event by
event: upstream bytes pass through untouched except message_start, whose
`model` becomes the catalogue id, while usage is tracked for metering.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any, AsyncIterator, Callable, Iterable

import litellm

from . import sse
from .errors import GatewayError, error_body
from .usage import Usage

log = logging.getLogger(__name__)

litellm.use_chat_completions_url_for_anthropic_messages = True
litellm.suppress_debug_info = True
litellm.telemetry = False
litellm.drop_params = True

_MAX_RELAYED_MESSAGE = 500


def redact(message: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 6:
            message = message.replace(secret, "[redacted]")
    # Anything that looks like a bearer or provider key, even one we do not know.
    message = re.sub(r"\b(sk-[A-Za-z0-9_-]{6,}|egw_[A-Za-z0-9_-]{6,})", "[redacted]", message)
    return message[:_MAX_RELAYED_MESSAGE]


def _status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _retry_after(exc: BaseException) -> str | None:
    for headers in (getattr(exc, "litellm_response_headers", None),
                    getattr(getattr(exc, "response", None), "headers", None)):
        value = headers.get("retry-after") if hasattr(headers, "get") else None
        if value:
            return str(value)
    return None


_EXCEPTION_PREFIX = re.compile(r"^(litellm\.\w+: )?(\w+: )?(\w+Exception - )?")


def upstream_message(exc: BaseException) -> str:
    """The provider's own words, without litellm's class-name prefixes or JSON wrapping."""
    text = _EXCEPTION_PREFIX.sub("", str(getattr(exc, "message", None) or exc), count=1)
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            return text
        error = document.get("error") if isinstance(document, dict) else None
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(error, str):
            return error
    return text


def map_exception(exc: BaseException, *, secrets: Iterable[str | None] = ()) -> GatewayError:
    """An upstream failure as the Anthropic error a client expects (pure)."""
    if isinstance(exc, GatewayError):
        return exc
    message = redact(upstream_message(exc), secrets)
    if isinstance(exc, (asyncio.TimeoutError, litellm.Timeout)) or "timed out" in message.lower():
        return GatewayError(504, "The upstream model did not answer in time.")
    status = _status_of(exc)
    if isinstance(exc, litellm.APIConnectionError) or status is None:
        return GatewayError(502, f"Could not reach the upstream model: {message}", error_type="api_error")
    if status == 529 or "overloaded" in message.lower():
        return GatewayError(529, "The upstream model is overloaded.", headers=_retry_headers(exc, "5"))
    if status == 429:
        return GatewayError(429, f"The upstream provider is rate limiting: {message}",
                            headers=_retry_headers(exc, "10"))
    if status in (401, 403):
        # The provider refused *our* credentials: not the caller's fault.
        return GatewayError(502, "The upstream provider refused the gateway's credentials.",
                            error_type="api_error")
    if status in (408, 504):
        return GatewayError(504, "The upstream model did not answer in time.")
    if status == 413:
        return GatewayError(413, f"Request too large for the upstream model: {message}")
    if 400 <= status < 500:
        return GatewayError(400, message)
    return GatewayError(502, f"The upstream model failed: {message}", error_type="api_error")


def _retry_headers(exc: BaseException, default: str) -> dict[str, str]:
    value = _retry_after(exc) or default
    return {"retry-after": value if value.isdigit() else default}


def error_event(error: GatewayError) -> bytes:
    return sse.encode("error", error_body(error.error_type, error.message))


async def send(kwargs: dict[str, Any]) -> Any:
    """One upstream attempt; failures come out as GatewayError."""
    try:
        return await litellm.anthropic.messages.acreate(**kwargs)
    except GatewayError:
        raise
    except Exception as exc:  # noqa: BLE001 - every upstream failure is mapped
        raise map_exception(exc, secrets=(kwargs.get("api_key"),)) from exc


class StreamRelay:
    """Relays one upstream stream; `usage`, `stop_reason` and `error` are known at its end."""

    def __init__(self, upstream: AsyncIterator[Any], *, model_id: str, secrets: Iterable[str | None] = ()):
        self._upstream = upstream.__aiter__()
        self._model_id = model_id
        self._secrets = tuple(secrets)
        self._parser = sse.Parser()
        self._pending: list[bytes] = []
        self._started = False
        self.usage = Usage()
        self.stop_reason: str | None = None
        self.error: GatewayError | None = None
        self.completed = False

    async def first(self) -> None:
        """Read until the first event is ready, so an early failure is an HTTP error, not a 200."""
        while not self._pending:
            chunk = await self._next_chunk()
            if chunk is None:
                raise GatewayError(502, "The upstream model ended the stream before it began.",
                                   error_type="api_error")
            self._pending.extend(self._consume(chunk))

    async def _next_chunk(self) -> bytes | None:
        try:
            chunk = await self._upstream.__anext__()
        except StopAsyncIteration:
            return None
        except GatewayError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise map_exception(exc, secrets=self._secrets) from exc
        if isinstance(chunk, str):
            chunk = chunk.encode()
        elif isinstance(chunk, dict):
            chunk = sse.encode(chunk.get("type", "message"), chunk)
        return chunk

    def _consume(self, chunk: bytes) -> list[bytes]:
        return [self._relay_event(event) for event in self._parser.feed(chunk)]

    def _relay_event(self, event: sse.Event) -> bytes:
        if event.name == "message_start":
            data = event.json()
            data.setdefault("message", {})["model"] = self._model_id
            self.usage.update(data["message"].get("usage"))
            self._started = True
            return sse.encode("message_start", data)
        if event.name == "message_delta":
            data = event.json()
            self.usage.update(data.get("usage"))
            self.stop_reason = (data.get("delta") or {}).get("stop_reason") or self.stop_reason
        elif event.name == "message_stop":
            self.completed = True
        elif event.name == "error":
            data = event.json().get("error") or {}
            self.error = GatewayError(502, redact(str(data.get("message", "")), self._secrets),
                                      error_type=str(data.get("type") or "api_error"))
            return error_event(self.error)
        return event.raw

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for item in self._pending:
            yield item
        self._pending.clear()
        while True:
            try:
                chunk = await self._next_chunk()
            except GatewayError as error:
                self.error = error
                log.warning("upstream stream failed after it started: %s", error.message)
                yield error_event(error)
                return
            if chunk is None:
                for event in self._parser.flush():
                    yield self._relay_event(event)
                if not self.completed and self.error is None:
                    self.error = GatewayError(502, "The upstream stream ended before message_stop.",
                                              error_type="api_error")
                    yield error_event(self.error)
                return
            for item in self._consume(chunk):
                yield item
