"""Claude on Google Vertex AI, called directly: rawPredict / streamRawPredict.

Vertex serves Anthropic's Messages API under its own URL
(`…/publishers/anthropic/models/{model}:rawPredict`, or `:streamRawPredict`
for a stream), with the model in the URL and `anthropic_version:
vertex-2023-10-16` in the body; the rest of the body is the caller's, as on
the direct Anthropic route, and the stream is Anthropic's own SSE, relayed.
The credential is an OAuth token (providers/google_oauth.py). Vertex's own failures
come as Google's error JSON (`{"error": {"code", "message", "status"}}`),
Claude's as Anthropic's: both are put in Anthropic's terms here.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Mapping
from urllib.parse import quote

import httpx

from ..protocol.errors import GatewayError
from . import anthropic_api, bedrock_api, google_oauth
from .anthropic_api import UpstreamStatus
from .answer import Answer

VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
# Vertex takes Anthropic's Messages body with two differences (Anthropic's "Vertex AI API" page:
# no `model`, `anthropic_version: vertex-2023-10-16`), and judges the rest as Anthropic does. Known
# to be refused beyond that: `diagnostics` (the cache-diagnosis beta, which Vertex does not take),
# 400 "diagnostics: Extra inputs are not permitted" (measured: anthropics/claude-code#82539).
REFUSED_FIELDS = frozenset({"diagnostics"})
# Google's canonical error codes, as a caller of Anthropic's API should see them.
GOOGLE_STATUS = {"RESOURCE_EXHAUSTED": 429, "UNAVAILABLE": 529, "INVALID_ARGUMENT": 400,
                 "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400, "NOT_FOUND": 404, "PERMISSION_DENIED": 403,
                 "UNAUTHENTICATED": 401, "DEADLINE_EXCEEDED": 504, "INTERNAL": 500}


def refused_fields(body: Mapping[str, Any]) -> list[str]:
    """The body's top-level fields Vertex refuses for Claude (REFUSED_FIELDS): left out and named."""
    return [name for name, value in body.items() if name in REFUSED_FIELDS and value is not None]


def endpoint(call: Mapping[str, Any]) -> str:
    """The entry's api_base, else the location's regional host (`global` has none)."""
    if call.get("api_base"):
        return str(call["api_base"]).rstrip("/")
    location = call["vertex_location"]
    host = "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
    return f"https://{host}"


def project_path(call: Mapping[str, Any]) -> str:
    return f"/v1/projects/{quote(call['vertex_project'], safe='')}/locations/{quote(call['vertex_location'], safe='')}"


def publisher_url(call: Mapping[str, Any], publisher: str) -> str:
    return f"{endpoint(call)}{project_path(call)}/publishers/{publisher}/models"


def request_parts(call: Mapping[str, Any], token: str) -> tuple[str, dict[str, str], bytes]:
    """URL, headers and body of one rawPredict call (pure)."""
    body = {name: value for name, value in call["body"].items() if name != "model"}
    body["anthropic_version"] = VERTEX_ANTHROPIC_VERSION
    model = str(call["model"]).partition("/")[2]
    action = "streamRawPredict" if body.get("stream") else "rawPredict"
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json",
               "accept": "text/event-stream" if body.get("stream") else "application/json"}
    betas = bedrock_api.provider_betas((call.get("extra_headers") or {}).get("anthropic-beta") or "", "vertex_ai")
    if betas:
        headers["anthropic-beta"] = ",".join(betas)
    return f"{publisher_url(call, 'anthropic')}/{quote(model, safe='@')}:{action}", headers, json.dumps(body).encode()


def google_error(raw: bytes, status: int, retry_after: str | None) -> UpstreamStatus:
    """Google's error JSON (an object, or a list of one), or Anthropic's, with the status a
    caller should see and the provider's own words."""
    try:
        document = json.loads(raw)
    except ValueError:
        document = None
    if isinstance(document, list) and document:
        document = document[0]
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        text = raw.decode("utf-8", "replace").strip()[:2000] or f"HTTP {status}"
        return UpstreamStatus(status, text, retry_after)
    named = GOOGLE_STATUS.get(str(error.get("status") or ""))
    if error.get("type") == "overloaded_error":
        named = 529
    return UpstreamStatus(named or status, str(error.get("message") or f"HTTP {status}"), retry_after)


async def post(call: Mapping[str, Any], url: str, headers: dict[str, str], data: bytes
               ) -> Answer | httpx.Response:
    """One POST over the pooled client (anthropic_api.post); a failure raised in Anthropic's
    terms (a refused token is forgotten)."""
    try:
        return await anthropic_api.post(url, headers, data, timeout=call.get("timeout"))  # a bounded error body
    except UpstreamStatus as failure:
        if failure.status_code == 401:
            google_oauth.forget_token(call["vertex_credentials"])
        raise google_error(failure.message.encode(), failure.status_code, failure.retry_after) from None


async def count_tokens(call: Mapping[str, Any]) -> int:
    """Vertex's count-tokens for Claude, on the Messages body of a count call."""
    token = await google_oauth.access_token(call["vertex_credentials"], timeout=call.get("timeout") or 30)
    body: dict[str, Any] = {"anthropic_version": VERTEX_ANTHROPIC_VERSION,
                            "model": str(call["model"]).partition("/")[2], "messages": call["messages"]}
    for name in ("system", "tools"):
        if call.get(name):
            body[name] = call[name]
    response = await post(call, f"{publisher_url(call, 'anthropic')}/count-tokens:rawPredict",
                          {"authorization": f"Bearer {token}", "content-type": "application/json"},
                          json.dumps(body).encode())
    answer = await anthropic_api.json_answer(response)
    if not isinstance(answer.get("input_tokens"), int):
        raise GatewayError(502, "Vertex AI's token count is not a number.", error_type="api_error")
    return answer["input_tokens"]


async def send(call: dict[str, Any]) -> dict[str, Any] | AsyncIterator[bytes]:
    """The answer (Anthropic's message), or for a stream Anthropic's SSE bytes."""
    token = await google_oauth.access_token(call["vertex_credentials"], timeout=call.get("timeout") or 30)
    call["api_key"] = token  # redacted from any relayed message, as a key is
    url, headers, data = request_parts(call, token)
    response = await post(call, url, headers, data)
    if call["body"].get("stream") and response.headers.get("content-type", "").startswith("text/event-stream"):
        return anthropic_api._chunks(response)
    return await anthropic_api.json_answer(response)
