"""Caller keys: hashing, the keys secret's format, and an in-memory cache.

Only `sha256:<hex>` of a key is stored, and a presented key is found by
hashing it and looking the digest up in a dict: no comparison ever runs over
the secret itself. The cache (cache.RefreshingValue) keeps Secrets Manager off
the warm path.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from .cache import RefreshingValue
from .errors import GatewayError

log = logging.getLogger(__name__)

KEY_PREFIX = "egw_"


def new_key() -> str:
    """`egw_` + 32 random bytes, url-safe, unpadded."""
    return KEY_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def new_key_id() -> str:
    return "k_" + secrets.token_hex(8)


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    status: str = "active"
    models: tuple[str, ...] | None = None
    limits: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.status == "active"

    def may_use(self, model_id: str) -> bool:
        """The allow-list is globs over catalogue ids; no list means every model."""
        if self.models is None:
            return True
        return any(fnmatch.fnmatchcase(model_id, pattern) for pattern in self.models)


def _entry(entry: Any) -> ApiKey:
    """One entry of the keys secret, or ValueError: a wrong type never widens what a key may do."""
    if not isinstance(entry, dict):
        raise ValueError("not an object")
    key_id, models, limits = entry.get("key_id"), entry.get("models"), entry.get("limits")
    if not isinstance(key_id, str) or not key_id:
        raise ValueError("key_id must be a string")
    if models is not None and (not isinstance(models, list) or not all(isinstance(m, str) for m in models)):
        raise ValueError("models must be a list of globs")  # a bare string would allow its characters
    if limits is not None and not isinstance(limits, dict):
        raise ValueError("limits must be an object")
    if not isinstance(entry.get("status", "active"), str) or not isinstance(entry.get("name", ""), str):
        raise ValueError("status and name must be strings")
    return ApiKey(key_id=key_id, name=entry.get("name", ""), status=entry.get("status", "active"),
                  models=tuple(models) if models is not None else None, limits=dict(limits or {}))


def parse_keys_secret(document: dict) -> dict[str, ApiKey]:
    """Map hash -> ApiKey; malformed entries are skipped (their key is refused) and logged, not fatal."""
    keys: dict[str, ApiKey] = {}
    for position, entry in enumerate(document.get("keys", [])):
        try:
            digest = entry["hash"]
            if not isinstance(digest, str):
                raise ValueError("hash must be a string")
            keys[digest] = _entry(entry)
        except (KeyError, TypeError, ValueError) as exc:
            log.error("skipping malformed entry %d of the keys secret: %s", position, exc)
    return keys


def presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key from `x-api-key` (Anthropic SDKs) or `Authorization: Bearer` (the seed).

    Both at once must agree: a request carrying two different credentials is
    ambiguous, and ambiguity in authentication fails closed.
    """
    bearer = None
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            bearer = value.strip()
    header = x_api_key.strip() if x_api_key else None
    if header and authorization and bearer != header:
        raise GatewayError(401, "Conflicting credentials: x-api-key and Authorization name different keys.")
    return header or bearer


class KeyStore:
    """Looks presented keys up in the cached keys secret.

    An unknown key asks the cache for a refresh (it may have just been
    created); the cache's min_gap keeps that to one fetch per interval.
    """

    def __init__(self, secret: RefreshingValue[dict[str, ApiKey]]) -> None:
        self._secret = secret

    async def authenticate(self, key: str | None) -> ApiKey:
        if not key:
            raise GatewayError(401, "Missing API key: send `x-api-key` or `Authorization: Bearer`.")
        digest = hash_key(key)
        found = (await self._secret.get()).get(digest)
        if found is None:
            found = (await self._secret.get(refresh=True)).get(digest)
        if found is None:
            raise GatewayError(401, "Invalid API key.")
        if not found.active:
            raise GatewayError(401, "This API key has been revoked.")
        return found
