"""Google Vertex AI: Claude and Gemini, with a service account's JSON key.

The key is traded for an OAuth token in the gateway (providers/google_oauth.py):
litellm's Vertex route does that with google-auth, whose `cryptography`
would take the Lambda package past its zip budget (README, Provider
families), and litellm cannot be handed a token instead (its Vertex route
imports google-auth on every call, even with a token cached). So:

- Claude is called directly, rawPredict with Anthropic's body (providers/vertex_api.py),
  as on Bedrock: every field the caller sent goes on.
- Every other model (Gemini; partner models such as `meta/llama-…`) goes to
  Vertex's OpenAI-compatible endpoint (`…/endpoints/openapi/chat/completions`,
  model `google/<name>`) in Chat Completions (providers/openai_api.py), with the token
  as its bearer key.
Token counts: Vertex's own count-tokens for Claude, countTokens for Gemini,
a local tokenizer for partner models.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from ...protocol.errors import GatewayError
from ...translation import chat_completions
from .. import anthropic_api, bedrock_api, google_oauth, openai_api, vertex_api
from .base import Family, litellm_route
from .gemini import count_request


def is_claude(model_name: str) -> bool:
    return model_name.startswith("claude")


def openai_model(model_name: str) -> str:
    """The name Vertex's OpenAI-compatible endpoint knows: `publisher/model` (Gemini's is google)."""
    return model_name if "/" in model_name else f"google/{model_name}"


class VertexAI(Family):
    type = "vertex_ai"
    required = ("vertex_project", "vertex_location", "credentials")
    optional = ()
    credentials = ("credentials",)

    def problems(self, conf: Mapping[str, Any]) -> list[str]:
        found = super().problems(conf)
        if conf.get("credentials"):
            try:
                account = google_oauth.account_of(conf["credentials"])
            except (ValueError, TypeError):  # UnusableKey is a ValueError
                found.append("credentials must be a service account's JSON key (with client_email and private_key)")
                return found
            try:
                google_oauth.parse_private_key(account["private_key"])
            except google_oauth.UnusableKey as exc:
                found.append(f"credentials: the private_key cannot sign the token request: {exc}")
        return found

    def speaks_anthropic(self, model_name: str) -> bool:
        return is_claude(model_name)

    def refused_fields(self, model, body: Mapping[str, Any]) -> list[str]:
        """Claude: what Vertex is known to refuse (vertex_api.REFUSED_FIELDS); the others go in
        Chat Completions, which carries what it translates (adaptation.py)."""
        return vertex_api.refused_fields(body) if is_claude(model.name) else []

    def refused_betas(self, model, anthropic_beta: str) -> list[str]:
        return bedrock_api.refused_betas(anthropic_beta, "vertex_ai") if is_claude(model.name) else []

    def unsendable(self, body: Mapping[str, Any], model) -> str | None:
        """Claude takes Anthropic's body as sent; the others go in Chat Completions."""
        return None if is_claude(model.name) else chat_completions.unsendable(body)

    def takes_web_search(self, model) -> bool:
        return False  # Gemini's search grounding is not on Vertex's OpenAI-compatible endpoint

    def connection(self, provider) -> dict[str, Any]:
        key = provider.settings["credentials"]
        connection = {"vertex_project": provider.settings["vertex_project"],
                      "vertex_location": provider.settings["vertex_location"],
                      "vertex_credentials": json.loads(key) if isinstance(key, str) else dict(key)}
        if provider.api_base:
            connection["api_base"] = provider.api_base
        return connection

    def status_of(self, exc: BaseException) -> int | None:
        """Google's UNAVAILABLE (503) is the model overloaded: Anthropic's 529, which clients retry."""
        return 529 if getattr(exc, "status_code", None) == 503 else None

    async def send(self, call: dict[str, Any]) -> Any:
        if is_claude(str(call["model"]).partition("/")[2]):
            return await vertex_api.send(call)
        token = await google_oauth.access_token(call["vertex_credentials"], timeout=call.get("timeout") or 30)
        call["api_key"] = token  # redacted from any relayed message, as a key is
        base = vertex_api.endpoint(call) + vertex_api.project_path(call) + "/endpoints/openapi"
        openai_call = {**call, "model": "openai/" + openai_model(str(call["model"]).partition("/")[2])}
        try:
            return await openai_api.send(openai_call, url=openai_api.chat_url(base),
                                         credential={"authorization": f"Bearer {token}"})
        except Exception as exc:
            if getattr(exc, "status_code", None) == 401:
                google_oauth.forget_token(call["vertex_credentials"])
            raise

    async def count_tokens(self, call: dict[str, Any]) -> tuple[int, str]:
        model = str(call["model"]).partition("/")[2]
        if is_claude(model):
            return await vertex_api.count_tokens(call), "vertex_count_tokens"
        if "/" in model:  # a partner model (meta/llama-…): Google's countTokens is Gemini's
            return litellm_route().count_locally(call), "local_tokenizer"
        token = await google_oauth.access_token(call["vertex_credentials"], timeout=call.get("timeout") or 30)
        request = count_request(call)["generateContentRequest"]
        request.pop("model")
        response = await vertex_api.post(call, f"{vertex_api.publisher_url(call, 'google')}/{model}:countTokens",
                                         {"authorization": f"Bearer {token}", "content-type": "application/json"},
                                         json.dumps(request).encode())
        answer = await anthropic_api.json_answer(response)
        if not isinstance(answer.get("totalTokens"), int):
            raise GatewayError(502, "Vertex AI's token count is not a number.", error_type="api_error")
        return answer["totalTokens"], "vertex_count_tokens"
