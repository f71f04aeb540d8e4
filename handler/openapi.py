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
        schemas.update(HTTPValidationError=HTTP_VALIDATION_ERROR, ValidationError=VALIDATION_ERROR)
        document["components"]["securitySchemes"] = SECURITY_SCHEMES
        for path, operations in document.get("paths", {}).items():
            for operation in operations.values():
                if "requestBody" in operation:
                    operation["responses"].setdefault("422", VALIDATION_ERROR_RESPONSE)
                if path not in PUBLIC_PATHS:
                    operation["security"] = [{"AuthBearer": []}, {"ApiKey": []}]
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
