"""Claude on Amazon Bedrock, called directly: InvokeModel(WithResponseStream).

Why not litellm for these models: its streamed Bedrock-Claude route imports
soundfile (so numpy) and backoff (FIELD-NOTES), 57 MB unpacked and 16 MB
zipped for linux/arm64 (measured, see README: Provider families), which would take
the Lambda package past its budget. And InvokeModel takes Anthropic's own
body: every field of it that InvokeModel's schema takes goes on as sent
(INVOKE_MODEL_FIELDS, CONTEXT_EDITS; the gateway leaves out and names the
others). botocore, already in the package, does the AWS parts: it signs
with SigV4 from the default credential chain (on Lambda, the function's
role: no key in the providers secret) and parses the stream's
binary event-stream framing, whose chunks each carry one of Anthropic's own
SSE events (base64), relayed as SSE.
"""

from __future__ import annotations

import base64
import functools
import json
import threading
from typing import Any, AsyncIterator, Mapping
from urllib.parse import quote

import httpx
from botocore.eventstream import EventStreamBuffer, ParserError
from botocore.session import Session

from ..sigv4 import Signer
from ..protocol import sse
from ..protocol.errors import GatewayError
from . import anthropic_api, price_map
from .anthropic_api import UpstreamStatus
from .answer import Answer

BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"
SERVICE = "bedrock"
# The top-level keys InvokeModel takes in a Claude body; its schema refuses any other with a 400
# ValidationException, "Malformed input request: #: extraneous key [cache_control] is not
# permitted" (FIELD-NOTES). AWS's Bedrock user guide, Anthropic Claude Messages API:
# "Request and Response" (model-parameters-anthropic-claude-messages-request-response.html) lists
# anthropic_version, anthropic_beta, max_tokens, system, messages, temperature, top_p, top_k,
# tools, tool_choice, stop_sequences; "Extended thinking" and "Adaptive thinking" add `thinking`,
# "Get validated JSON results from models" `output_config` (format, and effort under its beta),
# "Compaction" `context_management`; `metadata` is Anthropic's common shape, which litellm's
# Bedrock Invoke allow-list (BedrockInvokeAnthropicMessagesRequest) keeps as well. `model` and
# `stream` are said by the URL and the action, never the body.
INVOKE_MODEL_FIELDS = frozenset({
    "anthropic_version", "anthropic_beta", "max_tokens", "system", "messages", "temperature", "top_p",
    "top_k", "tools", "tool_choice", "stop_sequences", "thinking", "output_config", "context_management",
    "metadata"})
# The `context_management` edits InvokeModel takes for Claude: clear_tool_uses_20250919 (the user
# guide's "Tool use" page, under context-management-2025-06-27) and compact_20260112 ("Compaction").
# It refuses any other (Claude Code sends clear_thinking_20251015 on every call) with a 400,
# "context_management: Extra inputs are not permitted" (measured: litellm issue #27532).
CONTEXT_EDITS = frozenset({"clear_tool_uses_20250919", "compact_20260112"})
# A count call's keys that say how to reach Bedrock rather than what to ask Claude (a
# message call keeps the caller's body apart, under `body`: build_call).
CONNECTION_KEYS = frozenset({"model", "api_key", "api_base", "timeout", "max_retries", "extra_headers",
                             "aws_region_name", "stream", "body"})
# Bedrock names its failure in x-amzn-ErrorType (`Name:namespace`) and in a stream's
# exception frames (`:exception-type`, lowerCamelCase). What each means for a caller:
# ModelNotReadyException comes with a 429 but is the model loading, not a rate limit.
ERROR_STATUS = {
    "throttlingexception": 429, "servicequotaexceededexception": 429,
    "modelnotreadyexception": 529, "serviceunavailableexception": 529,
    "modeltimeoutexception": 504, "validationexception": 400,
    "accessdeniedexception": 403, "unrecognizedclientexception": 403,
    "resourcenotfoundexception": 404, "internalserverexception": 500,
    "modelstreamerrorexception": 500, "modelerrorexception": 500,
}

# litellm's record of the Anthropic betas each provider accepts, and their names there.
BETA_MAP_FILE = "anthropic_beta_headers_config.json"

_credentials_lock = threading.Lock()
_credentials: Any = None


def credentials():
    """The default chain's credentials (env, container/role endpoint, ...), resolved once:
    botocore refreshes role credentials itself before they expire."""
    global _credentials
    with _credentials_lock:
        if _credentials is None:
            _credentials = Session().get_credentials()
        if _credentials is None:
            raise GatewayError(502, "No AWS credentials for Bedrock: the function's role (or the "
                                    "environment) must provide them.", error_type="api_error")
        return _credentials


