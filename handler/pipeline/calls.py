"""One upstream attempt's arguments, built from the caller's body.

Anthropic-type providers get the caller's body as sent, less the gateway's
own fields: Anthropic adds request fields every month (context_management,
output_config, container, ...), and an allow-list silently dropped each new
one while the matching beta header went through. Other providers get the
fields their route translates (the gateway's Chat Completions, or litellm's).

Nothing the caller sends can choose where the call goes or which credential
it carries: the model's provider supplies `api_key` and `api_base` outside
the body; connection fields in the body are refused before this point
(protocol/content.py); `metadata` keeps only `user_id`; caller headers are checked
against a deny-list of credentials and routing headers.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from ..protocol.errors import GatewayError
from ..providers.catalogue import Model
from ..translation.chat_completions import PARALLEL_TOOL_USE
from ..translation.text_forms import rendered
from .adaptation import (
    GATEWAY_FIELDS,
    LITELLM_AS_IS,
    Adaptation,
    adapt,
    is_server_tool,
    structured_format,
)
from .history import adapt_messages

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
    if not value.isascii():  # HTTP clients send header values as ASCII: anything else fails upstream
        raise GatewayError(400, f"{source}: header {name!r} has a non-ASCII value; HTTP header values are ASCII.")


def caller_headers(extra_headers: Mapping[str, str] | None) -> dict[str, str]:
    """The body's `extra_headers`, minus nothing: a forbidden one is an error, not a silent drop."""
    headers: dict[str, str] = {}
    for name, value in (extra_headers or {}).items():
        check_header(name, value, source="extra_headers")
        lowered = name.lower()
        if lowered in _FORBIDDEN_HEADERS or lowered.startswith(("x-amz-", "x-amzn-", "x-goog-")) or _CREDENTIAL_HINT.search(lowered):
            raise GatewayError(400, f"extra_headers: {name!r} may not be set by the caller.")
        headers[lowered] = value
    return headers


def split_system(messages: list[dict], system: Any) -> tuple[list[dict], Any]:
    """Move `system`-role messages into `system`, in order: for a route that has no place for
    them in the conversation (adaptation lists each as moved)."""
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
    """litellm.acount_tokens(**kwargs): the provider's own counting where it has one; system-role
    messages where the caller put them for an Anthropic-type model, as its call sends them."""
    messages, system = body["messages"], body.get("system")
    if not model.speaks_anthropic:
        messages, system = split_system(messages, system)
    messages = adapt_messages(messages, anthropic=model.speaks_anthropic)
    if not model.speaks_anthropic:
        messages = rendered(messages)
    kwargs: dict[str, Any] = {"model": model.litellm_model, "messages": messages, **_connection(model.provider)}
    if system:
        kwargs["system"] = system
    if body.get("tools"):
        kwargs["tools"] = body["tools"]
    return kwargs


def _user_metadata(metadata: Any) -> dict[str, str] | None:
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    return {"user_id": user_id} if isinstance(user_id, str) and user_id else None


def anthropic_body(body: Mapping[str, Any], model: Model, adaptation: Adaptation) -> dict[str, Any]:
    """The caller's body for an Anthropic-type provider: every field and block, known or not,
    except the gateway's own, unset (null) ones, metadata beyond `user_id` and the fields the
    target's schema refuses (family.refused_fields, listed as dropped); the history adapted
    to Anthropic (pipeline/history.py). System-role messages stay where the caller put them,
    with or without the `mid-conversation-system-*` beta: the provider judges them, and moving
    one changes the system prompt turn by turn, which misses the prompt cache every turn."""
    sent = {name: value for name, value in body.items()
            if name not in GATEWAY_FIELDS and name not in adaptation.dropped and value is not None}
    sent["messages"] = adapt_messages(body["messages"], anthropic=True)
    if adaptation.upstream_fallbacks is not None:
        sent["fallbacks"] = adaptation.upstream_fallbacks
    if not any(message.get("role") != "system" for message in sent["messages"]):
        raise GatewayError(400, "messages: at least one user or assistant message is required.")
    sent["model"] = model.name
    sent["max_tokens"] = adaptation.max_tokens
    if adaptation.budget_tokens is not None:
        sent["thinking"] = {**body["thinking"], "budget_tokens": adaptation.budget_tokens}
    sent["stream"] = bool(body.get("stream"))
    if "metadata" in sent:
        metadata = _user_metadata(sent.pop("metadata"))
        if metadata:
            sent["metadata"] = metadata
    return sent


