"""The app's OpenAPI document, with the seed's schemas for the bodies it reads itself.

The routes read their bodies by hand (size cap, strict JSON) rather than
through FastAPI's parameter machinery, so FastAPI does not see the body
models: they are added here, with the 422 answer their validation gives
and the bearer / x-api-key security the gateway accepts.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

VALIDATION_ERROR_RESPONSE = {
    "description": "Validation Error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}},
}
HTTP_VALIDATION_ERROR = {
    "properties": {"detail": {"items": {"$ref": "#/components/schemas/ValidationError"},
                              "type": "array", "title": "Detail"}},
    "type": "object",
    "title": "HTTPValidationError",
}
VALIDATION_ERROR = {
    "properties": {
        "loc": {"items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}, "type": "array", "title": "Location"},
        "msg": {"type": "string", "title": "Message"},
        "type": {"type": "string", "title": "Error Type"},
    },
    "type": "object",
    "required": ["loc", "msg", "type"],
    "title": "ValidationError",
}
ERROR_RESPONSE = {
    "properties": {
        "type": {"type": "string", "const": "error"},
        "error": {"properties": {"type": {"type": "string"}, "message": {"type": "string"}},
                  "required": ["type", "message"], "type": "object"},
    },
    "required": ["type", "error"],
    "type": "object",
    "title": "ErrorResponse",
    "description": "Anthropic's error envelope; every response also carries a request-id header.",
}
ERROR_STATUSES = {
    "400": "Invalid request (malformed JSON, unknown model, refused fields)",
    "401": "Missing, unknown or revoked API key",
    "403": "The key may not use this model",
    "404": "Not found",
    "413": "Request body over 10 MB",
    "415": "Content-Type is not JSON",
    "429": "A limit of this key, or the provider's; see retry-after",
    "500": "Internal error",
    "502": "The upstream provider failed or could not be reached",
    "503": "A store the gateway needs (keys, providers, limits) is unavailable; see retry-after",
    "504": "No model answered before the deadline",
    "529": "The upstream model is overloaded; see retry-after",
}
# One server-sent event (OpenAPI 3.2 reads a text/event-stream schema per event, as schemathesis does).
EVENT_STREAM = {"text/event-stream": {"schema": {
    "type": "object", "description": "One of Anthropic's SSE events: `event` names it, `data` is its JSON",
    "required": ["event", "data"],
    "properties": {"event": {"type": "string"}, "data": {"type": "string", "contentMediaType": "application/json"}},
}}}
SECURITY_SCHEMES = {
    "AuthBearer": {"type": "http", "scheme": "bearer"},
    "ApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
}
PUBLIC_PATHS = {"/health", "/openapi.json"}


def _schemas_of(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = schema.pop("$defs", {})
    return {**definitions, model.__name__: schema}


def install(app: FastAPI, body_models: list[type[BaseModel]]) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(title=app.title, version=app.version, routes=app.routes,
                               description=app.description)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for model in body_models:
            schemas.update(_schemas_of(model))
        schemas.update(HTTPValidationError=HTTP_VALIDATION_ERROR, ValidationError=VALIDATION_ERROR,
                       ErrorResponse=ERROR_RESPONSE)
        document["components"]["securitySchemes"] = SECURITY_SCHEMES
        for path, operations in document.get("paths", {}).items():
            for operation in operations.values():
                if "requestBody" in operation:
                    operation["responses"].setdefault("422", VALIDATION_ERROR_RESPONSE)
                else:  # a bad query or path parameter is a 400 in Anthropic's envelope (app.py)
                    operation["responses"].pop("422", None)
                if path not in PUBLIC_PATHS:
                    operation["security"] = [{"AuthBearer": []}, {"ApiKey": []}]
                    for status, description in ERROR_STATUSES.items():
                        operation["responses"].setdefault(status, {"description": description, "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}})
        streamed = document["paths"].get("/v3/v1/messages", {}).get("post")
        if streamed:  # stream: true answers 200 with Anthropic's event stream
            streamed["responses"]["200"]["content"].update(EVENT_STREAM)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
