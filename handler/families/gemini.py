"""Google's Gemini API (generativelanguage), through litellm, with the entry's API key."""

from __future__ import annotations

from .base import Family


class Gemini(Family):
    type = "gemini"
    required = ("api_key",)
    optional = ()

    def status_of(self, exc: BaseException) -> int | None:
        """Google's UNAVAILABLE (503) is the model overloaded: Anthropic's 529, which clients retry."""
        return 529 if getattr(exc, "status_code", None) == 503 else None
