"""A Google service account's access token, exchanged in the gateway.

Vertex AI takes an OAuth access token, which a service account gets by
signing a JWT (RS256) with its private key and posting it to its
`token_uri` (Google's "OAuth 2.0 for server to server applications").
google-auth does this with `cryptography`, which the Lambda package cannot
carry (README, Provider families); RS256 is RSASSA-PKCS1-v1_5 over SHA-256,
which is one modular exponentiation, so it is done here in pure Python from
the key's DER (a small ASN.1 reader: PKCS#8 or PKCS#1).

A token lives an hour: it is cached per service account until shortly
before it expires, one exchange per lifetime per process (concurrent callers
wait for the one exchange in flight); a SnapStart restore forgets it.
The private key is a credential: no message here ever carries it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import threading
import time
import weakref
from typing import Any, Mapping, NamedTuple
from urllib.parse import urlencode

from ..protocol.errors import GatewayError
from . import anthropic_api

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
LIFETIME = 3600  # the longest Google grants a self-signed assertion
# A token this close to its expiry is replaced: a request started with it must not outlive it.
REFRESH_MARGIN = 300
# DigestInfo's DER prefix for SHA-256 (RFC 8017, 9.2 note 1).
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
RSA_ENCRYPTION = bytes.fromhex("2a864886f70d010101")  # OID 1.2.840.113549.1.1.1


class UnusableKey(ValueError):
    """The service account's private key cannot be read (the message never quotes it)."""


class RsaKey(NamedTuple):
    n: int
    e: int
    d: int
    p: int
    q: int
    dp: int
    dq: int
    qinv: int

    @property
    def size(self) -> int:
        return (self.n.bit_length() + 7) // 8


# --------------------------------------------------------------------------- DER, just enough

def _element(der: bytes, at: int) -> tuple[int, bytes, int]:
    """(tag, content, next offset) of the DER element at `at`."""
    if at + 2 > len(der):
        raise UnusableKey("the key's DER ends early")
    tag, length, at = der[at], der[at + 1], at + 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4 or at + count > len(der):
            raise UnusableKey("the key's DER has a bad length")
        length, at = int.from_bytes(der[at:at + count], "big"), at + count
    if at + length > len(der):
        raise UnusableKey("the key's DER ends early")
    return tag, der[at:at + length], at + length


def _children(content: bytes) -> list[tuple[int, bytes]]:
    items, at = [], 0
    while at < len(content):
        tag, value, at = _element(content, at)
        items.append((tag, value))
    return items


def _sequence(der: bytes) -> list[tuple[int, bytes]]:
    tag, content, _ = _element(der, 0)
    if tag != 0x30:
        raise UnusableKey("the key's DER is not a SEQUENCE")
    return _children(content)


def _rsa_private_key(der: bytes) -> RsaKey:
    """PKCS#1 RSAPrivateKey: version, n, e, d, p, q, dp, dq, qinv."""
    fields = _sequence(der)
    if len(fields) < 9 or any(tag != 0x02 for tag, _ in fields[:9]):
        raise UnusableKey("the key is not an RSA private key")
    return RsaKey(*(int.from_bytes(value, "big") for _, value in fields[1:9]))


def parse_private_key(pem: str) -> RsaKey:
    """An RSA key from PEM: PKCS#8 (`BEGIN PRIVATE KEY`, what Google issues) or PKCS#1."""
    lines = [line.strip() for line in str(pem).strip().splitlines()]
    if len(lines) < 3 or not lines[0].startswith("-----BEGIN ") or not lines[-1].startswith("-----END "):
        raise UnusableKey("private_key is not a PEM block")
    kind = lines[0].removeprefix("-----BEGIN ").removesuffix("-----")
    try:
        der = base64.b64decode("".join(lines[1:-1]), validate=True)
    except ValueError:
        raise UnusableKey("private_key's PEM body is not base64") from None
    if kind == "RSA PRIVATE KEY":
        return _rsa_private_key(der)
    if kind != "PRIVATE KEY":
        raise UnusableKey(f"private_key is a {kind}, not a PRIVATE KEY")
    fields = _sequence(der)  # PrivateKeyInfo: version, AlgorithmIdentifier, OCTET STRING
    if len(fields) < 3 or fields[1][0] != 0x30 or fields[2][0] != 0x04:
        raise UnusableKey("private_key is not PKCS#8")
    algorithm = _children(fields[1][1])
    if not algorithm or algorithm[0] != (0x06, RSA_ENCRYPTION):
        raise UnusableKey("private_key is not an RSA key")
    return _rsa_private_key(fields[2][1])


# --------------------------------------------------------------------------- RS256

