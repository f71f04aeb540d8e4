"""The upstream call, its failures in Anthropic's terms, and the stream relay.

Each provider family sends its own calls (handler/providers/families/): Anthropic's
and Claude on Bedrock directly, every other one through litellm's Anthropic
interface. Either raises exceptions carrying
the upstream's status; the caller must see Anthropic's status and error type
instead, with provider credentials redacted from any relayed message. A
stream is relayed event by event: upstream bytes pass through untouched
except message_start, whose `model` becomes the catalogue id, while usage is
tracked for metering.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable

import httpx

from ..protocol import sse
from ..protocol.errors import GatewayError, error_body, redact
from ..protocol.usage import Usage, fallback_iterations
from . import families
from .error_wording import reword
from .local_failure import local_failure

log = logging.getLogger(__name__)


def _is_litellm_error(exc: BaseException, *names: str) -> bool:
    """isinstance against litellm's exception classes, without importing litellm to ask."""
    litellm = sys.modules.get("litellm")
    return litellm is not None and isinstance(exc, tuple(getattr(litellm, name) for name in names))


def _status_of(exc: BaseException) -> int | None:
    """The provider's own status: litellm reports Anthropic's 529 as a 500 and keeps the 529 aside."""
    for attribute in ("provider_status_code", "status_code"):
        status = getattr(exc, attribute, None)
        if isinstance(status, int):
            return status
    return None


def _retry_after(exc: BaseException) -> str | None:
    if getattr(exc, "retry_after", None):
        return str(exc.retry_after)
    for headers in (getattr(exc, "litellm_response_headers", None),
                    getattr(getattr(exc, "response", None), "headers", None)):
        value = headers.get("retry-after") if hasattr(headers, "get") else None
        if value:
            return str(value)
    return None


_EXCEPTION_PREFIX = re.compile(r"^(litellm\.\w+: )?(\w+: )?(\w+Exception - )?")
# litellm nests its class names: "litellm.MidStreamFallbackError: litellm.APIConnectionError: ..."
_NESTED_PREFIX = re.compile(r"^(litellm\.\w+: |\w+(Error|Exception): |\w+Exception - )+")


def upstream_message(exc: BaseException | str) -> str:
    """The provider's own words, without litellm's class-name prefixes or JSON wrapping; for a
    failure that carries none (a reset connection), what kind of failure it was."""
    raw = exc if isinstance(exc, str) else str(getattr(exc, "message", None) or exc)
    # litellm appends the Python traceback to some messages: our internals, not the provider's words.
    raw = raw.split("Traceback (most recent call last)", 1)[0]
    text = _NESTED_PREFIX.sub("", _EXCEPTION_PREFIX.sub("", raw, count=1)).strip()
    if not text and not isinstance(exc, str):
        text = f"{type(exc).__name__} with no message (the connection failed or closed early)"
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


