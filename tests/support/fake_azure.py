"""Fake Azure OpenAI resource speaking its real wire format over HTTP.

Built from Azure OpenAI's REST reference: `POST /openai/deployments/{deployment}/
chat/completions?api-version=…` with the key in an `api-key` header; the body
and answers are OpenAI's Chat Completions (fake_upstream.py renders them),
keyed by the deployment. A missing or unserved api-version is a 404 as Azure
answers it; a wrong key a 401.

    with FakeAzure(api_key="azure-key", api_versions={"2024-10-21"}) as azure:
        azure.fail("prod-chat", status=429, headers={"retry-after": "3"})
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.fake_upstream import OPENAI, FakeUpstream, ModelInPathHandler, Recorded


class _AzureHandler(ModelInPathHandler):
    server_version = "FakeAzure/1.0"

    def _serve(self, path: str, body: dict | None, headers: dict):
        parts = unquote(path).split("/")
        if self.command != "POST" or len(parts) != 6 or parts[1:3] != ["openai", "deployments"] \
                or parts[4:] != ["chat", "completions"]:
            return self._send_json(404, {"error": {"code": "404", "message": "Resource not found"}})
        deployment = parts[3]
        fake: FakeAzure = self.server.fake
        fake._record(Recorded(self.command, self.path, headers, body, path_model=deployment))
        if headers.get("api-key") != fake.api_key:
            return self._send_json(401, {"error": {"code": "401", "message": "Access denied due to invalid "
                                                   "subscription key or wrong API endpoint."}})
        version = (parse_qs(urlsplit(self.path).query).get("api-version") or [None])[0]
        if version not in fake.api_versions:
            return self._send_json(404, {"error": {"code": "404", "message": f"API version {version} is not "
                                                   "supported by this resource"}})
        if deployment not in fake.deployments:
            return self._send_json(404, {"error": {"code": "DeploymentNotFound", "message": "The API deployment "
                                                   "for this resource does not exist."}})
        if body is None:
            return self._send_json(400, {"error": {"code": "400", "message": "invalid JSON body"}})
        # Azure answers with the deployed model's name; faults are keyed by the deployment.
        self._complete(OPENAI, {**body, "model": deployment})


class FakeAzure(FakeUpstream):
    """One Azure OpenAI resource on 127.0.0.1; `url` is the provider entry's api_base."""

    handler_class = _AzureHandler

    def __init__(self, *, api_key: str, api_versions: set[str], deployments: set[str], **server) -> None:
        super().__init__(**server)
        self.api_key, self.api_versions, self.deployments = api_key, set(api_versions), set(deployments)
