"""Google Vertex AI (Gemini and partner models such as Claude), through litellm.

The credential is a service account's JSON key: litellm exchanges it for an
OAuth token at the key's `token_uri`. The whole key is a credential.
litellm does that exchange with google-auth, which the Lambda package does not
carry (with cryptography it would take the package past its zip budget: README,
Provider families), so without it an entry is refused rather than failing on
every call.
"""

from __future__ import annotations

import importlib.util
import json
from typing import Any, Mapping

from .base import Family


class VertexAI(Family):
    type = "vertex_ai"
    required = ("vertex_project", "vertex_location", "credentials")
    optional = ()
    credentials = ("credentials",)

    def problems(self, conf: Mapping[str, Any]) -> list[str]:
        found = super().problems(conf)
        if importlib.util.find_spec("google") is None or importlib.util.find_spec("google.auth") is None:
            found.append("vertex_ai needs google-auth, which this deployment does not include")
        key = conf.get("credentials")
        if isinstance(key, str):
            try:
                key = json.loads(key)
            except ValueError:
                key = None
        if conf.get("credentials") and not (isinstance(key, dict) and key.get("private_key") and key.get("client_email")):
            found.append("credentials must be a service account's JSON key (with client_email and private_key)")
        return found

    def connection(self, provider) -> dict[str, Any]:
        key = provider.settings["credentials"]
        connection = {
            "vertex_project": provider.settings["vertex_project"],
            "vertex_location": provider.settings["vertex_location"],
            "vertex_credentials": key if isinstance(key, str) else json.dumps(key),
        }
        if provider.api_base:
            connection["api_base"] = provider.api_base
        return connection