def upstream_code(exc: BaseException) -> str | None:
    """The provider's error code, where its body has one (OpenAI's `context_length_exceeded`)."""
    code = getattr(exc, "code", None)
    if isinstance(code, str):
        return code
    raw = str(getattr(exc, "message", None) or exc)
    start = raw.find("{")
    try:
        document = json.loads(raw[start:]) if start >= 0 else None
    except ValueError:
        return None
    error = document.get("error") if isinstance(document, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def map_exception(exc: BaseException, *, secrets: Iterable[str | None] = (),
                  status: int | None = None, translated: bool = True) -> GatewayError:
    """An upstream failure as the Anthropic error a client expects (pure); `status`, when
    the provider's family knows better than the exception what it means. An Anthropic-type
    provider's refusals (`translated` False) keep its own words, but for a context window too
    small, which is said in Anthropic's words whoever said it (a larger model may take it)."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, UnicodeEncodeError):
        # What the caller put in the request could not be sent (a header value, say): not the provider's fault.
        return GatewayError(400, "The request could not be sent upstream: it holds characters HTTP cannot carry.")
    message = redact(upstream_message(exc), secrets)
    if isinstance(exc, (asyncio.TimeoutError, httpx.TimeoutException)) or _is_litellm_error(exc, "Timeout") \
            or "timed out" in message.lower():
        return GatewayError(504, "The upstream model did not answer in time.")
    status = status or _status_of(exc)
    if _is_litellm_error(exc, "APIConnectionError") or status is None:
        local = local_failure(exc, message)
        if local is not None:
            return local
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
    # Anthropic's words for the refusals clients recover from (providers/error_wording.py).
    worded = reword(message, code=upstream_code(exc),
                    context_error=_is_litellm_error(exc, "ContextWindowExceededError"))
    if worded is not None and worded.context_window:
        # The request is fine; this model is too small for it: a larger one may take it.
        return GatewayError(400, worded.message, retryable=True)
    if status == 413:
        return GatewayError(413, f"Request too large for the upstream model: {message}")
    if 400 <= status < 500:
        return GatewayError(400, worded.message if worded is not None and translated else message)
    return GatewayError(502, f"The upstream model failed: {message}", error_type="api_error")


def _retry_headers(exc: BaseException, default: str) -> dict[str, str]:
    value = _retry_after(exc) or default
    return {"retry-after": value if value.isdigit() else default}


def error_event(error: GatewayError) -> bytes:
    return sse.encode("error", error_body(error.error_type, error.message))


_STATUS_OF_ERROR_TYPE = {"overloaded_error": 529, "rate_limit_error": 429, "timeout_error": 504}


def checked_message(result: Any, *, secrets: Iterable[str | None] = ()) -> dict[str, Any]:
    """A non-streamed answer, or the failure it really is: providers sometimes send an
    error body with a 200, and litellm hands it over as if it were a message."""
    message = result if isinstance(result, dict) else dict(result)
    if message.get("type") == "error" or isinstance(message.get("error"), dict):
        error = message.get("error") or {}
        status = _STATUS_OF_ERROR_TYPE.get(error.get("type"), 502)
        text = redact(str(error.get("message") or "error"), secrets)
        raise GatewayError(status, f"The upstream model answered with an error: {text}",
                           error_type="api_error" if status == 502 else None)
    if not isinstance(message.get("content"), list):
        raise GatewayError(502, "The upstream model's answer has no content.", error_type="api_error")
    return message


async def send(kwargs: dict[str, Any]) -> Any:
    """One upstream attempt, by the call's provider family; failures come out as GatewayError."""
    family = families.of_call(kwargs)
    try:
        result = await family.send(kwargs)
        if kwargs.get("stream") and isinstance(result, dict):
            checked_message(result, secrets=(kwargs.get("api_key"),))  # raises for an error body
            raise GatewayError(502, "The upstream model answered a stream request without a stream.",
                               error_type="api_error")
        return result
    except GatewayError:
        raise
    except Exception as exc:  # noqa: BLE001 - every upstream failure is mapped
        # An Anthropic-type provider's call carries the caller's body as it is (pipeline/calls.py).
        raise map_exception(exc, secrets=(kwargs.get("api_key"),), status=family.status_of(exc),
                            translated="body" not in kwargs) from exc


_END = object()
# Events that come before any content: a failure after them can still fall back invisibly.
PRELUDE_EVENTS = frozenset({"message_start", "ping", "content_block_start"})


async def count_tokens(kwargs: dict[str, Any]) -> tuple[int, str]:
    """Input tokens and how they were counted (e.g. anthropic_api), by the call's family."""
    family = families.of_call(kwargs)
    try:
        return await family.count_tokens(kwargs)
    except GatewayError:
        raise
    except Exception as exc:  # noqa: BLE001 - every upstream failure is mapped
        raise map_exception(exc, secrets=(kwargs.get("api_key"),), status=family.status_of(exc)) from exc


class Declined(GatewayError):
    """The model declined (`stop_reason: "refusal"`) before any content reached the caller, and
    a fallback may answer instead: what it reported is metered, its `stop_details` named, and
    the content it produced before declining (a whole answer's) kept for the answer."""

    def __init__(self, model_id: str, usage: Usage, stop_details: Any, content: Any = None) -> None:
        super().__init__(200, f"{model_id} declined the request.", retryable=True)
        self.usage = usage
        self.stop_details = stop_details if isinstance(stop_details, dict) else {}
        self.content = [block for block in content if isinstance(block, dict)] if isinstance(content, list) else []


class StreamRelay:
    """Relays one upstream stream through a queue filled by its own reader task.

    Nothing is released until the first content arrives (the prelude —
    message_start, ping, content_block_start — is held), so a failure before
    that point raises from `first()` and the caller can try another model.
    The reader runs apart from the response, so a client that goes away does
    not stop it: the upstream is read to its end (bounded by the timeout)
    and `on_finish` meters what the upstream really produced once the
    response has delivered its last event or lost its client (so the entry
    knows which); with `meter_before_end` the response then waits for that
    write before it ends. The reader is
    the task `start()` returns: the caller keeps it, so a Lambda invocation
    does not return before the ledger is written.
    """

    def __init__(
        self,
        upstream: AsyncIterator[Any],
        *,
        model_id: str,
        secrets: Iterable[str | None] = (),
        on_finish: Callable[["StreamRelay"], Awaitable[None]] | None = None,
        drain_timeout: float = 60.0,
        meter_before_end: bool = False,
        timeout_message: str = "The upstream stream did not end within the gateway's stream timeout.",
        decline_before_content: bool = False,
        lead_blocks: tuple[dict, ...] = (),
        declined: Iterable[tuple[str, Usage]] = (),
    ) -> None:
        self._upstream = upstream
        # A refusal before the first content raises Declined from first() (a fallback answers).
        self._decline_before_content = decline_before_content
        # Blocks that open the content (Anthropic's `fallback` blocks): the model's own follow them.
        self._lead_blocks = lead_blocks
        # The models that declined before this one: its final usage lists them (`iterations`).
        self._declined = list(declined)
        self._model_id = model_id
        self._secrets = tuple(secrets)
        self._on_finish = on_finish
        self._drain_timeout = drain_timeout
        self._meter_before_end = meter_before_end
        self._timeout_message = timeout_message
        self.timed_out = False  # the gateway ended the stream at drain_timeout, not the provider
        self.opened = False  # message_start came: the provider took the request (and may bill it)
        self._parser = sse.Parser()
        self._queue: asyncio.Queue = asyncio.Queue()
        self._reader: asyncio.Task | None = None
        self._started_at = 0.0
        self._held: list[bytes] = []
        self._ready: asyncio.Future | None = None
        self._consumer_done = asyncio.Event()
        self._metered = asyncio.Event()
        self.started = False
        self.usage = Usage()
        self.stop_reason: str | None = None
        self.error: GatewayError | None = None
        self.completed = False
        self.delivered = False
        self.usage_estimated = False
        self._produced_bytes = 0
        self._final_usage_seen = False
        self.first_content_seconds: float | None = None

    def start(self) -> asyncio.Task:
        """The reader task, started: it outlives the response if the client leaves."""
        loop = asyncio.get_running_loop()
        self._started_at = loop.time()
        self._ready = loop.create_future()
        self._reader = loop.create_task(self._read())
        return self._reader

    async def first(self) -> None:
        """Wait for the first content: an earlier failure raises, so it can become an HTTP
        error (or a fallback) instead of a 200 that carries only an error."""
        if self._reader is None:
            self.start()
        await self._ready
        self.first_content_seconds = asyncio.get_running_loop().time() - self._started_at

    def abandon(self) -> None:
        """Stop reading before the first content (the attempt ran out of time): nothing was
        relayed, so the caller meters the attempt; the connection is given back."""
        if self._reader is not None and not self.started:
            self._reader.cancel()

    async def _read(self) -> None:
        limit = asyncio.timeout(self._drain_timeout)
        try:
            async with limit:
                async for chunk in self._upstream:
                    self._consume(chunk)
            for event in self._parser.flush():
                self._handle(event)
            if not self.completed and self.error is None:
                self._fail(GatewayError(502, "The upstream stream ended before message_stop.",
                                        error_type="api_error"))
        except TimeoutError as exc:
            self.timed_out = limit.expired()
            self._fail(GatewayError(504, self._timeout_message) if self.timed_out
                       else map_exception(exc, secrets=self._secrets))
        except GatewayError as error:
            self._fail(error)
        except Exception as exc:  # noqa: BLE001 - every upstream failure is relayed
            self._fail(map_exception(exc, secrets=self._secrets))
        finally:
            await self._close_upstream()
            self._estimate_unreported_output()
            # A translated stream (openai_api) says when it had to estimate what it reported.
            self.usage_estimated = self.usage_estimated or getattr(self._upstream, "usage_estimated", False) is True
            self._queue.put_nowait(_END)
            await self._await_consumer()
            await self._finish()
            self._metered.set()

    async def _await_consumer(self) -> None:
        """Wait until the response has handed over every event or gone away, so the entry says
        which; a response that never iterates (bounded by the drain timeout) counts as gone."""
        if not self.started or asyncio.current_task().cancelling():
            return  # cancelled (a server shutting down): meter now, there is no one to wait for
        try:
            async with asyncio.timeout(self._drain_timeout):
                await self._consumer_done.wait()
        except TimeoutError:
            log.warning("a finished stream was not consumed in %.0f s; metering it as undelivered",
                        self._drain_timeout)

    async def _close_upstream(self) -> None:
        """Give the connection back now, not when the iterator is collected."""
        close = getattr(self._upstream, "aclose", None)
        if close is not None:
            try:
                await close()
            except Exception:  # noqa: BLE001 - a failing close loses nothing already read
                log.debug("closing the upstream stream failed", exc_info=True)

    def _emit(self, name: str, item: bytes) -> None:
        if self.started:
            self._queue.put_nowait(item)
            return
        self._held.append(item)
        if name in PRELUDE_EVENTS:
            return
        self.started = True
        for held in self._held:
            self._queue.put_nowait(held)
        self._held.clear()
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    def _fail(self, error: GatewayError) -> None:
        if not self.started:
            if self._ready is not None and not self._ready.done():
                self._ready.set_exception(error)  # first() raises it
            return
        self.error = error
        log.warning("upstream stream failed after it started: %s", error.message)
        self._queue.put_nowait(error_event(error))

    async def _finish(self) -> None:
        if not self.started or self._on_finish is None:
            return
        try:
            await self._on_finish(self)
        except Exception:  # noqa: BLE001 - metering must never break the stream
            log.exception("metering a finished stream failed")

    def _consume(self, chunk: Any) -> None:
        if isinstance(chunk, str):
            chunk = chunk.encode()
        elif isinstance(chunk, dict):
            chunk = sse.encode(chunk.get("type", "message"), chunk)
        for event in self._parser.feed(chunk):
            self._handle(event)

    def _handle(self, event: sse.Event) -> None:
        try:
            item = self._relay_event(event)
        except GatewayError as error:
            if not self.started or event.name == "error":
                raise  # before content: the attempt fails (a fallback may run); after: the provider ended it
            # A malformed event mid-stream ends the client's stream with an error, but the upstream
            # is read on: what it goes on producing is billed, so it is metered.
            if self.error is None:
                self._fail(error)
            return
        if self.error is None:
            self._emit(event.name, item)

    def _estimate_unreported_output(self) -> None:
        """A stream cut before its final message_delta never says how much it produced:
        meter the content relayed so far at 3 bytes a token (English prose and code run
        3-4), rather than the 0 or 1 of message_start, and flag the figure as an estimate."""
        if self._final_usage_seen or not self._produced_bytes:
            return
        self.usage.output_tokens = max(self.usage.output_tokens, -(-self._produced_bytes // 3))
        self.usage_estimated = True

    def _relay_event(self, event: sse.Event) -> bytes:
        try:
            data = event.json()
        except ValueError:
            raise GatewayError(502, f"The upstream stream sent a malformed {event.name or 'unnamed'} event.",
                               error_type="api_error") from None
        if not isinstance(data, dict):
            raise GatewayError(502, "The upstream stream sent an event that is not an object.", error_type="api_error")
        if event.name == "message_start":
            self.opened = True
            data.setdefault("message", {})["model"] = self._model_id
            self.usage.update(data["message"].get("usage"))
            return sse.encode("message_start", data) + b"".join(self._lead_frames())
        if self._lead_blocks and event.name.startswith("content_block_") and isinstance(data.get("index"), int):
            data["index"] += len(self._lead_blocks)
            event_bytes = sse.encode(event.name, data)
            if event.name == "content_block_delta":
                self._count_produced(data)
            return event_bytes
        if event.name == "content_block_delta":
            self._count_produced(data)
        elif event.name == "message_delta":
            self._final_usage_seen = self._final_usage_seen or bool(data.get("usage"))
            self.usage.update(data.get("usage"))
            self.stop_reason = (data.get("delta") or {}).get("stop_reason") or self.stop_reason
            if self.stop_reason == "refusal" and self._decline_before_content and not self.started:
                raise Declined(self._model_id, self.usage, (data.get("delta") or {}).get("stop_details"))
            if self._declined:
                reported = data.get("usage") if isinstance(data.get("usage"), dict) else {}
                data["usage"] = {**reported, "iterations": fallback_iterations(
                    self._declined, self._model_id, {**reported, **self.usage.as_dict()})}
                return sse.encode(event.name, data)
        elif event.name == "message_stop":
            self.completed = True
        elif event.name == "error":
            data = data.get("error") or {}
            said = redact(upstream_message(str(data.get("message") or "")), self._secrets) or "no reason given"
            raise GatewayError(502, f"The upstream model failed mid-stream: {said}",
                               error_type=str(data.get("type") or "api_error"))
        return event.raw

    def _count_produced(self, data: dict) -> None:
        delta = data.get("delta") or {}
        self._produced_bytes += sum(len(str(delta.get(name, "")).encode())
                                    for name in ("text", "thinking", "partial_json"))

    def _lead_frames(self) -> list[bytes]:
        """The lead blocks as Anthropic streams a server-tool block: start and stop, no delta."""
        return [sse.encode(name, {"type": name, "index": index, **extra})
                for index, block in enumerate(self._lead_blocks)
                for name, extra in (("content_block_start", {"content_block": block}), ("content_block_stop", {}))]

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while (item := await self._queue.get()) is not _END:
                yield item
            self.delivered = True
        finally:
            self._consumer_done.set()  # delivered, or the client went away (cancelled or closed)
        if self._meter_before_end:
            await self._metered.wait()  # the response ends only once its usage is written
