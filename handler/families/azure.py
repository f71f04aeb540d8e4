"""Azure OpenAI: models are deployments of a resource, called with an `api-key` and an
`api-version`. litellm sends its own default version when given none (FIELD-NOTES), which a
resource may not serve, so the entry must say which one it has."""

from __future__ import annotations

from typing import Any

from .base import Family


class Azure(Family):
    type = "azure"
    required = ("api_key", "api_base", "api_version")
    optional = ()

    def connection(self, provider) -> dict[str, Any]:
        return {**super().connection(provider), "api_version": provider.settings["api_version"]}
