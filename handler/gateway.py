"""The request pipeline between HTTP and the upstream: plan, call, relay.

Knows nothing of FastAPI or Lambda: it takes an authenticated key and a
validated body and returns either a complete message or a stream that is
already known to have started, so every failure before the first byte
reaches the caller as a real HTTP error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from . import upstream
from .cache import RefreshingValue
from .errors import GatewayError
from .keys import ApiKey
from .providers import Catalogue, Model
from .upstream_request import build_call

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 529})
MODEL_HEADER = "x-edenai-model"
ATTEMPTS_HEADER = "x-edenai-attempts"


def attempts_header(attempts: list["Attempt"]) -> str:
    return ", ".join(attempt.header_value() for attempt in attempts)


@dataclass(frozen=True)
class Attempt:
    model_id: str
    status: int
    latency_ms: int

    def header_value(self) -> str:
        return f"{self.model_id};status={self.status};ms={self.latency_ms}"


@dataclass
class Outcome:
    model: Model
    attempts: list[Attempt]
    message: dict[str, Any] | None = None
    stream: upstream.StreamRelay | None = None

    def headers(self) -> dict[str, str]:
        return {MODEL_HEADER: self.model.id, ATTEMPTS_HEADER: attempts_header(self.attempts)}


def plan_models(catalogue: Catalogue, key: ApiKey, requested: str, fallbacks: list[str] | None) -> list[Model]:
    """The primary model then each fallback, resolved and checked against the key's allow-list."""
    names = [requested, *(fallbacks or [])]
    if len(set(names)) != len(names):
        raise GatewayError(400, "fallbacks: a model may appear only once among model and fallbacks.")
    models = [catalogue.resolve(name) for name in names]
    for model in models:
        if not key.may_use(model.id):
            raise GatewayError(403, f"This API key may not use model {model.id!r}.")
    return models


class Gateway:
    def __init__(
        self,
        catalogue: RefreshingValue[Catalogue],
        *,
        deadline: float,
        send: Callable[[dict[str, Any]], Awaitable[Any]] = upstream.send,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._catalogue = catalogue
        self._deadline = deadline
        self._send = send
        self._clock = clock

    async def create_message(self, key: ApiKey, body: dict[str, Any], *, anthropic_beta: str | None) -> Outcome:
        catalogue = await self._catalogue.get()
        models = plan_models(catalogue, key, body["model"], body.get("fallbacks"))
        started = self._clock()
        attempts: list[Attempt] = []
        last_error: GatewayError | None = None
        for model in models:
            remaining = self._deadline - (self._clock() - started)
            if remaining <= 0.5:
                last_error = GatewayError(504, "The request's deadline passed before a model answered.")
                break
            call = build_call(body, model, anthropic_beta=anthropic_beta, timeout=remaining)
            attempt_started = self._clock()
            try:
                outcome = await self._attempt(model, call)
            except GatewayError as error:
                attempts.append(Attempt(model.id, error.status, self._ms_since(attempt_started)))
                last_error = error
                if error.status not in RETRYABLE_STATUSES:
                    break
                continue
            attempts.append(Attempt(model.id, 200, self._ms_since(attempt_started)))
            outcome.attempts = attempts
            return outcome
        assert last_error is not None
        if attempts:
            last_error.headers[ATTEMPTS_HEADER] = attempts_header(attempts)
        raise last_error

    async def _attempt(self, model: Model, call: dict[str, Any]) -> Outcome:
        result = await self._send(call)
        if call["stream"]:
            relay = upstream.StreamRelay(result, model_id=model.id, secrets=(model.provider.api_key,))
            await relay.first()
            return Outcome(model, [], stream=relay)
        message = dict(result) if not isinstance(result, dict) else result
        message["model"] = model.id
        return Outcome(model, [], message=message)

    def _ms_since(self, start: float) -> int:
        return int((self._clock() - start) * 1000)
