"""Google's Gemini API (generativelanguage), through litellm, with the entry's API key.

Token counts come from Gemini's own countTokens, called here: litellm calls it
only with google-genai installed (FIELD-NOTES), which the package does not
carry, and otherwise counts with a local tokenizer without saying so.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

from ...protocol.errors import GatewayError
from ...translation import lost_content
from .. import anthropic_api
from .base import Family

DEFAULT_API_BASE = "https://generativelanguage.googleapis.com/v1beta"
# The OpenAPI subset Gemini takes for a function's parameters: any other keyword
# (additionalProperties, $schema, ...) is refused with a 400.
SCHEMA_KEYWORDS = frozenset({"type", "description", "properties", "required", "items", "enum", "format",
                             "nullable", "minItems", "maxItems", "minimum", "maximum", "anyOf"})


def gemini_schema(schema: Any) -> Any:
    if not isinstance(schema, Mapping):
        return schema
    kept = {k: v for k, v in schema.items() if k in SCHEMA_KEYWORDS}
    if isinstance(kept.get("properties"), Mapping):
        kept["properties"] = {name: gemini_schema(value) for name, value in kept["properties"].items()}
    if "items" in kept:
        kept["items"] = gemini_schema(kept["items"])
    if isinstance(kept.get("anyOf"), list):
        kept["anyOf"] = [gemini_schema(option) for option in kept["anyOf"]]
    return kept


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content or [] if isinstance(b, Mapping) and b.get("type") == "text")


def _parts(blocks: Iterable[Mapping[str, Any]], tool_names: dict[str, str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            parts.append({"text": block.get("text", "")})
        elif kind == "tool_use":
            tool_names[str(block.get("id"))] = str(block.get("name"))
            parts.append({"functionCall": {"name": block.get("name"), "args": block.get("input") or {}}})
        elif kind == "tool_result":
            name = tool_names.get(str(block.get("tool_use_id")), str(block.get("tool_use_id")))
            parts.append({"functionResponse": {"name": name, "response": {"content": _text_of(block.get("content"))}}})
        elif kind in ("image", "document") and (block.get("source") or {}).get("type") == "base64":
            source = block["source"]
            parts.append({"inlineData": {"mimeType": source.get("media_type"), "data": source.get("data")}})
    return parts or [{"text": ""}]


def count_request(call: Mapping[str, Any]) -> dict[str, Any]:
    """countTokens' body for the messages, system and tools of a count call (pure)."""
    tool_names: dict[str, str] = {}
    contents = []
    for message in call["messages"]:
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        contents.append({"role": "model" if message.get("role") == "assistant" else "user",
                         "parts": _parts(blocks, tool_names)})
    request: dict[str, Any] = {"model": "models/" + str(call["model"]).partition("/")[2], "contents": contents}
    if call.get("system"):
        request["systemInstruction"] = {"parts": [{"text": _text_of(call["system"])}]}
    if call.get("tools"):
        request["tools"] = [{"functionDeclarations": [
            {"name": tool.get("name"), "description": tool.get("description", ""),
             "parameters": gemini_schema(tool.get("input_schema") or {})} for tool in call["tools"]]}]
    return {"generateContentRequest": request}


class Gemini(Family):
    type = "gemini"
    required = ("api_key",)
    optional = ()

    def unsendable(self, body: Mapping[str, Any], model) -> str | None:
        return lost_content.lost_in_translation(body)

    def status_of(self, exc: BaseException) -> int | None:
        """Google's UNAVAILABLE (503) is the model overloaded: Anthropic's 529, which clients retry."""
        return 529 if getattr(exc, "status_code", None) == 503 else None

    async def count_tokens(self, call: dict[str, Any]) -> tuple[int, str]:
        model = str(call["model"]).partition("/")[2]
        url = f"{(call.get('api_base') or DEFAULT_API_BASE).rstrip('/')}/models/{model}:countTokens"
        http = anthropic_api.client()
        request = http.build_request("POST", url, content=json.dumps(count_request(call)).encode(),
                                     headers={"x-goog-api-key": call["api_key"], "content-type": "application/json"},
                                     timeout=call.get("timeout", 30))
        response = await http.send(request, stream=True)
        if response.status_code >= 300:
            await anthropic_api.fail_with(response)
        answer = await anthropic_api.json_answer(response)
        if not isinstance(answer.get("totalTokens"), int):
            raise GatewayError(502, "Gemini's token count is not a number.", error_type="api_error")
        return answer["totalTokens"], "gemini_count_tokens"
