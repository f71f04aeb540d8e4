"""/openapi.json describes the seed endpoint with the seed's own schemas.

Compared field by field with the vendored seed specification: names, types
(nullable or not), bounds, defaults, required fields, additionalProperties,
and the 422 HTTPValidationError answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import yaml

SEED = yaml.safe_load((Path(__file__).parent / "data" / "seed-openapi-create-anthropic-message.yaml").read_text())
SEED_SCHEMAS = SEED["components"]["schemas"]
SEED_OPERATION = SEED["paths"]["/v3/v1/messages"]["post"]


@pytest.fixture(scope="module")
def document(moto_endpoint, _fake_session):
    from handler.app import create_app

    return create_app().openapi()


def normalized(schema: dict) -> dict:
    """A schema without prose (title, description) and without `default: null`, which says
    nothing an optional nullable field does not; alternatives in a stable order."""
    out = {k: v for k, v in schema.items() if k not in ("title", "description")}
    if "default" in out and out["default"] is None:
        del out["default"]
    if "anyOf" in out:
        out["anyOf"] = sorted((normalized(option) for option in out["anyOf"]), key=lambda o: json.dumps(o, sort_keys=True))
    if isinstance(out.get("items"), dict):
        out["items"] = normalized(out["items"])
    return out


@pytest.mark.parametrize("name", sorted(SEED_SCHEMAS))
def test_every_seed_schema_is_in_the_document_as_specified(document, name):
    ours, seed = document["components"]["schemas"][name], SEED_SCHEMAS[name]
    assert set(ours["properties"]) == set(seed["properties"])
    assert set(ours.get("required", [])) == set(seed.get("required", []))
    assert ours.get("additionalProperties") == seed.get("additionalProperties")
    for field, spec in seed["properties"].items():
        if (name, field) in (("AnthropicMessagesBody", "fallbacks"), ("AnthropicContentBlock", "source"),
                             ("AnthropicContentBlock", "content")):
            continue  # widened on purpose: the tests below
        assert normalized(ours["properties"][field]) == normalized(spec), f"{name}.{field}"


def test_a_blocks_source_is_the_seeds_object_or_a_search_results_string(document):
    """Widened so Anthropic's search_result block (its source a URL string) is accepted."""
    ours = document["components"]["schemas"]["AnthropicContentBlock"]["properties"]["source"]
    seed = SEED_SCHEMAS["AnthropicContentBlock"]["properties"]["source"]
    assert normalized(ours)["anyOf"] == normalized({"anyOf": [*seed["anyOf"], {"type": "string"}]})["anyOf"]


def test_a_blocks_content_is_the_seeds_string_or_list_or_a_server_tool_results_object(document):
    """Widened so Anthropic's server-tool result blocks (`tool_search_tool_result`,
    `web_fetch_tool_result`, ...), whose content is an object, are accepted."""
    ours = document["components"]["schemas"]["AnthropicContentBlock"]["properties"]["content"]
    seed = SEED_SCHEMAS["AnthropicContentBlock"]["properties"]["content"]
    widened = {"anyOf": [*seed["anyOf"], {"type": "object", "additionalProperties": True}]}
    assert normalized(ours)["anyOf"] == normalized(widened)["anyOf"]


def test_fallbacks_are_the_seeds_strings_or_the_sdks_objects(document):
    """The one deliberate widening: every body the seed accepts is still accepted."""
    ours = document["components"]["schemas"]["AnthropicMessagesBody"]["properties"]["fallbacks"]
    array = next(option for option in ours["anyOf"] if option.get("type") == "array")
    assert array["maxItems"] == 3 and {"type": "null"} in ours["anyOf"]
    assert {"type": "string"} in array["items"]["anyOf"]
    ref = next(item["$ref"] for item in array["items"]["anyOf"] if "$ref" in item)
    fallback = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert fallback["required"] == ["model"] and fallback["additionalProperties"] is False


def test_the_operation_matches_the_seed(document):
    operation = document["paths"]["/v3/v1/messages"]["post"]
    assert operation["operationId"] == SEED_OPERATION["operationId"]
    assert operation["summary"] == SEED_OPERATION["summary"]
    assert operation["requestBody"] == SEED_OPERATION["requestBody"]
    for status in ("200", "422"):
        seed_json = SEED_OPERATION["responses"][status]["content"]["application/json"]
        assert operation["responses"][status]["content"]["application/json"] == seed_json
    assert "text/event-stream" in operation["responses"]["200"]["content"]  # stream: true
    assert operation["responses"]["429"]["content"]["application/json"]["schema"] == \
        {"$ref": "#/components/schemas/ErrorResponse"}
    assert {"AuthBearer": []} in operation["security"]
    assert document["components"]["securitySchemes"]["AuthBearer"] == SEED["components"]["securitySchemes"]["AuthBearer"]


def test_the_document_is_served_without_a_key(server):
    served = httpx.get(f"{server.url}/openapi.json").json()
    assert "/v3/v1/messages" in served["paths"] and "/v3/v1/messages/count_tokens" in served["paths"]
