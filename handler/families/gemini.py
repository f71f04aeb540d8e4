"""Google's Gemini API (generativelanguage), through litellm, with the entry's API key."""

from __future__ import annotations

from .base import Family


class Gemini(Family):
    type = "gemini"
    required = ("api_key",)
    optional = ()
