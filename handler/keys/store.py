"""Caller keys: hashing, the keys secrets' format, and an in-memory cache.

Only `sha256:<hex>` of a key is stored, and a presented key is found by
hashing it and looking the digest up in a dict: no comparison ever runs over
the secret itself. Keys are spread over shard secrets (keys/shards.py); each
shard a request touches is cached (cache.RefreshingValue), which keeps
Secrets Manager off the warm path.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from ..cache import RefreshingValue
from ..protocol.errors import GatewayError
from . import shards as key_shards

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
    expires_at: float | None = None  # epoch seconds; a rotated key's old value expires when its grace ends
    # A request without `fallbacks` runs its model's default chain (the providers secret's
    # `fallbacks`). Keys created before the setting existed have no field: off.
    default_fallbacks: bool = False

    @property
    def active(self) -> bool:
        return self.status == "active"

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

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
    if not isinstance(entry.get("default_fallbacks", False), bool):
        raise ValueError("default_fallbacks must be true or false")
    return ApiKey(key_id=key_id, name=entry.get("name", ""), status=entry.get("status", "active"),
                  models=tuple(models) if models is not None else None, limits=dict(limits or {}),
                  expires_at=parse_time(entry.get("expires_at")),
                  default_fallbacks=entry.get("default_fallbacks", False))


def parse_time(value: Any) -> float | None:
    """ISO 8601 with a zone -> epoch seconds; ValueError for anything else."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("expires_at must be an ISO 8601 string")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("expires_at needs a time zone")
    return moment.timestamp()


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


def presented_key(authorization: str | list[str] | None, x_api_key: str | list[str] | None) -> str | None:
    """The key from `x-api-key` (Anthropic SDKs) or `Authorization: Bearer` (the seed).

    Both at once must agree: a request carrying two different credentials is
    ambiguous, and ambiguity in authentication fails closed. So does a header
    sent twice (the lists hold every value of each header).
    """
    authorization = _single(authorization, "Authorization")
    x_api_key = _single(x_api_key, "x-api-key")
    bearer = None
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            bearer = value.strip()
    header = x_api_key.strip() if x_api_key else None
    if header and authorization and bearer != header:
        raise GatewayError(401, "Conflicting credentials: x-api-key and Authorization name different keys.")
    return header or bearer


def _single(values: str | list[str] | None, name: str) -> str | None:
    if not isinstance(values, list):
        return values
    if len(values) > 1:
        raise GatewayError(401, f"Conflicting credentials: {name} is sent more than once.")
    return values[0] if values else None


@dataclass(frozen=True)
class Shard:
    keys: dict[str, ApiKey]
    moved_to: int | None = None
    moving_from: tuple[int, ...] = ()


def parse_shard(document: dict) -> Shard:
    return Shard(parse_keys_secret(document), key_shards.moved_to(document),
                 tuple(key_shards.moving_from(document)))


class KeyStore:
    """Looks presented keys up in the shard secret their digest names.

    Each shard is its own cached value, loaded on the first request that
    needs it: a cold start reads only the shards its requests touch. An
    unknown key may have just been created, so it asks for its shard to be
    re-read; those re-reads are rate-limited across all shards to one per
    `min_gap`, as with a single secret, so random keys cannot become a burst
    of Secrets Manager calls.
    """

    def __init__(self, read: Callable[[str], dict], *, secret_id: str, shards: int = 1, ttl: float,
                 min_gap: float, max_staleness: float, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], float] = time.time) -> None:
        self._read = read
        self._secret_id = secret_id
        self._shards = shards
        self._options = {"ttl": ttl, "min_gap": min_gap, "max_staleness": max_staleness, "clock": clock}
        self._clock = clock
        self._now = now
        self._min_gap = min_gap
        self._unknown_refresh_at = float("-inf")
        self._caches: dict[str, RefreshingValue[Shard]] = {}

    def invalidate(self) -> None:
        """Forget every shard read so far: the next request reads its shard afresh."""
        self._caches.clear()

    @property
    def loads(self) -> int:
        """Secrets Manager reads so far (successful ones), over every shard."""
        return sum(cache.loads for cache in self._caches.values())

    def _cache(self, secret_id: str) -> RefreshingValue[Shard]:
        if secret_id not in self._caches:
            self._caches[secret_id] = RefreshingValue(lambda: parse_shard(self._read(secret_id)), name="keys",
                                                      **self._options)
        return self._caches[secret_id]

    def _may_refresh_for_unknown_key(self) -> bool:
        if self._clock() - self._unknown_refresh_at < self._min_gap:
            return False
        self._unknown_refresh_at = self._clock()
        return True

    async def find(self, digest: str) -> ApiKey | None:
        count = self._shards
        for _ in range(key_shards.MAX_HOPS):
            cache = self._cache(key_shards.shard_of(self._secret_id, count, digest))
            loads = cache.loads
            shard = await cache.get()
            just_read = cache.loads != loads  # then a re-read could not know more
            if (digest not in shard.keys and shard.moved_to is None and not just_read
                    and self._may_refresh_for_unknown_key()):
                shard = await cache.get(refresh=True)
            if digest in shard.keys:
                return shard.keys[digest]
            if shard.moved_to is None:
                return await self._not_yet_copied(digest, shard.moving_from)
            count = shard.moved_to
        log.error("keys shard layout %d: too many moved_to marks to follow", self._shards)
        return None

    async def _not_yet_copied(self, digest: str, layouts: tuple[int, ...]) -> ApiKey | None:
        """A reshard into this layout is under way: the key may still be in the shard it comes from.

        Only a shard not yet marked moved counts (a marked one's keys are
        already where this lookup began).
        """
        for count in layouts:
            shard = await self._cache(key_shards.shard_of(self._secret_id, count, digest)).get()
            if shard.moved_to is None and digest in shard.keys:
                return shard.keys[digest]
        return None

    async def authenticate(self, key: str | None) -> ApiKey:
        if not key:
            raise GatewayError(401, "Missing API key: send `x-api-key` or `Authorization: Bearer`.")
        found = await self.find(hash_key(key))
        if found is None:
            raise GatewayError(401, "Invalid API key.")
        if not found.active:
            raise GatewayError(401, "This API key has been revoked.")
        if found.expired(self._now()):
            raise GatewayError(401, "This API key has expired.")
        return found
