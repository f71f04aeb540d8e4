"""OpenAI and every OpenAI-compatible server (vLLM, Ollama, ...): Chat Completions, called
directly (openai_api.py), with the entry's key as a bearer token."""

from __future__ import annotations

from typing import Any

from .. import chat_completions, openai_api
from .base import Family


class OpenAI(Family):
    type = "openai"
    default_api_base = "https://api.openai.com/v1"
    key_or_api_base = True

    async def send(self, call: dict[str, Any]) -> Any:
        return await openai_api.send(call, url=openai_api.chat_url(call["api_base"]),
                                     credential={"authorization": f"Bearer {call['api_key']}"})

    def takes_web_search(self, model) -> bool:
        return chat_completions.is_search_model(model.name)
