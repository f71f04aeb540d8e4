"""The request's plan: which models to try, in order, each with how its call departs from the body.

One pure step before anything is reserved or sent: names resolve against the
catalogue and the key's allow-list, models whose route would lose part of the
request are left out, `@edenai` ranks its candidates, and each remaining
model's adaptation (clamped `max_tokens`, dropped fields) is worked out. The
gateway then builds every attempt's call and runs them in this order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

from ..keys.store import ApiKey
from ..metering.items import input_token_estimate
from ..protocol.errors import GatewayError
from ..providers.catalogue import EDENAI_ROUTER, Catalogue, Model
from .adaptation import Adaptation, adapt
from .breaker import ModelHealth
from .fallbacks import DEFAULT, Entry, attempt_body, entries, runs_default_chain
from .history import tool_pairing_problem
from .model_list import resolve_for
from .routing import candidates_for, needs_of, route


@dataclass(frozen=True)
class Attempt:
    """One model of the chain, the body its call is built from (the request's, with that
    fallback entry's overrides: fallbacks.py) and how the call departs from it (adaptation.py)."""

    model: Model
    adaptation: Adaptation
    body: Mapping[str, Any]


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
    request are left out (each asked once: the walk over a large body is not free). A history
    whose tool calls and results do not pair up is the caller's 400 before any of it, for
    every target alike (pipeline/history.py)."""
    problem = tool_pairing_problem(body["messages"])
    if problem:
        raise GatewayError(400, problem)
    chain, reason = _chain(catalogue, key, body, policy=policy, health=health)
    bodies = [(model, attempt_body(body, overrides)) for model, overrides in chain]
    attempts = [Attempt(model, adapt(sent, model, anthropic_beta), sent) for model, sent in bodies]
    if _leaves_default_to_anthropic(catalogue, body, attempts):
        first = attempts[0]
        attempts[0] = replace(first, adaptation=replace(first.adaptation, upstream_fallbacks=DEFAULT))
    return Plan(attempts, reason)


def _leaves_default_to_anthropic(catalogue: Catalogue, body: dict[str, Any], attempts: list[Attempt]) -> bool:
    """`"default"` with no chain of the operator's for an Anthropic API model: Anthropic's own
    server-side fallback runs it, so it goes to the provider as sent."""
    if body.get("fallbacks") != DEFAULT or body["model"] == EDENAI_ROUTER or len(attempts) != 1:
        return False
    primary = attempts[0].model
    return primary.provider.type == "anthropic" and catalogue.chain_for(body["model"], primary) is None


def _chain(catalogue: Catalogue, key: ApiKey, body: dict[str, Any], *, policy: str,
           health: ModelHealth) -> tuple[list[tuple[Model, Mapping[str, Any]]], str | None]:
    """Each model of the chain with its entry's overrides (none for the requested model)."""
    requested, fallbacks = body["model"], entries(body)
    if requested != EDENAI_ROUTER:
        if runs_default_chain(body, key.default_fallbacks):
            fallbacks = _default_chain(catalogue, key, requested)
        resolved = _with_overrides(catalogue, key, [Entry(requested), *fallbacks])
        return carrying_models(resolved, body), None
    explicit = [(model, overrides) for model, overrides in _with_overrides(catalogue, key, fallbacks)
                if not model.provider.family.unsendable(attempt_body(body, overrides), model)]
    candidates, dropped = candidates_for(catalogue, body.get("router_candidates"), key.may_use)
    unsendable = {model.id: model.provider.family.unsendable(body, model) for model in candidates}
    dropped.update((model_id, problem) for model_id, problem in unsendable.items() if problem)
    candidates = [model for model in candidates if not unsendable[model.id]]
    needs = needs_of(body, input_token_estimate(body))
    routed = route(candidates, dropped, needs, policy=policy, is_open=health.is_open, latency_ms=health.latency_ms)
    order = [(routed.models[0], {}), *explicit, *((model, {}) for model in routed.models[1:])]
    first_occurrences: dict[str, tuple[Model, Mapping[str, Any]]] = {}
    for model, overrides in order:
        first_occurrences.setdefault(model.id, (model, overrides))
    return list(first_occurrences.values()), routed.reason


def _default_chain(catalogue: Catalogue, key: ApiKey, requested: str) -> list[Entry]:
    """The operator's chain for the requested model, less the model itself and the models the
    key may not use (a chain the caller did not write never turns a request into a 403)."""
    primary = resolve_for(catalogue, key, requested)
    chain = catalogue.chain_for(requested, primary) or ()
    return [Entry(model_id) for model_id in chain if model_id != primary.id and key.may_use(model_id)]


def _with_overrides(catalogue: Catalogue, key: ApiKey,
                    chain: list[Entry]) -> list[tuple[Model, Mapping[str, Any]]]:
    names = [entry.name for entry in chain]
    if len(set(names)) != len(names):
        raise GatewayError(400, "fallbacks: a model may appear only once among model and fallbacks.")
    return [(resolve_for(catalogue, key, entry.name), entry.overrides) for entry in chain]


def carrying_models(chain: list[tuple[Model, Mapping[str, Any]]],
                    body: dict[str, Any]) -> list[tuple[Model, Mapping[str, Any]]]:
    """The request's chain without the models whose route would drop or fetch part of it (a
    fallback that could not answer it as asked); none left is a 400 naming what the first
    model would lose, before anything is reserved or sent."""
    problems = {model.id: model.provider.family.unsendable(attempt_body(body, overrides), model)
                for model, overrides in chain}
    carrying = [(model, overrides) for model, overrides in chain if not problems[model.id]]
    if not carrying:
        first = chain[0][0]
        raise GatewayError(400, f"{problems[first.id]} (model {first.id})")
    return carrying
