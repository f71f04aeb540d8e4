"""SigV4 as botocore's `SigV4Auth.add_auth` signs it, minus its per-call setup: the ledger's write, Bedrock's calls.

Every usage write is the same POST to the same endpoint with the same few headers (and every
call to a Bedrock model the same POST to that model's URL), and botocore redoes for each one
what does not change between them: an `AWSRequest` and its
prepared copy, the URL split three times (path, query, host), the headers copied into
case-insensitive maps twice, and the signing key derived from the secret with four HMACs.
Here the path, query and host are worked out once per endpoint (by botocore's own
functions), the signing key once per secret key and UTC day, and a request's headers are
canonicalised straight from the dict the `before-call` hooks filled. The result is what
`add_auth` gives, headers and their order included (tests/test_ledger_signing.py compares
the two over many inputs); headers this shortcut does not model (one that SigV4 itself
sets or rewrites, two names differing only in case, a name with spaces around it, a value
that is not an ASCII string) are signed by `SigV4Auth` itself.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any, Callable
from urllib.parse import urlsplit

from botocore.auth import SIGNED_HEADERS_BLACKLIST, SIGV4_TIMESTAMP, SigV4Auth, _host_from_url
from botocore.awsrequest import AWSRequest

_ALGORITHM = "AWS4-HMAC-SHA256"
_NOT_SIGNED = frozenset(SIGNED_HEADERS_BLACKLIST)
# Headers `add_auth` sets, deletes or reads itself (and `host`, which it derives from the URL
# only when absent): a request carrying one is signed by botocore.
_SIGV4_OWN = frozenset({"authorization", "date", "x-amz-date", "x-amz-security-token",
                        "x-amz-content-sha256", "host"})


class Signer:
    """Signs POSTs to one endpoint for one region and service."""

    def __init__(self, url: str, region: str, service: str,
                 *, clock: Callable[[], float] = time.time) -> None:
        self._url, self._region, self._service = url, region, service
        self._clock = clock  # the wall clock botocore's get_current_datetime reads
        self._stamp: tuple[int, str] = (-1, "")  # (second, its X-Amz-Date): writes in one second share it
        botocore_auth = SigV4Auth(None, service, region)
        parts = urlsplit(url)
        self._request_head = "POST\n{}\n{}\n".format(
            botocore_auth._normalize_url_path(parts.path),  # noqa: SLF001 - botocore's own rules
            botocore_auth._canonical_query_string_url(parts))  # noqa: SLF001
        self._host = _host_from_url(url)
        self._scope_tail = f"/{region}/{service}/aws4_request"
        # (secret key, yyyymmdd, signing key): one tuple, replaced whole, so writer threads
        # never pair one day's key with another's
        self._key: tuple[str, str, bytes] = ("", "", b"")

    def signed(self, headers: dict[str, Any], body: bytes, credentials: Any) -> dict[str, str]:
        """`headers` with X-Amz-Date, X-Amz-Security-Token (temporary credentials) and
        Authorization added, as `SigV4Auth(credentials, ...).add_auth` adds them."""
        canonical = self._canonical_headers(headers)
        if canonical is None:
            return self._by_botocore(headers, body, credentials)
        timestamp = self._timestamp()
        signed = dict(headers)
        signed["X-Amz-Date"] = timestamp
        canonical["x-amz-date"] = timestamp
        token = credentials.token
        if token:
            signed["X-Amz-Security-Token"] = token
            canonical["x-amz-security-token"] = " ".join(token.split())
        canonical["host"] = self._host
        names = sorted(canonical)
        signed_names = ";".join(names)
        request = "".join((self._request_head,
                           "".join(f"{name}:{canonical[name]}\n" for name in names),
                           "\n", signed_names, "\n", hashlib.sha256(body).hexdigest()))
        day = timestamp[:8]
        scope = day + self._scope_tail
        to_sign = f"{_ALGORITHM}\n{timestamp}\n{scope}\n{hashlib.sha256(request.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(credentials.secret_key, day), to_sign.encode(),
                             hashlib.sha256).hexdigest()
        signed["Authorization"] = (f"{_ALGORITHM} Credential={credentials.access_key}/{scope}, "
                                   f"SignedHeaders={signed_names}, Signature={signature}")
        return signed

    def _canonical_headers(self, headers: dict[str, Any]) -> dict[str, str] | None:
        """Lower-cased name -> trimmed value of each header SigV4 signs; None for headers
        this shortcut leaves to botocore."""
        canonical: dict[str, str] = {}
        seen: set[str] = set()
        for name, value in headers.items():
            lower = name.lower()
            if (lower in seen or lower in _SIGV4_OWN or type(value) is not str or type(name) is not str
                    or not value.isascii() or lower != lower.strip()):
                return None
            seen.add(lower)
            if lower not in _NOT_SIGNED:
                canonical[lower] = " ".join(value.split())  # SigV4's Trimall
        return canonical

    def _timestamp(self) -> str:
        """X-Amz-Date for now, as `add_auth` writes it (the second, UTC), formatted once a second."""
        second = int(self._clock())
        cached, stamp = self._stamp
        if cached != second:
            stamp = time.strftime(SIGV4_TIMESTAMP, time.gmtime(second))
            self._stamp = (second, stamp)
        return stamp

    def _signing_key(self, secret: str, day: str) -> bytes:
        """kSigning = HMAC chain over the day, region, service and "aws4_request": one per
        secret key and UTC day, not four HMACs a request."""
        cached_secret, cached_day, key = self._key
        if cached_secret != secret or cached_day != day or not key:
            key = f"AWS4{secret}".encode()
            for part in (day, self._region, self._service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._key = (secret, day, key)
        return key

    def _by_botocore(self, headers: dict[str, Any], body: bytes, credentials: Any) -> dict[str, str]:
        request = AWSRequest(method="POST", url=self._url, data=body, headers=headers)
        SigV4Auth(credentials, self._service, self._region).add_auth(request)
        return dict(request.headers.items())