def sign_rs256(key: RsaKey, message: bytes) -> bytes:
    """RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017, 8.2.1), by the Chinese remainder theorem."""
    digest = SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    padding = key.size - len(digest) - 3
    if padding < 8:
        raise UnusableKey("the RSA key is too short for SHA-256")
    m = int.from_bytes(b"\x00\x01" + b"\xff" * padding + b"\x00" + digest, "big")
    m1, m2 = pow(m, key.dp, key.p), pow(m, key.dq, key.q)
    s = m2 + (key.qinv * (m1 - m2) % key.p) * key.q
    if pow(s, key.e, key.n) != m:  # a key whose parts disagree would sign garbage
        raise UnusableKey("the RSA key's parts are inconsistent")
    return s.to_bytes(key.size, "big")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assertion(account: Mapping[str, Any], now: float) -> str:
    """The signed JWT a service account trades for an access token."""
    token_uri = account.get("token_uri") or DEFAULT_TOKEN_URI
    header = {"alg": "RS256", "typ": "JWT"}
    if account.get("private_key_id"):
        header["kid"] = account["private_key_id"]
    claims = {"iss": account["client_email"], "scope": SCOPE, "aud": token_uri,
              "iat": int(now), "exp": int(now) + LIFETIME}
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    signature = sign_rs256(parse_private_key(account["private_key"]), signing_input.encode())
    return f"{signing_input}.{_b64url(signature)}"


def account_of(credentials: Any) -> dict[str, Any]:
    """The service account's JSON key, as the providers secret holds it (object or string)."""
    account = json.loads(credentials) if isinstance(credentials, str) else dict(credentials)
    if not account.get("client_email") or not account.get("private_key"):
        raise UnusableKey("credentials must be a service account's JSON key (with client_email and private_key)")
    return account


# --------------------------------------------------------------------------- the cached exchange

_tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()
_exchanges: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict] = weakref.WeakKeyDictionary()


def _cache_key(account: Mapping[str, Any]) -> tuple[str, str, str]:
    # The key's digest, not the key: a rotated key is another cache entry.
    key_digest = hashlib.sha256(str(account["private_key"]).encode()).hexdigest()
    return str(account["client_email"]), str(account.get("token_uri") or DEFAULT_TOKEN_URI), key_digest


def _cached(key: tuple[str, str, str]) -> str | None:
    with _tokens_lock:
        found = _tokens.get(key)
    if found and found[1] - REFRESH_MARGIN > time.time():
        return found[0]
    return None


def forget_tokens() -> None:
    """A SnapStart restore: the snapshot's tokens may be long expired."""
    with _tokens_lock:
        _tokens.clear()


def forget_token(credentials: Any) -> None:
    """Drop one account's token: Vertex refused it (revoked or expired early)."""
    with _tokens_lock:
        _tokens.pop(_cache_key(account_of(credentials)), None)


async def access_token(credentials: Any, *, timeout: float = 30.0) -> str:
    """A valid access token for the service account: cached, else exchanged. Concurrent
    requests share the one exchange in flight, its token or its failure: a token endpoint
    that hangs costs them one timeout together, not one each in turn."""
    try:
        account = account_of(credentials)
    except (ValueError, TypeError) as exc:
        reason = exc if isinstance(exc, UnusableKey) else "it is not a JSON object"
        raise GatewayError(502, f"Vertex AI credentials are unusable: {reason}", error_type="api_error") from None
    key = _cache_key(account)
    token = _cached(key)
    if token:
        return token
    loop = asyncio.get_running_loop()
    in_flight = _exchanges.setdefault(loop, {})
    task = in_flight.get(key)
    if task is None:
        task = in_flight[key] = loop.create_task(_exchange_and_keep(key, account, timeout))
        task.add_done_callback(lambda done: _exchange_done(in_flight, key, done))
    # Shielded: a request that gives up does not cancel the exchange the others wait for.
    return await asyncio.shield(task)


def _exchange_done(in_flight: dict, key: tuple[str, str, str], task: asyncio.Task) -> None:
    if in_flight.get(key) is task:
        del in_flight[key]
    if not task.cancelled():
        task.exception()  # retrieved: every waiter may have gone, and it is theirs to report


async def _exchange_and_keep(key: tuple[str, str, str], account: Mapping[str, Any], timeout: float) -> str:
    token, expires_in = await _exchange(account, timeout)
    with _tokens_lock:
        _tokens[key] = (token, time.time() + expires_in)
    return token


async def _exchange(account: Mapping[str, Any], timeout: float) -> tuple[str, float]:
    try:
        jwt = assertion(account, time.time())
    except UnusableKey as exc:
        raise GatewayError(502, f"Vertex AI credentials are unusable: {exc}", error_type="api_error") from None
    http = anthropic_api.client()
    request = http.build_request(
        "POST", account.get("token_uri") or DEFAULT_TOKEN_URI, timeout=timeout,
        headers={"content-type": "application/x-www-form-urlencoded", "accept": "application/json"},
        content=urlencode({"grant_type": GRANT_TYPE, "assertion": jwt}).encode())
    response = await http.send(request, stream=True)
    raw = await response.aread()
    await response.aclose()
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = {}
    answer = answer if isinstance(answer, dict) else {}
    if response.status_code >= 300 or not isinstance(answer.get("access_token"), str):
        said = answer.get("error_description") or answer.get("error") or f"HTTP {response.status_code}"
        status = 529 if response.status_code in (503, 529) else 502
        raise GatewayError(status, f"Vertex AI's token exchange failed: {str(said)[:300]}",
                           error_type="overloaded_error" if status == 529 else "api_error")
    expires_in = answer.get("expires_in")
    return answer["access_token"], float(expires_in) if isinstance(expires_in, (int, float)) else LIFETIME
