"""OpenAI and every OpenAI-compatible server (vLLM, Ollama, ...), through litellm's chat completions."""

from __future__ import annotations

from .base import Family


class OpenAI(Family):
    type = "openai"
    default_api_base = "https://api.openai.com/v1"
    key_or_api_base = True
