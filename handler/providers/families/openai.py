"""OpenAI and every OpenAI-compatible server (vLLM, Ollama, ...): Chat Completions, called
directly (providers/openai_api.py), with the entry's key as a bearer token.

OpenAI's reasoning models (o-series, gpt-5) take the output limit only as
`max_completion_tokens` and refuse sampling fields (temperature other than 1,
top_p, stop, parallel_tool_calls) with a 400 that would end a fallback chain:
those are left out and listed. OpenAI takes at most four stop sequences.
"""

from __future__ import annotations

from typing import Any, Mapping

from ...translation import chat_completions
from ...translation.chat_completions import PARALLEL_TOOL_USE
from .. import openai_api
from .base import Family, litellm_route


class OpenAI(Family):
    type = "openai"
    default_api_base = "https://api.openai.com/v1"
    key_or_api_base = True
    max_stop_sequences = 4
    # OpenAI takes `system` (and `developer`) messages anywhere in `messages`.
    system_messages_in_place = True
    web_search_fields = frozenset({"type", "name", "user_location"})  # web_search_options takes a location

    def served_model(self, model) -> str:
        """The OpenAI model behind a catalogue entry (Azure: the deployment's `base_model`)."""
        return str(model.info.get("base_model") or model.name)

    def refused_fields(self, model, body: Mapping[str, Any]) -> list[str]:
        if not openai_api.is_reasoning_model(self.served_model(model)):
            return []
        refused = [name for name in ("top_p", "stop_sequences") if body.get(name) is not None]
        if body.get("temperature") not in (None, 1):
            refused.insert(0, "temperature")
        choice = body.get("tool_choice")
        if isinstance(choice, Mapping) and choice.get("disable_parallel_tool_use") is not None:
            refused.append(PARALLEL_TOOL_USE)
        return refused

    # OpenAI's prompt_cache_key, from a Claude Code session (Azure's api-versions may not take it).
    session_cache_key = True

    def unsendable(self, body: Mapping[str, Any], model) -> str | None:
        return chat_completions.unsendable(body)

    def model_arguments(self, model) -> dict[str, Any]:
        reasoning = openai_api.is_reasoning_model(self.served_model(model))
        return {"max_tokens_field": "max_completion_tokens" if reasoning else "max_tokens",
                "session_cache_key": self.session_cache_key}

    def takes_web_search(self, model) -> bool:
        return chat_completions.is_search_model(self.served_model(model))

    async def count_tokens(self, call: dict[str, Any]) -> tuple[int, str]:
        """A local tokenizer. litellm's acount_tokens asks OpenAI's `POST /responses/input_tokens`
        first, which OpenAI-compatible servers (vLLM, Ollama, ...) do not have: a round trip and a
        404 logged as an ERROR on every count, then the same local count."""
        return litellm_route().count_locally(call), "local_tokenizer"

    async def send(self, call: dict[str, Any]) -> Any:
        return await openai_api.send(call, url=openai_api.chat_url(call["api_base"]),
                                     credential={"authorization": f"Bearer {call['api_key']}"})
