"""The request pipeline between HTTP and the upstream: limits, attempts, metering.

Knows nothing of FastAPI or Lambda: it takes an authenticated key and a
validated body and returns either a complete message or a stream that is
already known to have started, so every failure before the first byte
reaches the caller as a real HTTP error. Every request that reached the
upstream is metered, whatever its end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Awaitable, Callable

from ..cache import RefreshingValue
from ..keys.store import ApiKey
from ..metering import hot_keys
from ..metering.bounds import abandoned_usage, attempt_bounds, reservation
from ..metering.group_commit import DEFAULT_MAX_BACKLOG, GroupCommit
from ..metering.items import Estimate, LedgerEntry, Limits
from ..metering.ledger import Ledger, RateInfo
from ..metering.pricing import cost_of, price_of
from ..protocol.errors import GatewayError
from ..protocol.usage import ESTIMATED, Usage, fallback_iterations
from ..providers import upstream
from ..providers.catalogue import EDENAI_ROUTER, Catalogue, Model
from .adaptation import Adaptation
from .breaker import ModelHealth, provider_failure
from .calls import build_call, build_count_call
from .fallbacks import declines_fall_back, lead_content
from .model_list import resolve_for
from .planning import Attempt as PlannedAttempt
from .planning import Plan, plan_request

log = logging.getLogger(__name__)

MODEL_HEADER = "x-edenai-model"
ATTEMPTS_HEADER = "x-edenai-attempts"
ROUTE_HEADER = "x-edenai-route"


@dataclass(frozen=True)
class Attempt:
    model_id: str
    status: int
    latency_ms: int
    declined: bool = False  # answered with a refusal, and the next model took over

    def header_value(self) -> str:
        return f"{self.model_id};status={self.status};ms={self.latency_ms}" + (";declined" if self.declined else "")

    def as_dict(self) -> dict:
        return {"model": self.model_id, "status": self.status, "latency_ms": self.latency_ms,
                **({"declined": True} if self.declined else {})}


async def _settled() -> None:
    """The finish of a response whose entry was written before it."""


def attempts_header(attempts: list[Attempt]) -> str:
    return ", ".join(attempt.header_value() for attempt in attempts)


@dataclass
class Outcome:
    model: Model
    attempts: list[Attempt]
    message: dict[str, Any] | None = None
    stream: upstream.StreamRelay | None = None
    rate: RateInfo | None = None
    route_reason: str | None = None
    # How the serving model's call departed from the body (clamped, dropped): pipeline/adaptation.py.
    adaptation: Adaptation | None = None
    # Non-streamed: the ledger write, for the caller to spawn as the response goes out.
    finish: Callable[[], Awaitable[None]] | None = None

    def headers(self) -> dict[str, str]:
        headers = {MODEL_HEADER: self.model.id, ATTEMPTS_HEADER: attempts_header(self.attempts)}
        if self.rate is not None:
            headers.update(self.rate.headers())
        if self.route_reason:
            headers[ROUTE_HEADER] = self.route_reason
        if self.adaptation is not None:
            headers.update(self.adaptation.headers())
        return headers


@dataclass
class _Request:
    """One request's metering context."""

    key: ApiKey
    body: dict[str, Any]
    request_id: str
    at: datetime
    anthropic_beta: str | None = None
    reserved: Estimate = field(default_factory=lambda: Estimate(0, Decimal(0)))
    attempts: list[Attempt] = field(default_factory=list)
    ledger_id: str = ""  # the key id, or for a busy key one of its ledger shards (metering/hot_keys.py)
    # The model whose provider has the request now, and the attempts a provider took that the
    # gateway gave up on (model, why: "deadline", "cancelled"): those are billed all the same.
    in_flight: Model | None = None
    abandoned: list[tuple[Model, str]] = field(default_factory=list)
    # Attempts that declined (a refusal a fallback answered): what each reported is metered.
    declined: list[tuple[Model, upstream.Declined]] = field(default_factory=list)
    # A key with a monthly cap: its reservation is settled before the response ends, so the
    # caller's next request never finds it still held (and is never refused for it).
    settle_first: bool = False
    large: bool = False  # its walks (plan, calls, bound) run off the event loop: OFF_LOOP_BODY_BYTES


