"""Amazon Bedrock: no key, the function's IAM role is the credential.

Claude models take Anthropic's body through InvokeModel, called directly
(providers/bedrock_api.py says why); every other model (Amazon Nova, Meta Llama,
Mistral, ...) gets Converse, called directly too (providers/converse_api.py), so a
deployment whose providers are all Bedrock never imports litellm. Both sign
with SigV4 from the default chain: the connection carries no key.
"""

from __future__ import annotations

from typing import Any, Mapping

from ...translation import lost_content
from ...translation.chat_completions import PARALLEL_TOOL_USE
from .. import bedrock_api, converse_api
from .base import Family


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
        """Claude: the keys InvokeModel's schema does not take (bedrock_api.INVOKE_MODEL_FIELDS).
        Converse: parallel tool use cannot be turned off (ToolConfiguration has no such flag)."""
        if is_claude(model.name):
            return bedrock_api.refused_fields(body)
        choice = body.get("tool_choice")
        return [PARALLEL_TOOL_USE] if isinstance(choice, Mapping) and choice.get("disable_parallel_tool_use") \
            is not None else []

    def model_arguments(self, model) -> dict[str, Any]:
        """Converse: cachePoint blocks where the model caches prompts (the price map's
        supports_prompt_caching; Bedrock refuses them elsewhere)."""
        if is_claude(model.name):
            return {}
        return {"cache_points": model.info.get("supports_prompt_caching") is True}

    def takes_web_search(self, model) -> bool:
        return False  # Converse runs no server tool

    def refused_betas(self, model, anthropic_beta: str) -> list[str]:
        return bedrock_api.refused_betas(anthropic_beta, "bedrock") if is_claude(model.name) else []

    def unsendable(self, body: Mapping[str, Any], model) -> str | None:
        """Claude takes Anthropic's body as sent; Converse carries base64 images and PDFs only
        (translation/lost_content.py's default: what litellm's Converse carried)."""
        return None if is_claude(model.name) else lost_content.lost_in_translation(body)

    def connection(self, provider) -> dict[str, Any]:
        connection: dict[str, Any] = {"aws_region_name": provider.settings["aws_region"]}
        if provider.api_base:
            connection["api_base"] = provider.api_base
        return connection

    async def count_tokens(self, call: dict[str, Any]) -> tuple[int, str]:
        """Bedrock's CountTokens: the InvokeModel body for Claude, a Converse input otherwise."""
        if is_claude(str(call["model"])):
            return await bedrock_api.count_tokens(call), "bedrock_count_tokens"
        return await converse_api.count_tokens(call), "bedrock_count_tokens"

    async def send(self, call: dict[str, Any]) -> Any:
        if is_claude(str(call["model"])):
            return await bedrock_api.send(call)
        return await converse_api.send(call)
