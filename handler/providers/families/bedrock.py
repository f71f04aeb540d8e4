"""Amazon Bedrock: no key, the function's IAM role is the credential.

Claude models take Anthropic's body through InvokeModel, called directly
(providers/bedrock_api.py says why); every other model (Amazon Nova, Meta Llama,
Mistral, ...) gets Converse, called directly too (providers/converse_api.py), so a
deployment whose providers are all Bedrock never imports litellm. Both sign
with SigV4 from the default chain: the connection carries no key.
"""

from __future__ import annotations

from typing import Any, Mapping

from ...translation import converse, lost_content
from ...translation.chat_completions import PARALLEL_TOOL_USE
from .. import bedrock_api, converse_api
from .base import Family


# What Converse carries of a block's sources (botocore: ImageSource, DocumentSource).
CONVERSE_SOURCES = {"image": {"base64"}, "document": {"base64", "text", "content"}}


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
        Converse: parallel tool use cannot be turned off (ToolConfiguration has no such flag);
        reasoning settings where Converse has no place for the model's (converse.takes_reasoning:
        a model the price map says reasons, DeepSeek's or Qwen's, reasons as it will; one that
        takes none has `thinking` dropped by adaptation already); `metadata.user_id` (ConverseRequest
        has no end-user field)."""
        if is_claude(model.name):
            return bedrock_api.refused_fields(body)
        refused: list[str] = []
        choice = body.get("tool_choice")
        if isinstance(choice, Mapping) and choice.get("disable_parallel_tool_use") is not None:
            refused.append(PARALLEL_TOOL_USE)
        if model.info.get("supports_reasoning") is True and not converse.takes_reasoning(model.name):
            thinking = body.get("thinking")
            if isinstance(thinking, Mapping) and thinking.get("type") not in (None, "disabled"):
                refused.append("thinking")
            if isinstance(body.get("output_config"), Mapping) and body["output_config"].get("effort") is not None:
                refused.append("output_config.effort")
        metadata = body.get("metadata")
        if isinstance(metadata, Mapping) and metadata.get("user_id"):
            refused.append("metadata.user_id")
        return refused

    def moved_blocks(self, body: Mapping[str, Any], model) -> tuple[str, ...]:
        """Converse: a text document goes as text to a model that takes no documents."""
        if is_claude(model.name) or converse.takes_documents(model.name):
            return ()
        return tuple(converse.text_documents_as_text(body.get("messages")))

    def model_arguments(self, model) -> dict[str, Any]:
        """Converse: cachePoint blocks where the model caches prompts (the price map's
        supports_prompt_caching; Bedrock refuses them elsewhere), document blocks where it
        takes documents."""
        if is_claude(model.name):
            return {}
        return {"cache_points": model.info.get("supports_prompt_caching") is True,
                "documents": converse.takes_documents(model.name)}

    def takes_web_search(self, model) -> bool:
        return False  # Converse runs no server tool

    def refused_betas(self, model, anthropic_beta: str) -> list[str]:
        return bedrock_api.refused_betas(anthropic_beta, "bedrock") if is_claude(model.name) else []

    def unsendable(self, body: Mapping[str, Any], model) -> str | None:
        """Claude takes Anthropic's body as sent; Converse carries base64 images and PDFs, and text
        documents (DocumentSource's `text`; a `content` source's text blocks), but a PDF only to a
        model with document chat (converse.takes_documents)."""
        if is_claude(model.name):
            return None
        return lost_content.lost_in_translation(body, CONVERSE_SOURCES) \
            or converse.uncarried_document(body, converse.takes_documents(model.name))

    def connection(self, provider) -> dict[str, Any]:
        connection: dict[str, Any] = {"aws_region_name": provider.settings["aws_region"]}
        if provider.api_base:
            connection["api_base"] = provider.api_base
        return connection

    async def count_tokens(self, call: dict[str, Any]) -> tuple[int, str]:
        """Bedrock's CountTokens for Claude (on the InvokeModel body); it refuses every other
        model ("The provided model doesn't support counting tokens"), counted at the gateway."""
        if is_claude(str(call["model"])):
            return await bedrock_api.count_tokens(call), "bedrock_count_tokens"
        return converse_api.count_locally(call), "local_tokenizer"

    async def send(self, call: dict[str, Any]) -> Any:
        if is_claude(str(call["model"])):
            return await bedrock_api.send(call)
        return await converse_api.send(call)
