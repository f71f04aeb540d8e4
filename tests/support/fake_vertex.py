"""Fake Google Vertex AI speaking its real wire format over HTTP, with its OAuth token endpoint.

Built from Google's references:
- the token endpoint (OAuth 2.0 for server to server applications): a form POST with
  `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and an RS256-signed JWT
  `assertion` whose signature is checked with the service account's public key, and
  whose iss/scope/aud/iat/exp are checked; answers `{"access_token", "expires_in",
  "token_type": "Bearer"}`, or `{"error": "invalid_grant", "error_description"}` (400);
- Claude: `POST /v1/projects/{p}/locations/{l}/publishers/anthropic/models/{m}:rawPredict`
  and `:streamRawPredict` (Anthropic's body, no `model`, `anthropic_version:
  vertex-2023-10-16`; Anthropic's message and SSE back), and `count-tokens:rawPredict`;
- Gemini: the OpenAI-compatible `…/endpoints/openapi/chat/completions` (model
  `google/<name>`) and `…/publishers/google/models/{m}:countTokens`;
- every call but the token's needs `Authorization: Bearer <a token this fake issued
  and that has not expired>` (else 401 UNAUTHENTICATED); errors are Google's
  `{"error": {"code", "message", "status"}}` (RESOURCE_EXHAUSTED 429, UNAVAILABLE 503,
  INVALID_ARGUMENT 400).

    with FakeVertex(project="proj", location="us-east5") as vertex:
        account = vertex.service_account          # the JSON key, token_uri pointing here
        vertex.error("claude-sonnet-4-5@20250929", "RESOURCE_EXHAUSTED")

Replies are fake_upstream.py's deterministic ones.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from urllib.parse import parse_qs, unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support import anthropic_rules
from tests.support.fake_gemini import ERROR_STATUS, chat_problem, gemini_prompt
from tests.support.fake_upstream import (
    ANTHROPIC, OPENAI, FakeUpstream, ModelInPathHandler, Recorded, _anthropic_frames, _anthropic_message,
    _anthropic_prompt, _Fault, _frame_json,
)

VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOCK_SKEW = 300  # seconds Google tolerates between the signer's clock and its own
# The betas Vertex's Claude takes in the `anthropic-beta` header: litellm's beta map
# (anthropic_beta_headers_config.json, litellm 1.110.2, column `vertex_ai`). Vertex refuses a
# request naming any other with Anthropic's 400, "Unexpected value(s) `web-search-2025-03-05` for the
# `anthropic-beta` header. Please consult our documentation at docs.anthropic.com or try again without
# the header." (measured: anthropics/claude-code#12429, #21625).
ACCEPTED_BETAS = {
    "advanced-tool-use-2025-11-20", "afk-mode-2026-01-31", "claude-code-20250219", "compact-2026-01-12",
    "computer-use-2025-01-24", "computer-use-2025-11-24", "context-1m-2025-08-07", "context-management-2025-06-27",
    "dangerous-tool-use-2026-09-03", "effort-2025-11-24", "fallback-credit-2026-06-01", "fallback-credit-2026-07-01",
    "fine-grained-tool-streaming-2025-05-14", "inline-tools-2026-09-15", "interleaved-thinking-2025-05-14",
    "mid-conversation-output-config-2026-07-01", "mid-conversation-system-clear-at-2026-08-21",
    "mid-conversation-tool-changes-2026-07-01", "model-context-window-exceeded-2025-08-26", "output-128k-2025-02-19",
    "pdfs-2024-09-25", "per-turn-control-2026-07-01", "server-side-fallback-2026-06-01",
    "structured-outputs-2025-11-13", "structured-outputs-2025-12-15", "task-budgets-2026-03-13",
    "thinking-binding-controls-2026-08-01", "thinking-display-updates-2026-08-18", "thinking-token-count-2026-05-13",
    "token-counting-2024-11-01", "token-efficient-tools-2025-02-19", "tool-examples-2025-10-29",
    "tool-search-tool-2025-10-19", "web-search-2025-03-05"}


# Top-level fields Vertex's Claude refuses besides `model` (which the URL names): `diagnostics`,
# 400 "diagnostics: Extra inputs are not permitted" (measured: anthropics/claude-code#82539).
REFUSED_FIELDS = ("diagnostics",)


def beta_problem(header: str) -> str | None:
    """Why Vertex refuses this `anthropic-beta` header, in its words (None: it takes it)."""
    refused = [beta.strip() for beta in header.split(",") if beta.strip() and beta.strip() not in ACCEPTED_BETAS]
    if not refused:
        return None
    named = ", ".join(f"`{beta}`" for beta in refused)
    return (f"Unexpected value(s) {named} for the `anthropic-beta` header. Please consult our documentation at "
            "docs.anthropic.com or try again without the header.")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_of(key: rsa.RSAPrivateKey, pkcs8: bool = True) -> str:
    form = serialization.PrivateFormat.PKCS8 if pkcs8 else serialization.PrivateFormat.TraditionalOpenSSL
    return key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption()).decode()


class _VertexHandler(ModelInPathHandler):
    server_version = "FakeVertex/1.0"

    def _read_body(self) -> bytes:
        self._raw = super()._read_body()  # the token endpoint's body is a form, not JSON
        return self._raw

    def _serve(self, path: str, body: dict | None, headers: dict):
        fake: FakeVertex = self.server.fake
        path = unquote(path)
        if self.command == "POST" and path == "/token":
            fake._record(Recorded(self.command, self.path, headers, None, path_model="token"))
            return self._token()
        prefix = f"/v1/projects/{fake.project}/locations/{fake.location}/"
        rest = path.removeprefix(prefix)
        model, action = "", ""
        if rest.startswith(("publishers/anthropic/models/", "publishers/google/models/")):
            model, _, action = rest.split("/models/", 1)[1].rpartition(":")
        elif rest == "endpoints/openapi/chat/completions" and body is not None:
            model, action = str(body.get("model", "")).removeprefix("google/"), "chat"
        fake._record(Recorded(self.command, self.path, headers, body, path_model=model or None))
        known = {"anthropic": ("rawPredict", "streamRawPredict"), "google": ("countTokens",)}
        publisher = rest.split("/")[1] if rest.startswith("publishers/") else "openapi"
        if self.command != "POST" or not path.startswith(prefix) or not model \
                or action not in known.get(publisher, ("chat",)):
            return self._error(404, "NOT_FOUND", f"no method {self.command} {path}")
        if headers.get("authorization", "").removeprefix("Bearer ") not in fake._valid_tokens():
            return self._error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. "
                                                       "Expected OAuth 2 access token.")
        if body is None:
            return self._error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        stream = action == "streamRawPredict" or (action == "chat" and bool(body.get("stream")))
        fault = fake._next_fault(model, stream)
        if fault and fault.action == "google_error":
            return self._error(**fault.args)
        if fault and fault.action == "reset":
            return self._reset()
        if action == "chat":
            return self._complete(OPENAI, body)
        if action == "countTokens":
            return self._send_json(200, {"totalTokens": gemini_prompt(model, body).input_words,
                                         "totalBillableCharacters": 0})
        if model == "count-tokens":
            if body.get("anthropic_version") != VERTEX_ANTHROPIC_VERSION or not body.get("model"):
                return self._error(400, "INVALID_ARGUMENT", "count-tokens needs anthropic_version and model")
            return self._send_json(200, {"input_tokens": _anthropic_prompt(body).input_words})
        self._claude(model, body, stream, fault, headers.get("anthropic-beta", ""))

    def _claude(self, model: str, body: dict, stream: bool, fault: _Fault | None, betas: str):
        if beta_problem(betas):
            return self._anthropic_error(400, beta_problem(betas))
        if body.get("anthropic_version") != VERTEX_ANTHROPIC_VERSION:
            return self._anthropic_error(400, f"anthropic_version: must be {VERTEX_ANTHROPIC_VERSION}")
        for name in ("model", *REFUSED_FIELDS):
            if name in body:
                return self._anthropic_error(400, f"{name}: Extra inputs are not permitted")
        if bool(body.get("stream")) != stream:
            return self._anthropic_error(400, "stream must match the method (streamRawPredict streams)")
        # Claude's own validation behind Vertex: max_tokens required, each tool_use answered in the
        # next message (Vertex answers "messages.33: `tool_use` ids were found without `tool_result`
        # blocks immediately after: toolu_vrtx_01...", Kilo-Org/kilocode#5163), and each tool_result
        # answering a tool_use of the message before it ("messages.2.content.0: unexpected `tool_use_id`
        # found in `tool_result` blocks: toolu_vrtx_01...", jordigilh/kubernaut#686).
        messages = body.get("messages") or []
        problem = "max_tokens: Field required" if "max_tokens" not in body else \
            anthropic_rules.unanswered_tool_uses(messages) or anthropic_rules.unexpected_tool_results(messages)
        if problem:
            return self._anthropic_error(400, problem)
        prompt = _anthropic_prompt({**body, "model": model}, self.server.fake.cache_read)
        too_long = anthropic_rules.prompt_too_long(prompt.input_words, ",".join(body.get("anthropic_beta") or []))
        if too_long:
            return self._anthropic_error(400, too_long)
        reply = self.server.fake._reply(prompt, ANTHROPIC)
        if not stream:
            message = _anthropic_message(reply)
            self.server.fake._report(model, [message])
            return self._send_json(200, message)
        frames = _anthropic_frames(reply)
        cut = fault.args["after_events"] if fault and fault.action == "cut" else None
        self.server.fake._report(model, [_frame_json(frame) for frame in frames[:cut]])
        self._send_stream(frames, cut)

    def _token(self):
        fake: FakeVertex = self.server.fake
        form = {k: v[0] for k, v in parse_qs(self._raw.decode("ascii", "replace")).items()}
        if fake.token_failures:
            fake.token_failures -= 1
            return self._send_json(400, {"error": "invalid_grant", "error_description": "fake: account disabled"})
        if form.get("grant_type") != GRANT_TYPE:
            return self._send_json(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})
        problem = fake.jwt_problem(form.get("assertion", ""))
        if problem:
            return self._send_json(400, {"error": "invalid_grant", "error_description": problem})
        token = f"ya29.fake-{next(fake._token_ids)}"
        fake.tokens[token] = time.time() + fake.token_lifetime
        self._send_json(200, {"access_token": token, "expires_in": fake.token_lifetime, "token_type": "Bearer"})

    def _error(self, code: int, status: str, message: str):
        self._send_json(code, {"error": {"code": code, "message": message, "status": status}})

    def _anthropic_error(self, code: int, message: str):
        self._send_json(code, {"type": "error", "error": {"type": "invalid_request_error", "message": message}})


class FakeVertex(FakeUpstream):
    """Vertex AI (and Google's token endpoint) on 127.0.0.1: `url` is the provider entry's
    api_base; `service_account` is the JSON key to put in its `credentials`."""

    handler_class = _VertexHandler

    def __init__(self, *, project: str = "fake-project", location: str = "us-east5",
                 client_email: str = "gateway@fake-project.iam.gserviceaccount.com", **server) -> None:
        super().__init__(**server)
        self.project, self.location, self.client_email = project, location, client_email
        self.key = new_rsa_key()
        self.token_lifetime = 3600
        self.tokens: dict[str, float] = {}  # issued token -> when it expires
        self.token_failures = 0
        self.cache_read = False  # a prompt with cache_control reads the cache (else it writes it)
        self._token_ids = itertools.count(1)

    # Gemini 3 signs its function calls; a later request must hand each turn's signature back
    # (Vertex's OpenAI-compatible endpoint: `extra_content.google.thought_signature`).
    def tool_call_extra(self, model: str) -> dict | None:
        if not model.removeprefix("google/").startswith("gemini-3"):
            return None
        signature = base64.b64encode(f"thought of {model}".encode()).decode()
        return {"extra_content": {"google": {"thought_signature": signature}}}

    def request_problem(self, body: dict) -> str | None:
        """Gemini judges what Vertex's OpenAI-compatible endpoint hands it for a Gemini model
        (fake_gemini.chat_problem), not OpenAI; Gemini 3 also refuses a history whose current
        turn (since the user's last message) has a step of function calls without the signature
        it was given."""
        if not str(body.get("model", "")).startswith("google/"):  # a partner model (meta/llama-…)
            return super().request_problem(body)
        problem = chat_problem(body)
        if problem or not self.tool_call_extra(str(body.get("model", ""))):
            return problem
        messages = body.get("messages") or []
        turn = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
        for message in messages[turn + 1:]:
            calls = message.get("tool_calls") or []
            signed = ((calls[0].get("extra_content") or {}).get("google") or {}).get("thought_signature") \
                if calls else True
            if message.get("role") == "assistant" and not signed:
                return ("Function call is missing a thought_signature in functionCall parts. This is required "
                        "for tools to work correctly, and missing thought_signature may lead to degraded model "
                        "performance.")
        return None

    @property
    def token_uri(self) -> str:
        return self.url + "/token"

    @property
    def service_account(self) -> dict:
        return {"type": "service_account", "project_id": self.project, "private_key_id": "fake-key-1",
                "private_key": pem_of(self.key), "client_email": self.client_email, "token_uri": self.token_uri}

    @property
    def exchanges(self) -> int:
        return sum(1 for r in self.snapshot() if r.path_model == "token")

    def _valid_tokens(self) -> set[str]:
        now = time.time()
        return {token for token, expiry in list(self.tokens.items()) if expiry > now}

    def revoke_tokens(self) -> None:
        """Every token issued so far is refused from now on (401), as after a key is disabled."""
        self.tokens.clear()

    def fail_token_exchange(self, times: int = 1) -> None:
        self.token_failures = times

    def jwt_problem(self, assertion: str) -> str | None:
        """Why Google would refuse this assertion (None: it is good)."""
        try:
            header_b64, claims_b64, signature_b64 = assertion.split(".")
            header, claims = json.loads(_unb64(header_b64)), json.loads(_unb64(claims_b64))
        except ValueError:
            return "Invalid JWT: not three base64url JSON parts"
        if header.get("alg") != "RS256":
            return "Invalid JWT: alg must be RS256"
        try:
            self.key.public_key().verify(_unb64(signature_b64), f"{header_b64}.{claims_b64}".encode(),
                                         padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return "Invalid JWT Signature."
        now = time.time()
        if claims.get("iss") != self.client_email:
            return "Invalid JWT: iss is not the service account"
        if SCOPE not in str(claims.get("scope", "")).split():
            return "Invalid JWT: scope must include cloud-platform"
        if claims.get("aud") != self.token_uri:
            return "Invalid JWT: aud must be the token_uri"
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or exp - iat > 3600 or iat > now + CLOCK_SKEW \
                or exp < now - CLOCK_SKEW:
            return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."
        return None

    def error(self, model: str, status: str, message: str | None = None, *, times: int | None = 1) -> None:
        """Answer the next `times` calls to `model` with Google's error (RESOURCE_EXHAUSTED, ...)."""
        args = {"code": ERROR_STATUS[status], "status": status, "message": message or f"fake {status}"}
        self._queue(_Fault(model, "google_error", times, args))
