"""Azure OpenAI: models are deployments of a resource, called with an `api-key` and an
`api-version`, in Chat Completions (providers/openai_api.py), as OpenAI's own models are (the
deployment's `base_model` says which, for the fields its model refuses). litellm sends its
own default version when given none (FIELD-NOTES), which a resource may not serve, so the
entry must say which one it has."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from .. import openai_api
from .openai import OpenAI


def deployment_url(api_base: str, deployment: str, api_version: str) -> str:
    return (f"{api_base.rstrip('/')}/openai/deployments/{quote(deployment, safe='')}/chat/completions?"
            + urlencode({"api-version": api_version}))


class Azure(OpenAI):
    type = "azure"
    required = ("api_key", "api_base", "api_version")
    optional = ()
    default_api_base = None
    key_or_api_base = False
    session_cache_key = False

    def connection(self, provider) -> dict[str, Any]:
        return {**super().connection(provider), "api_version": provider.settings["api_version"]}

    def takes_web_search(self, model) -> bool:
        return False  # Azure's chat completions has no web search

    async def send(self, call: dict[str, Any]) -> Any:
        url = deployment_url(call["api_base"], str(call["model"]).partition("/")[2], call["api_version"])
        return await openai_api.send(call, url=url, credential={"api-key": call["api_key"]})
