"""The caller's body, rebuilt from an allow-list into litellm's call arguments.

Nothing the caller sends can choose where the call goes or which credential
it carries: the model's provider supplies `api_key` and `api_base`; body
fields such as `api_base`, `base_url`, `api_key` or `custom_llm_provider` are
never read; `metadata` contributes only `user_id`; caller headers are
checked against a deny-list of credentials and routing headers.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from .errors import GatewayError
from .history import adapt_messages
from .providers import Model

# Body fields that go upstream as they are (the spec's fields minus ours).
PASSTHROUGH_FIELDS = ("temperature", "top_p", "top_k", "stop_sequences", "tools", "tool_choice", "thinking")
# litellm forwards these to OpenAI-compatible servers untranslated (top_k) or sends the
# call to another API (thinking goes to /responses): they only reach Anthropic models.
ANTHROPIC_ONLY_FIELDS = frozenset({"top_k", "thinking"})

# Header names a caller may never set upstream: credentials, routing, framing.
_FORBIDDEN_HEADERS = {
    "authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "host",
    "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer",
    "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded",
    "openai-organization", "openai-project", "anthropic-version",
}
_CREDENTIAL_HINT = re.compile(r"(auth|key|token|secret|credential|password|cookie)", re.I)
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_header(name: str, value: str, *, source: str) -> None:
    """Refuse header names or values that could split a request or inject a header."""
    if not _HEADER_NAME.match(name) or _CONTROL.search(value):
        raise GatewayError(400, f"{source}: header {name!r} has characters not allowed in HTTP headers.")


def caller_headers(extra_headers: Mapping[str, str] | None) -> dict[str, str]:
    """The body's `extra_headers`, minus nothing: a forbidden one is an error, not a silent drop."""
    headers: dict[str, str] = {}
    for name, value in (extra_headers or {}).items():
        check_header(name, value, source="extra_headers")
        lowered = name.lower()
        if lowered in _FORBIDDEN_HEADERS or lowered.startswith(("x-amz-", "x-amzn-")) or _CREDENTIAL_HINT.search(lowered):
            raise GatewayError(400, f"extra_headers: {name!r} may not be set by the caller.")
        headers[lowered] = value
    return headers


def split_system(messages: list[dict], system: Any) -> tuple[list[dict], Any]:
    """Move `system`-role messages (the seed allows them, Anthropic does not) into `system`, in order."""
    moved = [m for m in messages if m.get("role") == "system"]
    if not moved:
        return messages, system
    blocks: list[dict] = []
    if isinstance(system, str) and system:
        blocks.append({"type": "text", "text": system})
    elif isinstance(system, list):
        blocks.extend(system)
    for message in moved:
        content = message.get("content")
        if isinstance(content, str):
            blocks.append({"type": "text", "text": content})
        else:
            blocks.extend(block for block in content if block.get("type") == "text")
    return [m for m in messages if m.get("role") != "system"], blocks


def _connection(provider) -> dict[str, Any]:
    """Credential and endpoint: always from the providers secret (as its family reads it),
    never from the caller."""
    return provider.family.connection(provider)


def build_count_call(body: Mapping[str, Any], model: Model) -> dict[str, Any]:
    """litellm.acount_tokens(**kwargs): the provider's own counting where it has one."""
    messages, system = split_system(body["messages"], body.get("system"))
    messages = adapt_messages(messages, anthropic=model.speaks_anthropic)
    kwargs: dict[str, Any] = {"model": model.litellm_model, "messages": messages, **_connection(model.provider)}
    if system:
        kwargs["system"] = system
    if body.get("tools"):
        kwargs["tools"] = body["tools"]
    return kwargs


def build_call(
    body: Mapping[str, Any],
    model: Model,
    *,
    anthropic_beta: str | None,
    timeout: float,
) -> dict[str, Any]:
    """litellm.anthropic.messages.acreate(**kwargs) for one attempt on `model`."""
    provider = model.provider
    messages, system = split_system(body["messages"], body.get("system"))
    messages = adapt_messages(messages, anthropic=model.speaks_anthropic)
    if not messages:
        raise GatewayError(400, "messages: at least one user or assistant message is required.")
    kwargs: dict[str, Any] = {
        "model": model.litellm_model,
        "messages": messages,
        "max_tokens": body.get("max_tokens") or 1024,
        "stream": bool(body.get("stream")),
        "timeout": timeout,
        "max_retries": 0,
        **_connection(provider),
    }
    if system:
        kwargs["system"] = system
    for name in PASSTHROUGH_FIELDS:
        if body.get(name) is not None and (model.speaks_anthropic or name not in ANTHROPIC_ONLY_FIELDS):
            kwargs[name] = body[name]
    user_id = (body.get("metadata") or {}).get("user_id")
    if isinstance(user_id, str) and user_id:
        kwargs["metadata"] = {"user_id": user_id}
    headers = caller_headers(body.get("extra_headers"))
    if anthropic_beta and model.speaks_anthropic:
        check_header("anthropic-beta", anthropic_beta, source="request headers")
        headers["anthropic-beta"] = anthropic_beta
    if headers:
        kwargs["extra_headers"] = headers
    return kwargs