# A body this large takes milliseconds of CPU to plan, build and bound (a 10 MB one, most of a
# second): those walks run in a worker thread, so no other request waits on the event loop.
# Smaller bodies stay on the loop, where a thread hop would cost more than the walk.
OFF_LOOP_BODY_BYTES = 256 * 1024


async def _off_the_loop_if(large: bool, work: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(work, *args) if large else work(*args)


class Gateway:
    def __init__(
        self,
        catalogue: RefreshingValue[Catalogue],
        ledger: Ledger,
        *,
        deadline: float,
        stream_timeout: float = 600.0,
        meter_before_response_end: bool = False,
        policy: str = "cheapest",
        max_ledger_backlog: int = DEFAULT_MAX_BACKLOG,
        health: ModelHealth | None = None,
        send: Callable[[dict[str, Any]], Awaitable[Any]] = upstream.send,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._catalogue = catalogue
        self._ledger = ledger
        self._commits = GroupCommit(ledger, max_backlog=max_ledger_backlog)
        self._settlements = self._commits  # entries settling a monthly cap's reservation: written at once
        self._deadline = deadline
        self._stream_timeout = stream_timeout
        self._meter_before_response_end = meter_before_response_end
        self._policy = policy
        self.health = health or ModelHealth()
        self._pending: set[asyncio.Future] = set()
        self._send = send
        self._clock = clock
        self._now = now
        self._finish_by: float | None = None

    def write_ledger_with(self, writer: Any) -> None:
        """Where entries go instead of the group commit (anything with `async record(entry)`):
        the Lambda handler collects them to write after the response (runtime/after_response.py).
        Entries that settle a monthly cap's reservation still go to the group commit, before
        the response ends."""
        self._commits = writer

    def finish_by(self, seconds: float | None) -> None:
        """What the current invocation can still afford, in seconds from now (Lambda: its
        remaining time less the ledger write's margin), or None: no bound but the settings.
        Every deadline and stream timeout is cut to fit it, so a request ends, with its usage
        metered, before the function is stopped."""
        self._finish_by = None if seconds is None else self._clock() + seconds

    def _time_left(self, limit: float) -> float:
        """`limit`, or less when the invocation cannot afford it."""
        return limit if self._finish_by is None else max(0.0, min(limit, self._finish_by - self._clock()))

    async def catalogue(self) -> Catalogue:
        return await self._catalogue.get()

    def spawn(self, work: Awaitable[None]) -> None:
        """Run work (a ledger write, a stream's reader) without holding the response for it.

        Tracked so that `drain()` can wait for it: the Lambda handler drains after
        every invocation (a frozen environment would lose it), uvicorn at shutdown.
        """
        task = asyncio.ensure_future(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for pending work. With `timeout` (a server shutting down), what is still
        running then is cancelled: stream readers meter what they read so far, and every
        entry the table has not taken goes to the fallback queue or the log, never nowhere."""
        try:
            async with asyncio.timeout(timeout):
                while self._pending:
                    # shielded: the timeout must not cancel the work itself before close() below
                    await asyncio.shield(asyncio.gather(*list(self._pending), return_exceptions=True))
            return
        except TimeoutError:
            log.warning("shutting down with %d requests still metering and %d entries waiting for the "
                        "table: they go to the fallback queue", len(self._pending), self._commits.backlog)
        await self._commits.close()
        if self._settlements is not self._commits:
            await self._settlements.close()
        for task in list(self._pending):
            task.cancel()
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def create_message(self, key: ApiKey, body: dict[str, Any], *, anthropic_beta: str | None,
                             request_id: str, body_bytes: int = 0) -> Outcome:
        catalogue = await self._catalogue.get()
        large = body_bytes >= OFF_LOOP_BODY_BYTES
        plan, calls = await _off_the_loop_if(large, self._prepare, catalogue, key, body, anthropic_beta)
        request = _Request(key, body, request_id, self._now(), anthropic_beta, large=large)
        rate = await self._reserve(request, plan.attempts)
        try:
            outcome = await self._attempts(request, calls)
        except GatewayError as error:
            await self._record(request, self._failed_entry(request))
            if request.attempts:
                error.headers[ATTEMPTS_HEADER] = attempts_header(request.attempts)
            if plan.route_reason:
                error.headers[ROUTE_HEADER] = plan.route_reason
            if rate is not None:
                error.headers.update(rate.headers())
            raise
        except BaseException:
            if request.in_flight is not None:
                request.abandoned.append((request.in_flight, "cancelled"))
            if request.abandoned:
                # Cancelled while a provider had the request: it bills it, so it is metered.
                await asyncio.shield(self._record(request, self._failed_entry(request)))
            else:
                # Cancelled before any provider had it: give the reservation back.
                await asyncio.shield(asyncio.to_thread(self._ledger.release, request.ledger_id, request.at,
                                                       request.reserved))
            raise
        if outcome.finish is not None and request.settle_first:
            await outcome.finish()  # before the response: the caller's next request reads it settled
            outcome.finish = _settled
        outcome.rate = rate
        outcome.route_reason = plan.route_reason
        outcome.adaptation = plan.adaptation_of(outcome.model)
        return outcome

    async def count_tokens(self, key: ApiKey, body: dict[str, Any]) -> tuple[int, str, RateInfo | None]:
        """Input tokens for a model the key may use. Counted against the key's rpm: a count
        is cheap but not free, it spends the provider's rate limit with the gateway's key."""
        if body["model"] == EDENAI_ROUTER:
            raise GatewayError(400, "count_tokens needs a concrete model: token counts differ per model.")
        model = resolve_for(await self._catalogue.get(), key, body["model"])
        call = build_count_call(body, model)
        rate = None
        rpm = Limits.of(key.limits).rpm
        if rpm is not None:
            _, rate = await asyncio.to_thread(hot_keys.reserve, self._ledger, key, self._now(), Limits(rpm=rpm),
                                              Estimate(0, Decimal(0)))
        tokens, method = await upstream.count_tokens(call)
        return tokens, method, rate

    def _prepare(self, catalogue: Catalogue, key: ApiKey, body: dict[str, Any],
                 anthropic_beta: str | None) -> tuple[Plan, list[tuple[Model, dict[str, Any]]]]:
        """The plan, then every attempt's call. Every call is built (and so the caller's part
        checked) before anything is reserved: a request the gateway refuses uses no rpm, is not
        metered and reaches no provider."""
        plan = plan_request(catalogue, key, body, policy=self._policy, health=self.health,
                            anthropic_beta=anthropic_beta)
        calls = [(attempt.model, build_call(attempt.body, attempt.model, anthropic_beta=anthropic_beta,
                                            timeout=self._deadline, adaptation=attempt.adaptation))
                 for attempt in plan.attempts]
        return plan, calls

    async def _reserve(self, request: _Request, attempts: list[PlannedAttempt]) -> RateInfo | None:
        limits = Limits.of(request.key.limits)
        if not limits.any:
            request.ledger_id = hot_keys.pick(request.key)
            return None
        # Each attempt bounded with the body it is built from (a fallback's own max_tokens);
        # attempts without overrides share the request's body, walked once.
        by_body: dict[int, tuple[dict[str, Any], list]] = {}
        for attempt in attempts:
            by_body.setdefault(id(attempt.body), (attempt.body, []))[1].append(
                (attempt.model.info, attempt.model.speaks_anthropic))
        bounds = await _off_the_loop_if(request.large, lambda: [
            bound for body, models in by_body.values()
            for bound in attempt_bounds(body, models, anthropic_beta=request.anthropic_beta)])
        # With the server-side fallback beta, every attempt but the last may decline and be billed.
        reserved = reservation(bounds, all_billed=declines_fall_back(request.anthropic_beta))
        request.reserved = Estimate(reserved.tokens, reserved.usd)
        request.settle_first = limits.monthly_tokens is not None or limits.monthly_usd is not None
        request.ledger_id, rate = await asyncio.to_thread(hot_keys.reserve, self._ledger, request.key, request.at,
                                                          limits, request.reserved)
        return rate

    async def _attempts(self, request: _Request, calls: list[tuple[Model, dict[str, Any]]]) -> Outcome:
        started = self._clock()
        deadline = self._time_left(self._deadline)
        last_error: GatewayError | None = None
        refusals_fall_back = declines_fall_back(request.anthropic_beta)
        for index, (model, call) in enumerate(calls):
            remaining = deadline - (self._clock() - started)
            if remaining <= 0.5:
                last_error = GatewayError(504, "The request's deadline passed before a model answered.")
                break
            call = {**call, "timeout": remaining}
            attempt_started = self._clock()
            request.in_flight = model
            try:
                # httpx's timeout is per read: a provider dripping bytes would never trip it.
                # This one covers the whole attempt up to its first content, streams included.
                async with asyncio.timeout(remaining):
                    outcome = await self._attempt(request, model, call, attempt_started,
                                                  may_decline=refusals_fall_back and index < len(calls) - 1)
            except TimeoutError:
                request.in_flight = None
                # The provider took the request and may answer (and bill) after the gateway left.
                request.abandoned.append((model, "deadline"))
                error = GatewayError(504, "The upstream model did not start its answer in time.")
                request.attempts.append(Attempt(model.id, error.status, self._ms_since(attempt_started)))
                if call.get("stream"):
                    # A stream's first content is the provider's to send quickly. A whole answer
                    # can take long because the caller asked for a long one (max_tokens): that
                    # must not take the model away from every other key.
                    self.health.record_failure(model.id)
                last_error = error
                continue
            except upstream.Declined as declined:
                request.in_flight = None  # the model answered (a refusal): not a failure of its provider
                request.attempts.append(Attempt(model.id, 200, self._ms_since(attempt_started), declined=True))
                request.declined.append((model, declined))
                continue
            except GatewayError as error:
                request.in_flight = None  # the provider refused it: nothing is billed
                request.attempts.append(Attempt(model.id, error.status, self._ms_since(attempt_started)))
                last_error = error
                if provider_failure(error):
                    self.health.record_failure(model.id)
                if not error.retryable:
                    break
                continue
            request.in_flight = None
            self.health.record_success(model.id, request.attempts[-1].latency_ms)
            return outcome
        assert last_error is not None
        raise last_error

    async def _attempt(self, request: _Request, model: Model, call: dict[str, Any], started: float,
                       may_decline: bool = False) -> Outcome:
        result = await self._send(call)
        hops = [(m.id, d.stop_details, d.content) for m, d in request.declined]
        lead = tuple(lead_content(request.body["model"], hops, model.id)) if hops else ()
        if call["stream"]:
            earlier = list(request.attempts)

            async def meter_stream(relay: upstream.StreamRelay) -> None:
                latency = int((relay.first_content_seconds or 0) * 1000)
                status = 200 if relay.error is None else relay.error.status
                request.attempts = [*earlier, Attempt(model.id, status, latency)]
                state = "ok" if relay.error is None else "stream_error"
                if relay.error is None and not relay.delivered:
                    state = "client_disconnected"
                entry = self._entry(request, model, relay.usage, state)
                if relay.usage_estimated:
                    entry.extra["usage_estimated"] = True
                    entry.extra["estimate_reason"] = ("time_limit" if relay.timed_out else
                                                      "stream_cut" if relay.error is not None else "not_reported")
                await self._record(request, entry)

            drain_timeout = self._time_left(self._stream_timeout)
            why = (f"The gateway ended the stream after {drain_timeout:.0f} s: " + (
                "its function had no time left for more of it." if drain_timeout < self._stream_timeout
                else "that is its stream timeout."))
            relay = upstream.StreamRelay(result, model_id=model.id, secrets=model.provider.secrets,
                                         on_finish=meter_stream, drain_timeout=drain_timeout,
                                         meter_before_end=self._meter_before_response_end or request.settle_first,
                                         timeout_message=why, decline_before_content=may_decline,
                                         lead_blocks=lead, declined=[(m.id, d.usage) for m, d in request.declined])
            self.spawn(relay.start())
            try:
                await relay.first()
            except asyncio.CancelledError:
                relay.abandon()  # the deadline (or the client) ended the attempt before the first content
                raise
            except upstream.Declined:
                raise
            except GatewayError:
                if relay.opened:  # cut after message_start: the provider had begun, and bills it
                    request.abandoned.append((model, "stream_cut"))
                raise
            request.attempts.append(Attempt(model.id, 200, self._ms_since(started)))
            return Outcome(model, request.attempts, stream=relay)
        message = upstream.checked_message(result, secrets=model.provider.secrets)
        message["model"] = model.id
        estimated = message.pop(ESTIMATED, False)
        if may_decline and message.get("stop_reason") == "refusal":
            raise upstream.Declined(model.id, Usage.of(message.get("usage")), message.get("stop_details"),
                                    message.get("content"))
        if lead:
            message["content"] = [*lead, *(message.get("content") or [])]
            usage = message.get("usage") if isinstance(message.get("usage"), dict) else {}
            message["usage"] = {**usage, "iterations": fallback_iterations(
                [(m.id, d.usage) for m, d in request.declined], model.id, usage)}
        request.attempts.append(Attempt(model.id, 200, self._ms_since(started)))
        entry = self._entry(request, model, Usage.of(message.get("usage")), "ok")
        if estimated:
            entry.extra.update(usage_estimated=True, estimate_reason="not_reported")

        async def finish() -> None:
            await self._record(request, entry)

        return Outcome(model, request.attempts, message=message, finish=finish)

    async def _record(self, request: _Request, entry: LedgerEntry) -> None:
        """To the ledger: at once when the entry settles a monthly cap's reservation, else by
        the writer in place (under Lambda, after the response)."""
        await (self._settlements if request.settle_first else self._commits).record(entry)

    def _failed_entry(self, request: _Request) -> LedgerEntry:
        """A request that ended without an answer: nothing used but what attempts a provider
        took and the gateway gave up on are settled at (see `_entry`)."""
        return self._entry(request, request.abandoned[-1][0] if request.abandoned else None, Usage(), "error")

    def _entry(self, request: _Request, model: Model | None, usage: Usage, status: str) -> LedgerEntry:
        """The request's entry: what the serving model reported, plus the bound of every attempt
        a provider took and the gateway gave up on (flagged as an estimate, with the reason)."""
        entry = self._reported_entry(request, model, usage, status)
        if request.abandoned:
            extra, usd = abandoned_usage(request.body, [(m.info, m.speaks_anthropic) for m, _ in request.abandoned],
                                         anthropic_beta=request.anthropic_beta)
            entry.usage = Usage(usage.input_tokens + extra.input_tokens, usage.output_tokens + extra.output_tokens,
                                usage.cache_creation_input_tokens, usage.cache_read_input_tokens,
                                dict(usage.server_tool_use))
            entry.cost_usd += usd
            entry.extra.update(usage_estimated=True, estimate_reason=request.abandoned[-1][1])
        for declined_model, declined in request.declined:
            entry.usage = entry.usage.plus(declined.usage)
            entry.cost_usd += cost_of(declined.usage, price_of(declined_model.info))
        return entry

    def _reported_entry(self, request: _Request, model: Model | None, usage: Usage, status: str) -> LedgerEntry:
        price = price_of(model.info) if model is not None else None
        return LedgerEntry(
            key_id=request.ledger_id or request.key.key_id,
            request_id=request.request_id,
            at=request.at.isoformat(),
            requested_model=request.body["model"],
            served_model=model.id if model is not None else None,
            attempts=[attempt.as_dict() for attempt in request.attempts],
            usage=usage,
            cost_usd=cost_of(usage, price),
            priced=price is not None or model is None,
            stream=bool(request.body.get("stream")),
            status=status,
            reserved_tokens=request.reserved.tokens,
            reserved_usd=request.reserved.usd,
        )

    def _ms_since(self, start: float) -> int:
        return int((self._clock() - start) * 1000)
