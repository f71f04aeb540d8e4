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

from . import upstream
from .cache import RefreshingValue
from .errors import GatewayError
from .group_commit import GroupCommit
from .keys import ApiKey
from .ledger import Ledger, RateInfo
from .breaker import ModelHealth
from .metering import Estimate, LedgerEntry, Limits, estimate, input_token_estimate
from .pricing import cost_of, price_of
from .providers import EDENAI_ROUTER, Catalogue, Model
from .routing import candidates_for, needs_of, route
from .upstream_request import build_call
from .usage import Usage

log = logging.getLogger(__name__)

MODEL_HEADER = "x-edenai-model"
ATTEMPTS_HEADER = "x-edenai-attempts"
ROUTE_HEADER = "x-edenai-route"


@dataclass(frozen=True)
class Attempt:
    model_id: str
    status: int
    latency_ms: int

    def header_value(self) -> str:
        return f"{self.model_id};status={self.status};ms={self.latency_ms}"

    def as_dict(self) -> dict:
        return {"model": self.model_id, "status": self.status, "latency_ms": self.latency_ms}


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
    # Non-streamed: the ledger write, for the caller to spawn as the response goes out.
    finish: Callable[[], Awaitable[None]] | None = None

    def headers(self) -> dict[str, str]:
        headers = {MODEL_HEADER: self.model.id, ATTEMPTS_HEADER: attempts_header(self.attempts)}
        if self.rate is not None:
            headers.update(self.rate.headers())
        if self.route_reason:
            headers[ROUTE_HEADER] = self.route_reason
        return headers


@dataclass(frozen=True)
class Plan:
    """The models to try, in order, and for @edenai why the first was chosen."""

    models: list[Model]
    route_reason: str | None = None


def _resolve_all(catalogue: Catalogue, key: ApiKey, names: list[str], field_name: str) -> list[Model]:
    if len(set(names)) != len(names):
        raise GatewayError(400, f"{field_name}: a model may appear only once among model and fallbacks.")
    models = [catalogue.resolve(name) for name in names]
    for model in models:
        if not key.may_use(model.id):
            raise GatewayError(403, f"This API key may not use model {model.id!r}.")
    return models


def plan_request(catalogue: Catalogue, key: ApiKey, body: dict[str, Any], *, policy: str,
                 health: ModelHealth) -> Plan:
    """The primary model then each fallback; for @edenai, the routed choice, the explicit
    fallbacks, then the next routed candidates."""
    requested, fallbacks = body["model"], list(body.get("fallbacks") or [])
    if requested != EDENAI_ROUTER:
        return Plan(_resolve_all(catalogue, key, [requested, *fallbacks], "fallbacks"))
    explicit = _resolve_all(catalogue, key, fallbacks, "fallbacks")
    candidates, dropped = candidates_for(catalogue, body.get("router_candidates"), key.may_use)
    needs = needs_of(body, input_token_estimate(body))
    routed = route(candidates, dropped, needs, policy=policy, is_open=health.is_open, latency_ms=health.latency_ms)
    order = [routed.models[0], *explicit, *routed.models[1:]]
    first_occurrences = list({model.id: model for model in order}.values())
    return Plan(first_occurrences, routed.reason)


