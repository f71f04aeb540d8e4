"""Anthropic's error envelope and status mapping.

Clients (the official SDKs, Claude Code) parse `{"type": "error", "error":
{"type", "message"}}` and pick their exception class from the HTTP status, so
every non-422 failure leaves the gateway in exactly that shape. A provider's message
relayed in one never carries a credential (`redact`).

Every error also says whether a retry can help (`x-should-retry`), as Claude
Code's own gateway does and as its client obeys: without it the client
retries a 401 for about three minutes. The Anthropic SDKs read the header
too, before their own status rules.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

ERROR_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


# Failures another model may not have: overload, rate limits, provider faults, timeouts.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 529})


SHOULD_RETRY_HEADER = "x-should-retry"


def should_retry(status: int) -> bool:
    """Whether the same request, sent again, may succeed: overload, rate limits, timeouts
    and faults may pass; a refusal of the request or of its key (400, 401, 403, 404, 413,
    422, a policy refusal...) will be given again."""
    return status in (408, 409, 429) or status >= 500


def should_retry_headers(status: int) -> dict[str, str]:
    """`x-should-retry` for an error of this status, where no one said otherwise."""
    return {SHOULD_RETRY_HEADER: "true" if should_retry(status) else "false"}


def error_type_for(status: int) -> str:
    if status in ERROR_TYPE_BY_STATUS:
        return ERROR_TYPE_BY_STATUS[status]
    return "invalid_request_error" if status < 500 else "api_error"


class GatewayError(Exception):
    """A failure the caller should see, already in Anthropic's terms."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        retryable: bool | None = None,
        by_provider: bool = True,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or error_type_for(status)
        self.headers = dict(headers or {})
        # Whether another model may succeed where this one failed (fallbacks).
        self.retryable = status in RETRYABLE_STATUSES if retryable is None else retryable
        # False for a failure the gateway or litellm decided without the provider: it says
        # nothing of the model's health (pipeline/breaker.py).
        self.by_provider = by_provider

    def body(self) -> dict:
        return error_body(self.error_type, self.message)


def error_body(error_type: str, message: str) -> dict:
    return {"type": "error", "error": {"type": error_type, "message": message}}


def is_body_validation(errors: Iterable[Mapping]) -> bool:
    """Whether a schema failure is the body's (the seed's 422 HTTPValidationError answers it)
    rather than a query or path parameter's (an Anthropic 400, like every other refusal)."""
    return all(tuple(error.get("loc") or ())[:1] == ("body",) for error in errors)


def validation_message(errors: Iterable[Mapping]) -> str:
    """A schema failure in Anthropic's words, each naming its field the way Anthropic does
    (`messages.0.content: Field required`); where it was (query, path, body) left out."""
    return "; ".join(f"{'.'.join(str(part) for part in tuple(error.get('loc') or ())[1:])}: {error.get('msg')}"
                     for error in errors)


_MAX_RELAYED_MESSAGE = 500


def redact(message: str, secrets: Iterable[str | None]) -> str:
    """A provider's message fit to relay: the call's credentials, and anything shaped like a
    key, replaced."""
    for secret in secrets:
        if secret and len(secret) >= 6:
            message = message.replace(secret, "[redacted]")
    # Anything that looks like a bearer or provider key, even one we do not know.
    message = re.sub(r"\b(sk-[A-Za-z0-9_-]{6,}|egw_[A-Za-z0-9_-]{6,})", "[redacted]", message)
    return message[:_MAX_RELAYED_MESSAGE]
