"""Model health per process: a circuit breaker and recent latency, for @edenai routing.

After `threshold` consecutive provider failures a model is skipped for
`cooldown` seconds; then one request may try it again (half-open), and a
success closes the circuit. In memory, per process: each Lambda instance
learns on its own, which is what a cool-down of seconds needs.

The breaker is shared by every key, so only the provider's own failures
move it: a caller who sends what the provider refuses (a bad header, a
prompt too long for the model, any other 4xx) must not take a model out of
everyone else's routing, nor may a failure no provider had a part in (a
request litellm refuses to build, a gateway fault: `GatewayError.by_provider`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from ..protocol.errors import GatewayError


def provider_failure(error: GatewayError) -> bool:
    """5xx, 529, timeouts, connection errors and the provider's 429: the model's health, not the
    caller's doing; never what the gateway or litellm decided without the provider."""
    return error.by_provider and (error.status == 429 or error.status >= 500)


@dataclass
class _State:
    failures: int = 0
    opened_at: float | None = None


class ModelHealth:
    def __init__(self, *, threshold: int = 3, cooldown: float = 30.0,
                 clock: Callable[[], float] = time.monotonic,
                 on_open: Callable[[str], None] = lambda model_id: None) -> None:
        self._threshold = threshold
        self._on_open = on_open  # told when a circuit opens (telemetry counts it)
        self._cooldown = cooldown
        self._clock = clock
        self._states: dict[str, _State] = {}
        self._latency: dict[str, float] = {}

    def is_open(self, model_id: str) -> bool:
        """True while the model is cooling down after repeated failures."""
        state = self._states.get(model_id)
        if state is None or state.opened_at is None:
            return False
        if self._clock() - state.opened_at >= self._cooldown:
            state.opened_at = None  # half-open: let the next request try
            state.failures = self._threshold - 1  # one more failure re-opens at once
            return False
        return True

    def record_success(self, model_id: str, latency_ms: float) -> None:
        self._states.pop(model_id, None)
        previous = self._latency.get(model_id)
        # An exponential moving average: recent calls count most, one outlier does not dominate.
        self._latency[model_id] = latency_ms if previous is None else 0.8 * previous + 0.2 * latency_ms

    def latency_ms(self, model_id: str) -> float | None:
        return self._latency.get(model_id)

    def record_failure(self, model_id: str) -> None:
        state = self._states.setdefault(model_id, _State())
        state.failures += 1
        if state.failures >= self._threshold:
            if state.opened_at is None:
                self._on_open(model_id)
            state.opened_at = self._clock()
