"""Provider families, one module each, found by the provider's `type`.

Adding a family is adding a module here (a `Family` subclass: see base.py)
and its fake in tests/support/. A type with no module of its own is any
other litellm provider and gets the base family.
"""

from __future__ import annotations

from typing import Any, Mapping

from .anthropic import Anthropic
from .azure import Azure
from .base import GENERIC, Family
from .bedrock import Bedrock
from .gemini import Gemini
from .openai import OpenAI
from .vertex_ai import VertexAI

FAMILIES: Mapping[str, Family] = {f.type: f for f in (Anthropic(), OpenAI(), Bedrock(), Gemini(), VertexAI(), Azure())}

__all__ = ["FAMILIES", "Family", "family", "of_call"]


def family(provider_type: str) -> Family:
    return FAMILIES.get(provider_type, GENERIC)


def of_call(call: Mapping[str, Any]) -> Family:
    """The family of a built call: its model is `type/name` (Model.litellm_model)."""
    return family(str(call.get("model", "")).partition("/")[0])
