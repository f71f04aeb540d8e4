"""OpenAI and every OpenAI-compatible server (vLLM, Ollama, ...), through litellm's chat completions."""

from __future__ import annotations

from typing import Any, Mapping

from .base import Family


class OpenAI(Family):
    type = "openai"
    optional = ("api_key",)
    default_api_base = "https://api.openai.com/v1"

    def problems(self, conf: Mapping[str, Any]) -> list[str]:
        if not conf.get("api_key") and not conf.get("api_base"):
            return ["missing api_key (type 'openai' needs api_key, or api_base for a server without keys)"]
        return []