@dataclass
class _Request:
    """One request's metering context."""

    key: ApiKey
    body: dict[str, Any]
    request_id: str
    at: datetime
    reserved: Estimate = field(default_factory=lambda: Estimate(0, Decimal(0)))
    attempts: list[Attempt] = field(default_factory=list)


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
        health: ModelHealth | None = None,
        send: Callable[[dict[str, Any]], Awaitable[Any]] = upstream.send,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._catalogue = catalogue
        self._ledger = ledger
        self._commits = GroupCommit(ledger)
        self._deadline = deadline
        self._stream_timeout = stream_timeout
        self._meter_before_response_end = meter_before_response_end
        self._policy = policy
        self.health = health or ModelHealth()
        self._pending: set[asyncio.Future] = set()
        self._send = send
        self._clock = clock
        self._now = now

    def write_ledger_with(self, writer: Any) -> None:
        """Where entries go instead of the group commit (anything with `async record(entry)`):
        the Lambda handler collects them to write after the response (after_response.py)."""
        self._commits = writer

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

    async def drain(self) -> None:
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def create_message(self, key: ApiKey, body: dict[str, Any], *, anthropic_beta: str | None,
                             request_id: str) -> Outcome:
        catalogue = await self._catalogue.get()
        plan = plan_request(catalogue, key, body, policy=self._policy, health=self.health)
        models = plan.models
        request = _Request(key, body, request_id, self._now())
        rate = await self._reserve(request, models)
        try:
            outcome = await self._attempts(request, models, anthropic_beta)
        except GatewayError as error:
            await self._commits.record(self._entry(request, None, Usage(), "error"))
            if request.attempts:
                error.headers[ATTEMPTS_HEADER] = attempts_header(request.attempts)
            if plan.route_reason:
                error.headers[ROUTE_HEADER] = plan.route_reason
            if rate is not None:
                error.headers.update(rate.headers())
            raise
        except BaseException:
            # Cancelled before any attempt finished: give the reservation back.
            await asyncio.shield(asyncio.to_thread(self._ledger.release, key.key_id, request.at, request.reserved))
            raise
        outcome.rate = rate
        outcome.route_reason = plan.route_reason
        return outcome

    async def _reserve(self, request: _Request, models: list[Model]) -> RateInfo | None:
        limits = Limits.of(request.key.limits)
        if not limits.any:
            return None
        request.reserved = estimate(request.body, [price_of(m.info) for m in models])
        return await asyncio.to_thread(self._ledger.reserve, request.key.key_id, request.at, limits,
                                       request.reserved)

    async def _attempts(self, request: _Request, models: list[Model], anthropic_beta: str | None) -> Outcome:
        started = self._clock()
        last_error: GatewayError | None = None
        for model in models:
            remaining = self._deadline - (self._clock() - started)
            if remaining <= 0.5:
                last_error = GatewayError(504, "The request's deadline passed before a model answered.")
                break
            call = build_call(request.body, model, anthropic_beta=anthropic_beta, timeout=remaining)
            attempt_started = self._clock()
            try:
                outcome = await self._attempt(request, model, call, attempt_started)
            except GatewayError as error:
                request.attempts.append(Attempt(model.id, error.status, self._ms_since(attempt_started)))
                last_error = error
                if not error.retryable:
                    break
                self.health.record_failure(model.id)
                continue
            self.health.record_success(model.id, request.attempts[-1].latency_ms)
            return outcome
        assert last_error is not None
        raise last_error

    async def _attempt(self, request: _Request, model: Model, call: dict[str, Any], started: float) -> Outcome:
        result = await self._send(call)
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
                await self._commits.record(entry)

            relay = upstream.StreamRelay(result, model_id=model.id, secrets=(model.provider.api_key,),
                                         on_finish=meter_stream, drain_timeout=self._stream_timeout,
                                         meter_before_end=self._meter_before_response_end)
            self.spawn(relay.start())
            await relay.first()
            request.attempts.append(Attempt(model.id, 200, self._ms_since(started)))
            return Outcome(model, request.attempts, stream=relay)
        message = upstream.checked_message(result, secrets=(model.provider.api_key,))
        message["model"] = model.id
        request.attempts.append(Attempt(model.id, 200, self._ms_since(started)))
        entry = self._entry(request, model, Usage.of(message.get("usage")), "ok")

        async def finish() -> None:
            await self._commits.record(entry)

        return Outcome(model, request.attempts, message=message, finish=finish)

    def _entry(self, request: _Request, model: Model | None, usage: Usage, status: str) -> LedgerEntry:
        price = price_of(model.info) if model is not None else None
        return LedgerEntry(
            key_id=request.key.key_id,
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
