"""Anthropic's own API: the body goes as the caller sent it, over httpx (anthropic_api.py)."""

from __future__ import annotations

from typing import Any, Mapping

from .. import anthropic_api
from .base import Family


class Anthropic(Family):
    type = "anthropic"
    optional = ("api_key",)
    default_api_base = "https://api.anthropic.com"

    def problems(self, conf: Mapping[str, Any]) -> list[str]:
        # Without api_base the call goes to Anthropic, which needs a key; a self-hosted
        # server at an api_base may not.
        if not conf.get("api_key") and not conf.get("api_base"):
            return ["missing api_key (type 'anthropic' needs api_key, or api_base for a server without keys)"]
        return []

    def speaks_anthropic(self, model_name: str) -> bool:
        return True

    async def send(self, call: dict[str, Any]) -> Any:
        return await anthropic_api.send(call)
