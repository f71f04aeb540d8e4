"""The request's `fallbacks`, in every form a client sends it, as entries of its chain.

Pure. One field speaks two dialects: the seed's model ids (tried when a model
fails) and Anthropic's server-side fallback (`"default"`, or objects
`{model, max_tokens?, thinking?, output_config?, speed?}` whose overrides apply
to that attempt only, tried when a model declines). Strings and objects mix,
at most 3 (protocol/schemas.py refuses the rest with a 422). The overrides are
applied to the body before that attempt is adapted and built, so each is
clamped and checked against its own model like any call to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

DEFAULT = "default"
OVERRIDES = ("max_tokens", "thinking", "output_config", "speed")
# Anthropic's server-side fallback beta (anthropic SDK `BetaFallbacksParam`): with it, a
# model that declines (`stop_reason: "refusal"`) hands over to the next entry.
REFUSAL_BETA_PREFIX = "server-side-fallback-"


@dataclass(frozen=True)
class Entry:
    """One fallback: the model's name as the caller wrote it, and its attempt's overrides."""

    name: str
    overrides: Mapping[str, Any] = field(default_factory=dict)


def entries(body: Mapping[str, Any]) -> list[Entry]:
    """The caller's list, strings and objects alike (`"default"` and no list: none here)."""
    listed = body.get("fallbacks")
    if not isinstance(listed, list):
        return []
    return [Entry(item["model"], {name: item[name] for name in OVERRIDES if name in item})
            if isinstance(item, dict) else Entry(item) for item in listed]


def attempt_body(body: Mapping[str, Any], overrides: Mapping[str, Any]) -> Mapping[str, Any]:
    """The body one attempt is built from: the entry's overrides in place of the request's
    fields, as Anthropic documents them (BetaFallbackParam): `max_tokens: null` keeps the
    request's; `output_config` combines one field at a time, a null field or a null
    `output_config` leaving it out; a null `thinking` or `speed` is the model's default."""
    if not overrides:
        return body
    merged = dict(body)
    for name, value in overrides.items():
        if name == "max_tokens" and value is None:
            continue
        if name == "output_config" and isinstance(value, dict):
            combined = {**(body.get("output_config") or {}), **value}
            value = {key: part for key, part in combined.items() if part is not None} or None
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def declines_fall_back(anthropic_beta: str | None) -> bool:
    """Whether a refusal moves to the next entry: the caller sent the server-side fallback beta."""
    return any(beta.strip().startswith(REFUSAL_BETA_PREFIX) for beta in (anthropic_beta or "").split(","))


def lead_content(requested: str, declined: list[tuple[str, Mapping[str, Any], list]], serving: str) -> list[dict]:
    """What the answer's content opens with when models declined before the one serving it, as
    Anthropic's server-side fallback returns it: each declined model's partial content (what it
    produced before it declined: usually nothing), then a `fallback` block (anthropic SDK
    `BetaFallbackBlock`, "the point in `content` where one model's output gives way to the next")
    for that hop. `from` is the caller's own `model` string for the first hop and the catalogue id
    after, `to` the model that took over, `trigger` the refusal's category from its `stop_details`."""
    froms = [requested, *(model_id for model_id, _, _ in declined[1:])]
    tos = [*(model_id for model_id, _, _ in declined[1:]), serving]
    return [block for source, target, (_, details, partial) in zip(froms, tos, declined)
            for block in [*partial, {"type": "fallback", "from": {"model": source}, "to": {"model": target},
                                     "trigger": {"type": "refusal", "category": details.get("category")}}]]


def runs_default_chain(body: Mapping[str, Any], key_default: bool) -> bool:
    """`"default"` names the operator's chain; no `fallbacks` at all uses it when the key runs
    default chains; a list (`[]` included) is the caller's own."""
    listed = body.get("fallbacks")
    return listed == DEFAULT or (listed is None and key_default)
