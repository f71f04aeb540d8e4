"""GET /v3/v1/models: the key's models in Anthropic's list shape, paginated.

Pure: the catalogue and the key in, one page out. `@edenai` is listed first
(it is a model a caller can name); the rest follow in id order, which makes
`before_id` / `after_id` cursors stable. litellm's price map has no release
dates, so `created_at` is the Unix epoch rather than an invented date.
"""

from __future__ import annotations

from typing import Iterable

from .errors import GatewayError
from .keys import ApiKey
from .providers import EDENAI_ROUTER, Catalogue, Model

UNKNOWN_RELEASE = "1970-01-01T00:00:00Z"
CAPABILITIES = {
    "tools": "supports_function_calling",
    "vision": "supports_vision",
    "pdf_input": "supports_pdf_input",
    "extended_thinking": "supports_reasoning",
    "prompt_caching": "supports_prompt_caching",
}


def model_info(model: Model) -> dict:
    info = model.info
    return {
        "type": "model",
        "id": model.id,
        "display_name": f"{model.name} ({model.provider.name})",
        "created_at": UNKNOWN_RELEASE,
        "max_input_tokens": info.get("max_input_tokens"),
        "max_tokens": info.get("max_output_tokens") or info.get("max_tokens"),
        "capabilities": {name: bool(info.get(field)) for name, field in CAPABILITIES.items()},
    }


def router_info(models: list[Model]) -> dict:
    return {
        "type": "model",
        "id": EDENAI_ROUTER,
        "display_name": "Eden AI router (picks a model per request)",
        "created_at": UNKNOWN_RELEASE,
        "max_input_tokens": max((m.info.get("max_input_tokens") or 0 for m in models), default=None) or None,
        "max_tokens": max((m.info.get("max_output_tokens") or 0 for m in models), default=None) or None,
        "capabilities": {name: any(bool(m.info.get(field)) for m in models) for name, field in CAPABILITIES.items()},
    }


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


def find(entries: Iterable[dict], model_id: str) -> dict:
    for entry in entries:
        if entry["id"] == model_id:
            return entry
    raise GatewayError(404, f"Model {model_id!r} is not available to this API key.")
