"""`model: "@edenai"`: which catalogue models can serve this request, and in what order.

Pure functions over the request's needs and the catalogue's capabilities.
A candidate is dropped, with the reason kept for the caller, when it cannot
serve the request: tools without function calling, images or documents
without vision, thinking without reasoning, a prompt plus max_tokens beyond
its context window, the key's allow-list, or an open circuit breaker. The
rest are ranked by the operator's policy (GATEWAY_ROUTER_POLICY):

  cheapest  estimated cost of this request (default): input at the model's input
            price, max_tokens at its output price; unpriced models rank last
  fastest   lowest recent latency seen by this process (unseen models first, so
            they get measured), cost breaking ties
  order     the order of router_candidates (or the catalogue), i.e. the caller's
            or operator's own preference
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Iterable, Mapping

from ..metering.pricing import price_of
from ..protocol.errors import GatewayError
from ..providers.catalogue import Catalogue, Model
from .adaptation import can_structure, clamped_max_tokens, structured_format

POLICIES = ("cheapest", "fastest", "order")
MAX_ROUTED_FALLBACKS = 3


@dataclass(frozen=True)
class Needs:
    """What a request asks of a model."""

    tools: bool = False
    images: bool = False
    documents: bool = False
    thinking: bool = False
    input_tokens: int = 0
    max_tokens: int = 1024
    structured: bool = False
    adaptive_thinking: bool = False


def _blocks(body: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, list):
            for block in content:
                yield block
                if block.get("type") == "tool_result" and isinstance(block.get("content"), list):
                    yield from block["content"]


def needs_of(body: Mapping[str, Any], input_tokens: int) -> Needs:
    kinds = {block.get("type") for block in _blocks(body) if isinstance(block, Mapping)}
    thinking = body.get("thinking") or {}
    return Needs(
        tools=bool(body.get("tools")),
        images="image" in kinds,
        documents="document" in kinds,
        thinking=thinking.get("type") == "enabled",
        structured=structured_format(body) is not None,
        adaptive_thinking=thinking.get("type") == "adaptive",
        input_tokens=input_tokens,
        max_tokens=int(body.get("max_tokens") or 1024),
    )


def unfit_reason(model: Model, needs: Needs) -> str | None:
    """Why `model` cannot serve a request with these needs; None if it can."""
    info = model.info
    if needs.tools and info.get("supports_function_calling") is False:
        return "no function calling"
    if needs.tools and "supports_function_calling" not in info and not model.speaks_anthropic:
        return "function calling unknown"
    if needs.images and not info.get("supports_vision"):
        return "no vision"
    if needs.documents and not (info.get("supports_pdf_input") or info.get("supports_vision")):
        return "no document input"
    if needs.thinking and not info.get("supports_reasoning"):
        return "no extended thinking"
    if needs.adaptive_thinking and model.speaks_anthropic and info.get("supports_adaptive_thinking") is not True:
        return "no adaptive thinking"  # an Anthropic model answers 400; elsewhere it is dropped visibly
    if needs.structured and not can_structure(model):
        return "no structured output (JSON schema)" if can_structure(model) is False else "structured output unknown"
    window, max_tokens = info.get("max_input_tokens"), clamped_max_tokens(model, needs.max_tokens)
    if isinstance(window, int) and needs.input_tokens + max_tokens > window:
        return f"context window {window} < {needs.input_tokens} input + {max_tokens} max_tokens"
    return None


def estimated_cost(model: Model, needs: Needs) -> Decimal | None:
    price = price_of(model.info)
    if price is None:
        return None
    return needs.input_tokens * price.input + clamped_max_tokens(model, needs.max_tokens) * price.output


@dataclass
class Route:
    models: list[Model]
    dropped: dict[str, str] = field(default_factory=dict)
    reason: str = ""


def candidates_for(catalogue: Catalogue, router_candidates: list[str] | None,
                   may_use: Callable[[str], bool]) -> tuple[list[Model], dict[str, str]]:
    """The caller's candidates, resolved, or every catalogue model the key may use."""
    if router_candidates:
        if len(set(router_candidates)) != len(router_candidates):
            raise GatewayError(400, "router_candidates: a model may appear only once.")
        models = [catalogue.resolve(name) for name in router_candidates]
        for name, model in zip(router_candidates, models):
            if not may_use(model.id):  # the name as given: never the catalogue id /models hides
                raise GatewayError(403, f"router_candidates: this API key may not use model {name!r}.")
        return models, {}
    return [m for m in catalogue.models.values() if may_use(m.id)], {}


def rank(models: list[Model], needs: Needs, policy: str,
         latency_ms: Callable[[str], float | None]) -> list[Model]:
    def cost_key(model: Model):
        cost = estimated_cost(model, needs)
        return (cost is None, cost or Decimal(0))

    if policy == "order":
        return list(models)
    if policy == "fastest":
        return sorted(models, key=lambda m: (latency_ms(m.id) or 0.0, cost_key(m)))
    return sorted(models, key=cost_key)


def route(candidates: list[Model], dropped: dict[str, str], needs: Needs, *, policy: str,
          is_open: Callable[[str], bool], latency_ms: Callable[[str], float | None] = lambda _: None) -> Route:
    """Filter, rank, explain; raise 400 with every reason when nothing is left."""
    dropped = dict(dropped)
    fit = []
    for model in candidates:
        reason = "recently failing (circuit open)" if is_open(model.id) else unfit_reason(model, needs)
        if reason:
            dropped[model.id] = reason
        else:
            fit.append(model)
    if not fit:
        detail = "; ".join(f"{model_id}: {why}" for model_id, why in sorted(dropped.items())) or "no candidates"
        raise GatewayError(400, f"@edenai: no candidate model can serve this request ({detail}).")
    ranked = rank(fit, needs, policy, latency_ms)[: 1 + MAX_ROUTED_FALLBACKS]
    best = ranked[0]
    cost = estimated_cost(best, needs)
    why = f"policy={policy}; chose {best.id}"
    if cost is not None:
        why += f" (estimated ${cost:.6f})"
    why += f" of {len(fit)} fit"
    if dropped:
        why += f"; dropped {len(dropped)} ({'; '.join(f'{m}: {r}' for m, r in sorted(dropped.items()))})"
    return Route(ranked, dropped, why)
