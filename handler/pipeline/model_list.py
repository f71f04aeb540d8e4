"""GET /v3/v1/models: the key's models in Anthropic's list shape, paginated.

Pure: the catalogue and the key in, one page out. `@edenai` is listed first
(it is a model a caller can name); the rest follow in id order, which makes
`before_id` / `after_id` cursors stable: each catalogue id, and each exact
alias of the operator's as an entry of its own that describes its target
(Claude Code's model discovery keeps only ids beginning with `claude` or
`anthropic`, so an alias is how another model enters its picker). Alias
patterns name no model of their own and are not listed. litellm's price map has
no release dates, so `created_at` is the Unix epoch rather than an invented date.
"""

from __future__ import annotations

from ..keys.store import ApiKey
from ..protocol.errors import GatewayError
from ..providers.catalogue import EDENAI_ROUTER, Catalogue, Model, is_pattern
from ..providers.features import features

UNKNOWN_RELEASE = "1970-01-01T00:00:00Z"
EFFORT_LEVELS = ("low", "medium", "high", "max", "xhigh")


def _supported(flag: bool) -> dict:
    return {"supported": bool(flag)}


def capabilities(models: list[Model]) -> dict:
    """Anthropic's capability object for a model (any of `models` for the router): image,
    PDF, tools and thinking from litellm's flags, structured outputs, effort and adaptive
    thinking from providers/features.py.

    Server-side features the gateway does not offer (batches, code execution,
    context management, server tools) are reported unsupported; `tool_use` is
    ours (every Claude model has it, other providers may not).
    """
    def has(field: str) -> bool:
        return any(bool(model.info.get(field)) for model in models)

    each = [features(model) for model in models]
    levels = {level for found in each for level in found.effort_levels}
    thinking = has("supports_reasoning")
    adaptive = any(found.adaptive_thinking for found in each)
    no = _supported(False)
    return {
        "batch": no, "citations": no, "code_execution": no,
        "structured_outputs": _supported(any(found.structured_outputs for found in each)),
        "context_management": {"supported": False},
        "effort": {"supported": bool(levels), **{level: _supported(level in levels) for level in EFFORT_LEVELS}},
        "server_tools": {"supported": False, "code_execution": no, "web_search": no},
        "image_input": _supported(has("supports_vision")),
        "pdf_input": _supported(has("supports_pdf_input")),
        "thinking": {"supported": thinking or adaptive, "types": {
            "enabled": _supported(thinking), "disabled": _supported(True),
            "adaptive": _supported(adaptive), "between_tools": no}},
        "tool_use": _supported(has("supports_function_calling")),
    }


def _entry(model_id: str, display_name: str, models: list[Model]) -> dict:
    def largest(*fields: str) -> int | None:
        values = [model.info.get(f) for model in models for f in fields if isinstance(model.info.get(f), int)]
        return max(values) if values else None

    return {
        "type": "model",
        "id": model_id,
        "display_name": display_name,
        "created_at": UNKNOWN_RELEASE,
        "lifecycle": "active",
        "max_input_tokens": largest("max_input_tokens"),
        "max_tokens": largest("max_output_tokens", "max_tokens"),
        "capabilities": capabilities(models),
    }


def model_info(model: Model) -> dict:
    return _entry(model.id, f"{model.name} ({model.provider.name})", [model])


def alias_info(alias: str, model: Model) -> dict:
    return _entry(alias, f"{alias} (alias of {model.id})", [model])


def router_info(models: list[Model]) -> dict:
    return _entry(EDENAI_ROUTER, "Eden AI router (picks a model per request)", models)


def visible_models(catalogue: Catalogue, key: ApiKey) -> list[dict]:
    models = sorted((m for m in catalogue.models.values() if key.may_use(m.id)), key=lambda m: m.id)
    aliases = [alias_info(alias, catalogue.models[target]) for alias, target in catalogue.aliases.items()
               if not is_pattern(alias) and key.may_use(target)]
    named = sorted([model_info(m) for m in models] + aliases, key=lambda entry: entry["id"])
    return ([router_info(models)] if models else []) + named


def page(entries: list[dict], *, before_id: str | None, after_id: str | None, limit: int) -> dict:
    if not 1 <= limit <= 1000:
        raise GatewayError(400, "limit must be between 1 and 1000.")
    if before_id and after_id:
        raise GatewayError(400, "Use before_id or after_id, not both.")
    ids = [entry["id"] for entry in entries]
    for cursor in (before_id, after_id):
        if cursor and cursor not in ids:
            raise GatewayError(400, f"Unknown model id {cursor!r} as a page cursor.")
    if after_id:
        start = ids.index(after_id) + 1
        chosen, has_more = entries[start:start + limit], start + limit < len(entries)
    elif before_id:
        end = ids.index(before_id)
        chosen, has_more = entries[max(0, end - limit):end], end - limit > 0
    else:
        chosen, has_more = entries[:limit], limit < len(entries)
    return {
        "data": chosen,
        "has_more": has_more,
        "first_id": chosen[0]["id"] if chosen else None,
        "last_id": chosen[-1]["id"] if chosen else None,
    }


def find(catalogue: Catalogue, key: ApiKey, model_id: str) -> dict:
    """One model, named as /messages names it (catalogue id, alias, bare or dated name):
    unknown 404, not this key's 403, as /messages answers."""
    if model_id == EDENAI_ROUTER:
        models = [m for m in catalogue.models.values() if key.may_use(m.id)]
        if not models:
            raise GatewayError(403, "This API key may not use any model.")
        return router_info(sorted(models, key=lambda m: m.id))
    return model_info(resolve_for(catalogue, key, model_id))


def resolve_for(catalogue: Catalogue, key: ApiKey, name: str) -> Model:
    """The model a name means (Catalogue.resolve), if this key may use it. The 403 repeats
    the name as given, never the catalogue id a bare name resolved to (`/models` hides those)."""
    model = catalogue.resolve(name)
    if not key.may_use(model.id):
        raise GatewayError(403, f"This API key may not use model {name!r}.")
    return model
