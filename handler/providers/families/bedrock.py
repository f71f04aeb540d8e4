"""Amazon Bedrock: no key, the function's IAM role is the credential.

Claude models take Anthropic's body through InvokeModel, called directly
(providers/bedrock_api.py says why); every other model (Amazon Nova, Meta Llama, ...)
goes through litellm, which speaks Converse to them. litellm signs with
SigV4 only when it is given no `api_key` (given one, even a placeholder, it
sends it as a Bedrock API key: FIELD-NOTES), so the connection carries none.
"""

from __future__ import annotations

from typing import Any, Mapping

from ...translation import lost_content
from .. import bedrock_api
from .base import Family, litellm_route


def is_claude(model_name: str) -> bool:
    """`anthropic.claude-…`, or an inference profile of one (`us.anthropic.claude-…`, an ARN)."""
    return "anthropic.claude" in model_name


class Bedrock(Family):
    type = "bedrock"
    required = ("aws_region",)
    optional = ()
    credentials = ()

    def problems(self, conf: Mapping[str, Any]) -> list[str]:
        found = super().problems(conf)
        if conf.get("api_key"):
            found.append("api_key is not used: bedrock authenticates with the function's IAM role "
                         "(a key would be sent instead of the role's signature)")
        return found

    def speaks_anthropic(self, model_name: str) -> bool:
        return is_claude(model_name)

    def refused_fields(self, model, body: Mapping[str, Any]) -> list[str]:
        """Claude: the keys InvokeModel's schema does not take (bedrock_api.INVOKE_MODEL_FIELDS)."""
        return bedrock_api.refused_fields(body) if is_claude(model.name) else []

    def refused_betas(self, model, anthropic_beta: str) -> list[str]:
        return bedrock_api.refused_betas(anthropic_beta, "bedrock") if is_claude(model.name) else []

    def unsendable(self, body: Mapping[str, Any], model) -> str | None:
        """Claude takes Anthropic's body as sent; litellm's Converse translation loses some blocks."""
        return None if is_claude(model.name) else lost_content.lost_in_translation(body)

    def connection(self, provider) -> dict[str, Any]:
        connection: dict[str, Any] = {"aws_region_name": provider.settings["aws_region"]}
        if provider.api_base:
            connection["api_base"] = provider.api_base
        return connection

    def status_of(self, exc: BaseException) -> int | None:
        """litellm reports Bedrock's status; the error's name (only in x-amzn-ErrorType for
        ModelNotReadyException) says what it means."""
        for holder in (exc, getattr(exc, "response", None)):
            headers = getattr(holder, "litellm_response_headers", None) or getattr(holder, "headers", None)
            name = headers.get("x-amzn-errortype") if hasattr(headers, "get") else None
            if name:
                return bedrock_api.ERROR_STATUS.get(name.split(":", 1)[0].strip().lower())
        return None

    async def count_tokens(self, call: dict[str, Any]) -> tuple[int, str]:
        """Claude: Bedrock's CountTokens. Others: a local tokenizer (litellm's acount_tokens
        would try Bedrock's API without the region and the role's signature)."""
        if is_claude(str(call["model"])):
            return await bedrock_api.count_tokens(call), "bedrock_count_tokens"
        return litellm_route().count_locally(call), "local_tokenizer"

    async def send(self, call: dict[str, Any]) -> Any:
        if is_claude(str(call["model"])):
            return await bedrock_api.send(call)
        return await super().send(call)
