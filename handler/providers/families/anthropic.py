"""Anthropic's own API: the body goes as the caller sent it, over httpx (providers/anthropic_api.py)."""

from __future__ import annotations

from typing import Any

from .. import anthropic_api
from .base import Family


class Anthropic(Family):
    type = "anthropic"
    default_api_base = "https://api.anthropic.com"
    key_or_api_base = True

    def speaks_anthropic(self, model_name: str) -> bool:
        return True

    async def send(self, call: dict[str, Any]) -> Any:
        return await anthropic_api.send(call)