def translated_arguments(body: Mapping[str, Any], adaptation: Adaptation) -> dict[str, Any]:
    """The request fields of a call to a provider that does not speak Anthropic's API, in
    Anthropic's shape: what has an equivalent there (pipeline/adaptation.py says which). The route
    translates them: translation/chat_completions.py, or litellm.anthropic.messages.acreate.
    System-role messages stay in place where the route has a place for them (Chat Completions
    does), else they join the system prompt and adaptation lists them as moved."""
    messages, system = body["messages"], body.get("system")
    if adaptation.moved:
        messages, system = split_system(messages, system)
    messages = rendered(adapt_messages(messages, anthropic=False))
    if not any(message.get("role") != "system" for message in messages):
        raise GatewayError(400, "messages: at least one user or assistant message is required.")
    arguments: dict[str, Any] = {"messages": messages, "max_tokens": adaptation.max_tokens}
    if system:
        arguments["system"] = system
    for name in LITELLM_AS_IS:  # not top_k (litellm forwards it untranslated) nor thinking (-> /responses)
        if body.get(name) is not None and name not in adaptation.dropped:
            arguments[name] = body[name]
    if adaptation.stop_limit is not None:
        arguments["stop_sequences"] = body["stop_sequences"][:adaptation.stop_limit]
    if PARALLEL_TOOL_USE in adaptation.dropped:
        arguments["tool_choice"] = {k: v for k, v in body["tool_choice"].items() if k != "disable_parallel_tool_use"}
    if adaptation.dropped_tools:
        arguments["tools"] = [tool for tool in body["tools"]
                              if not (is_server_tool(tool) and str(tool.get("name") or tool.get("type"))
                                      in adaptation.dropped_tools)]
        if not arguments["tools"]:
            del arguments["tools"]
            arguments.pop("tool_choice", None)
    metadata = _user_metadata(body.get("metadata"))
    if metadata:
        arguments["metadata"] = metadata
    if adaptation.keeps_format:
        arguments["output_config"] = {"format": structured_format(body)}
    if adaptation.reasoning_effort:
        arguments["reasoning_effort"] = adaptation.reasoning_effort
    return arguments


def build_call(
    body: Mapping[str, Any],
    model: Model,
    *,
    anthropic_beta: str | None,
    timeout: float,
    adaptation: Adaptation | None = None,
) -> dict[str, Any]:
    """One attempt on `model`: for an Anthropic-type provider the connection plus the `body`
    to post (anthropic_api.send); else the connection, the translated arguments and what the
    model needs besides (family.model_arguments), for its family's route (openai_api.send,
    or litellm.anthropic.messages.acreate(**kwargs)). `adaptation` is adapt(body, model)
    when the caller has it already."""
    provider = model.provider
    call: dict[str, Any] = {
        "model": model.litellm_model,
        "stream": bool(body.get("stream")),
        "timeout": timeout,
        "max_retries": 0,
        **_connection(provider),
    }
    headers = caller_headers(body.get("extra_headers"))
    if anthropic_beta and model.speaks_anthropic:
        check_header("anthropic-beta", anthropic_beta, source="request headers")
        headers["anthropic-beta"] = anthropic_beta
    if headers:
        call["extra_headers"] = headers
    adaptation = adaptation or adapt(body, model, anthropic_beta)
    if model.speaks_anthropic:
        call["body"] = anthropic_body(body, model, adaptation)
    else:
        call.update(translated_arguments(body, adaptation), **provider.family.model_arguments(model))
    return call
