"""The request's plan: which models to try, in order, each with how its call departs from the body.

One pure step before anything is reserved or sent: names resolve against the
catalogue and the key's allow-list, models whose route would lose part of the
request are left out, `@edenai` ranks its candidates, and each remaining
model's adaptation (clamped `max_tokens`, dropped fields) is worked out. The
gateway then builds every attempt's call and runs them in this order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..keys.store import ApiKey
from ..metering.items import input_token_estimate
from ..protocol.errors import GatewayError
from ..providers.catalogue import EDENAI_ROUTER, Catalogue, Model
from .adaptation import Adaptation, adapt
from .breaker import ModelHealth
from .model_list import resolve_for
from .routing import candidates_for, fallback_names, needs_of, route


@dataclass(frozen=True)
class Attempt:
    """One model of the chain and how its call departs from the body (adaptation.py)."""

    model: Model
    adaptation: Adaptation


@dataclass(frozen=True)
class Plan:
    """The attempts, in order, and for @edenai why the first was chosen."""

    attempts: list[Attempt]
    route_reason: str | None = None

    @property
    def models(self) -> list[Model]:
        return [attempt.model for attempt in self.attempts]

    def adaptation_of(self, model: Model) -> Adaptation:
        return next(attempt.adaptation for attempt in self.attempts if attempt.model.id == model.id)


def plan_request(catalogue: Catalogue, key: ApiKey, body: dict[str, Any], *, policy: str,
                 health: ModelHealth, anthropic_beta: str | None = None) -> Plan:
    """The primary model then each fallback; for @edenai, the routed choice, the explicit
    fallbacks, then the next routed candidates. Models whose route would lose part of the
    request are left out (each asked once: the walk over a large body is not free)."""
    models, reason = _chain(catalogue, key, body, policy=policy, health=health)
    return Plan([Attempt(model, adapt(body, model, anthropic_beta)) for model in models], reason)


def _chain(catalogue: Catalogue, key: ApiKey, body: dict[str, Any], *, policy: str,
           health: ModelHealth) -> tuple[list[Model], str | None]:
    requested, fallbacks = body["model"], fallback_names(body)
    if requested != EDENAI_ROUTER:
        return carrying_models(_resolve_all(catalogue, key, [requested, *fallbacks]), body), None
    explicit = [model for model in _resolve_all(catalogue, key, fallbacks)
                if not model.provider.family.unsendable(body, model)]
    candidates, dropped = candidates_for(catalogue, body.get("router_candidates"), key.may_use)
    unsendable = {model.id: model.provider.family.unsendable(body, model) for model in candidates}
    dropped.update((model_id, problem) for model_id, problem in unsendable.items() if problem)
    candidates = [model for model in candidates if not unsendable[model.id]]
    needs = needs_of(body, input_token_estimate(body))
    routed = route(candidates, dropped, needs, policy=policy, is_open=health.is_open, latency_ms=health.latency_ms)
    order = [routed.models[0], *explicit, *routed.models[1:]]
    first_occurrences = list({model.id: model for model in order}.values())
    return first_occurrences, routed.reason


def _resolve_all(catalogue: Catalogue, key: ApiKey, names: list[str]) -> list[Model]:
    if len(set(names)) != len(names):
        raise GatewayError(400, "fallbacks: a model may appear only once among model and fallbacks.")
    return [resolve_for(catalogue, key, name) for name in names]


def carrying_models(models: list[Model], body: dict[str, Any]) -> list[Model]:
    """The request's chain without the models whose route would drop or fetch part of it (a
    fallback that could not answer it as asked); none left is a 400 naming what the first
    model would lose, before anything is reserved or sent."""
    problems = {model.id: model.provider.family.unsendable(body, model) for model in models}
    carrying = [model for model in models if not problems[model.id]]
    if not carrying:
        raise GatewayError(400, f"{problems[models[0].id]} (model {models[0].id})")
    return carrying
