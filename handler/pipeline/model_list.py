"""GET /v3/v1/models: the key's models in Anthropic's list shape, paginated.

Pure: the catalogue and the key in, one page out. `@edenai` is listed first
(it is a model a caller can name); the rest follow in id order, which makes
`before_id` / `after_id` cursors stable. litellm's price map has no release
dates, so `created_at` is the Unix epoch rather than an invented date.
"""

from __future__ import annotations

from ..keys.store import ApiKey
from ..protocol.errors import GatewayError
from ..providers.catalogue import EDENAI_ROUTER, Catalogue, Model

UNKNOWN_RELEASE = "1970-01-01T00:00:00Z"


def _supported(flag: bool) -> dict:
    return {"supported": bool(flag)}


def capabilities(infos: list) -> dict:
    """Anthropic's capability object, from litellm's flags (any of `infos` for the router).

    Server-side features the gateway does not offer (batches, code execution,
    context management, effort levels, server tools) are reported unsupported;
    `tool_use` is ours (every Claude model has it, other providers may not).
    """
    def has(field: str) -> bool:
        return any(bool(info.get(field)) for info in infos)

    thinking = has("supports_reasoning")
    no = _supported(False)
    return {
        "batch": no, "citations": no, "code_execution": no, "structured_outputs": no,
        "context_management": {"supported": False},
        "effort": {"supported": False, "high": no, "low": no, "max": no, "medium": no},
        "server_tools": {"supported": False, "code_execution": no, "web_search": no},
        "image_input": _supported(has("supports_vision")),
        "pdf_input": _supported(has("supports_pdf_input")),
        "thinking": {"supported": thinking, "types": {
            "enabled": _supported(thinking), "disabled": _supported(True),
            "adaptive": no, "between_tools": no}},
        "tool_use": _supported(has("supports_function_calling")),
    }


def _entry(model_id: str, display_name: str, infos: list) -> dict:
    def largest(*fields: str) -> int | None:
        values = [info.get(f) for info in infos for f in fields if isinstance(info.get(f), int)]
        return max(values) if values else None

    return {
        "type": "model",
        "id": model_id,
        "display_name": display_name,
        "created_at": UNKNOWN_RELEASE,
        "lifecycle": "active",
        "max_input_tokens": largest("max_input_tokens"),
        "max_tokens": largest("max_output_tokens", "max_tokens"),
        "capabilities": capabilities(infos),
    }


def model_info(model: Model) -> dict:
    return _entry(model.id, f"{model.name} ({model.provider.name})", [model.info])


def router_info(models: list[Model]) -> dict:
    return _entry(EDENAI_ROUTER, "Eden AI router (picks a model per request)", [m.info for m in models])


def visible_models(catalogue: Catalogue, key: ApiKey) -> list[dict]:
    models = sorted((m for m in catalogue.models.values() if key.may_use(m.id)), key=lambda m: m.id)
    return ([router_info(models)] if models else []) + [model_info(m) for m in models]


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