def forget_credentials() -> None:
    """A SnapStart restore: the snapshot's credentials may have expired or belong to init."""
    global _credentials
    with _credentials_lock:
        _credentials = None


@functools.cache
def _beta_names(provider: str) -> dict[str, str | None]:
    """A provider's column of litellm's beta map, read without importing litellm (as price_map
    reads the prices): a beta with no name there is one that provider does not take."""
    document = json.loads(price_map.bundled_path().with_name(BETA_MAP_FILE).read_bytes())
    return document.get(provider) or {}


def provider_betas(header: str, provider: str) -> list[str]:
    """The caller's betas that the provider (`bedrock`, `vertex_ai`) takes, by its names. It
    refuses a request with any other (`invalid beta flag`), and clients such as Claude Code
    send several on every call (claude-code-20250219, prompt-caching-scope-...): those are dropped."""
    names = _beta_names(provider)
    kept = (names.get(beta.strip()) for beta in header.split(","))
    return list(dict.fromkeys(name for name in kept if name))


def refused_betas(header: str, provider: str) -> list[str]:
    """The caller's betas the provider does not take, as the caller named them: left out of
    the call (provider_betas), so named in the response."""
    names = _beta_names(provider)
    given = (beta.strip() for beta in header.split(","))
    return list(dict.fromkeys(beta for beta in given if beta and not names.get(beta)))


def bedrock_betas(header: str) -> list[str]:
    return provider_betas(header, "bedrock")


def _edits(body: Mapping[str, Any]) -> list:
    management = body.get("context_management")
    edits = management.get("edits") if isinstance(management, dict) else None
    return edits if isinstance(edits, list) else []


def refused_fields(body: Mapping[str, Any]) -> list[str]:
    """What InvokeModel's schema refuses for Claude, left out of the call and named rather than
    a 400 for the caller: keys outside INVOKE_MODEL_FIELDS, edits outside CONTEXT_EDITS."""
    keys = [name for name, value in body.items()
            if value is not None and name not in INVOKE_MODEL_FIELDS and name not in ("model", "stream")]
    edits = [f"context_management.edits.{edit.get('type') if isinstance(edit, dict) else edit}"
             for edit in _edits(body) if not (isinstance(edit, dict) and edit.get("type") in CONTEXT_EDITS)]
    return keys + edits


def without_refused_edits(body: dict[str, Any]) -> dict[str, Any]:
    """The body with only the context_management edits InvokeModel takes (none left: no
    context_management); the gateway names those it leaves out (refused_fields)."""
    edits = _edits(body)
    kept = [edit for edit in edits if isinstance(edit, dict) and edit.get("type") in CONTEXT_EDITS]
    if len(kept) == len(edits):
        return body
    if not kept:
        return {name: value for name, value in body.items() if name != "context_management"}
    return {**body, "context_management": {**body["context_management"], "edits": kept}}


def endpoint(call: Mapping[str, Any]) -> str:
    return (call.get("api_base") or f"https://bedrock-runtime.{call['aws_region_name']}.amazonaws.com").rstrip("/")


def request_parts(call: Mapping[str, Any]) -> tuple[str, dict[str, str], bytes]:
    """URL, headers and body of one InvokeModel call (unsigned; pure)."""
    fields = call["body"] if "body" in call else call
    # The model is named in the URL and streaming by the action: neither goes in the body.
    body = without_refused_edits({name: value for name, value in fields.items() if name not in CONNECTION_KEYS})
    body["anthropic_version"] = BEDROCK_ANTHROPIC_VERSION
    betas = bedrock_betas((call.get("extra_headers") or {}).get("anthropic-beta") or "")
    if betas:
        body["anthropic_beta"] = betas
    url = model_url(call, "invoke-with-response-stream" if call.get("stream") else "invoke")
    # InvokeModel takes the answer's type in Accept, the stream call in X-Amzn-Bedrock-Accept.
    accept = "x-amzn-bedrock-accept" if call.get("stream") else "accept"
    headers = {"content-type": "application/json", accept: "application/json"}
    return url, headers, json.dumps(body).encode()


@functools.lru_cache(maxsize=64)
def _signer(url: str, region: str) -> Signer:
    """One per model URL (a deployment calls a handful): its path and host canonicalised once."""
    return Signer(url, region, SERVICE)


def signed_headers(url: str, headers: dict[str, str], data: bytes, region: str) -> dict[str, str]:
    """The headers with SigV4's, as botocore's `SigV4Auth.add_auth` adds them (sigv4.py)."""
    return _signer(url, region).signed(headers, data, credentials().get_frozen_credentials())


