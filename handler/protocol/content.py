"""Checks on what a body carries beyond the spec's shapes, before anything goes upstream.

The spec types a content block's `type` as any string and allows extra
fields everywhere. A block type the gateway does not know goes on as sent:
Anthropic adds block types every month (`tool_reference`, `compaction`,
`tool_search_tool_result`, ...) and an Anthropic-type provider judges them
itself; a translating route decides what it can carry
(translation/lost_content.py). What the gateway reads it still judges: a
content item that is not an object with a string `type`, images that are not
valid base64 of an accepted media type, and fields that would steer a
connection (api_base, api_key, ...) are refused with a 400 that names them,
so no upstream call is spent on them.

A body is JSON parsed into dicts, so an object is told by `isinstance(value, dict)`: against
typing's `Mapping` each test cost about 20 times as much (0.38 µs against 0.02), and a body's
blocks took a few dozen of them.
"""

from __future__ import annotations

import binascii
from typing import Any, Iterable, Mapping

from .errors import GatewayError

# The request-side content block types the gateway knows (reads, meters, translates);
# any other type is passed on, not refused. A `fallback` block (a server-side fallback's
# marker, sent back with its turn) is no part of the prompt: translated routes leave it out.
KNOWN_BLOCK_TYPES = frozenset({
    "text", "image", "document", "search_result", "tool_use", "tool_result", "thinking",
    "redacted_thinking", "server_tool_use", "web_search_tool_result", "web_fetch_tool_result",
    "code_execution_tool_result", "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result", "mcp_tool_use", "mcp_tool_result", "container_upload",
    "fallback",
})
TOOL_CHOICE_TYPES = frozenset({"auto", "any", "tool", "none"})
IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
# Names litellm would read as connection settings if they ever reached it.
CONNECTION_FIELDS = frozenset({
    "api_base", "base_url", "api_key", "api_version", "custom_llm_provider", "litellm_params",
    "organization", "deployment_id", "headers", "extra_body", "mock_response", "client",
    "use_litellm_proxy", "model_info", "provider_specific_header", "aws_access_key_id",
    "aws_secret_access_key", "aws_session_token", "aws_region_name", "vertex_credentials",
    "vertex_project", "vertex_location", "azure_ad_token", "proxy_base_url",
})


def _connection_fields(document: Mapping[str, Any], where: str) -> None:
    found = sorted(CONNECTION_FIELDS & set(document))
    if found:
        raise GatewayError(400, f"{where}: {', '.join(found)} may not be set by the caller; "
                                "the gateway chooses the provider, endpoint and credentials.")


def content_blocks(messages: Iterable[Any]) -> Iterable[tuple[str, Any]]:
    """Every content block with where it is, a tool_result's content items included."""
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for j, block in enumerate(content):
            yield f"messages.{i}.content.{j}", block
            nested = block.get("content") if isinstance(block, dict) else None
            if isinstance(block, dict) and block.get("type") == "tool_result" and isinstance(nested, list):
                for k, inner in enumerate(nested):
                    yield f"messages.{i}.content.{j}.content.{k}", inner


def _check_image(where: str, source: Any) -> None:
    if not isinstance(source, dict):
        raise GatewayError(400, f"{where}: an image needs a source.")
    if source.get("type") != "base64":
        return  # url and file sources are the provider's to fetch
    if source.get("media_type") not in IMAGE_MEDIA_TYPES:
        raise GatewayError(400, f"{where}: media_type must be one of {', '.join(sorted(IMAGE_MEDIA_TYPES))}.")
    data = source.get("data")
    try:
        if not isinstance(data, str) or not data:
            raise ValueError
        binascii.a2b_base64(data.encode("ascii"), strict_mode=True)
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise GatewayError(400, f"{where}: image data is not valid base64.") from None


def _check_tool_choice(choice: Any) -> None:
    """The spec types it as any object; a provider's translation fails on one without a known type."""
    if choice is None:
        return
    if choice.get("type") not in TOOL_CHOICE_TYPES:
        raise GatewayError(400, f"tool_choice.type must be one of {', '.join(sorted(TOOL_CHOICE_TYPES))}.")
    if choice["type"] == "tool" and not (isinstance(choice.get("name"), str) and choice["name"]):
        raise GatewayError(400, "tool_choice of type 'tool' needs the tool's name.")


def check_body(document: Mapping[str, Any]) -> None:
    """Raise 400 for anything the schema admits but the gateway must not forward."""
    _connection_fields(document, "body")
    metadata = document.get("metadata")
    if isinstance(metadata, dict):
        _connection_fields(metadata, "metadata")
    _check_tool_choice(document.get("tool_choice"))
    for where, block in content_blocks(document.get("messages") or []):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise GatewayError(400, f"{where}: a content block must be an object with a string 'type'.")
        kind = block["type"]
        if kind == "image":
            _check_image(where, block.get("source"))