def error_of(name: str | None, message: str, status: int, retry_after: str | None = None) -> UpstreamStatus:
    """Bedrock's named error with the status a caller should see for it."""
    kind = (name or "").split(":", 1)[0].strip().lower()
    return UpstreamStatus(ERROR_STATUS.get(kind, status), message, retry_after)


def message_of(raw: bytes, status: int) -> str:
    try:
        document = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip()[:2000] or f"HTTP {status}"
    if isinstance(document, dict):
        return str(document.get("message") or document.get("Message") or document)
    return str(document)


async def fail_with(response: Answer | httpx.Response) -> None:
    try:
        raw = await response.aread()
    finally:  # a body cut short (or the request cancelled) still gives its connection back or closes it
        await response.aclose()
    raise error_of(response.headers.get("x-amzn-errortype"), message_of(raw, response.status_code),
                   response.status_code, response.headers.get("retry-after"))


def raise_if_exception(message) -> None:
    """An event-stream exception frame (`:message-type` exception or error) raised as Bedrock's
    named error, in the status a caller should see."""
    headers = message.headers
    if headers.get(":message-type") != "event":
        name = headers.get(":exception-type") or headers.get(":error-code")
        raise error_of(name, message_of(message.payload, 500), 500)


def sse_of(message) -> bytes:
    """One event-stream message as the SSE event it carries (or its exception raised)."""
    raise_if_exception(message)
    if message.headers.get(":event-type") != "chunk":
        return b""
    event = json.loads(base64.b64decode(json.loads(message.payload)["bytes"]))
    # Bedrock adds its own invocation metrics to message_stop: not Anthropic's grammar.
    event.pop("amazon-bedrock-invocationMetrics", None)
    return sse.encode(str(event.get("type", "message")), event)


async def _events(response: Answer | httpx.Response) -> AsyncIterator[bytes]:
    decoder = EventStreamBuffer()
    try:
        async for chunk in response.aiter_raw():
            decoder.add_data(chunk)
            try:
                for message in decoder:
                    frame = sse_of(message)
                    if frame:
                        yield frame
            except (ParserError, ValueError, KeyError, TypeError) as exc:
                raise GatewayError(502, f"Bedrock's stream is not well-formed: {exc}", error_type="api_error") from None
    finally:
        await response.aclose()


def model_url(call: Mapping[str, Any], action: str) -> str:
    """`{endpoint}/model/{modelId}/{action}`: the model id is one path segment, escaped."""
    return f"{endpoint(call)}/model/{quote(str(call['model']).partition('/')[2], safe='')}/{action}"


async def signed_post(call: Mapping[str, Any], url: str, headers: dict[str, str], data: bytes
                      ) -> Answer | httpx.Response:
    """One SigV4-signed POST over the pooled client (anthropic_api.post), its body not yet read;
    Bedrock's named failure raised (fail_with)."""
    headers = signed_headers(url, headers, data, call["aws_region_name"])
    return await anthropic_api.post(url, headers, data, timeout=call.get("timeout"), fail=fail_with)


async def counted(call: Mapping[str, Any], url: str, data: bytes) -> int:
    """CountTokens' answer: the input tokens Bedrock counted."""
    response = await signed_post(call, url, {"content-type": "application/json", "accept": "application/json"}, data)
    answer = await anthropic_api.json_answer(response)
    if not isinstance(answer.get("inputTokens"), int):
        raise GatewayError(502, "Bedrock's token count is not a number.", error_type="api_error")
    return answer["inputTokens"]


async def count_tokens(call: Mapping[str, Any]) -> int:
    """Bedrock's CountTokens on the InvokeModel body this call would send."""
    url, headers, data = request_parts({"max_tokens": 1, **call, "stream": False})
    url = url.removesuffix("/invoke") + "/count-tokens"
    # CountTokensInput.invokeModel.body is a blob (botocore's bedrock-runtime model: shape Body),
    # which AWS's JSON protocol carries base64-encoded inside the JSON document.
    data = json.dumps({"input": {"invokeModel": {"body": base64.b64encode(data).decode()}}}).encode()
    return await counted(call, url, data)


async def send(call: Mapping[str, Any]) -> dict[str, Any] | AsyncIterator[bytes]:
    """The answer (Anthropic's message), or for a stream Anthropic's SSE bytes."""
    url, headers, data = request_parts(call)
    response = await signed_post(call, url, headers, data)
    if call.get("stream"):
        return _events(response)
    return await anthropic_api.json_answer(response)
