"""Gateway settings, read once from the environment.

Everything an operator can tune is here, with the default a production
deployment should start from; nothing else in the package reads os.environ.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def _bool(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    keys_secret_id: str
    providers_secret_id: str
    usage_table: str
    # How long a loaded keys secret is trusted before it is fetched again:
    # the longest a revoked key keeps working while Secrets Manager answers.
    key_cache_ttl: float = 60.0
    # A secret is fetched at most once per gap: an unknown key may trigger a
    # refresh (it could be brand new), but a burst of random keys, or an
    # outage, cannot become a burst of Secrets Manager calls.
    secret_refresh_gap: float = 5.0
    # When Secrets Manager fails, cached keys keep serving until they are this
    # old, never longer: the longest a revoked key keeps working, outages included.
    key_max_staleness: float = 900.0
    providers_cache_ttl: float = 300.0
    # Keys are spread over this many secrets by digest (keys/shards.py); 1 is the
    # keys secret alone. Change it after `gateway-admin keys reshard --shards N`.
    key_shards: int = 1
    max_body_bytes: int = 10 * 1024 * 1024
    # Every upstream attempt ends before API Gateway's 29 s integration timeout.
    request_deadline: float = 27.0
    # A stream is read to its end (even after the client left, to meter it) for at most this long.
    stream_timeout: float = 600.0
    usage_ttl_days: int = 400
    # SQS queue for ledger entries DynamoDB would not take (gateway-admin usage replay).
    ledger_queue_url: str | None = None
    # @edenai ranking (routing.POLICIES) and the circuit breaker that drops failing models.
    router_policy: str = "cheapest"
    breaker_threshold: int = 3
    breaker_cooldown: float = 30.0
    # Prompts and completions stay out of the logs unless the operator asks for them.
    log_prompts: bool = False
    # Under the Lambda Web Adapter an invocation ends with its response, and a frozen
    # environment would hold (or, if reclaimed, lose) a ledger write still under way:
    # there, a response ends only once its usage is written (template.yaml sets it).
    meter_before_response_end: bool = False
    # Under uvicorn: a request must arrive whole (headers and body) within this many seconds.
    request_read_timeout: float = 30.0
    # Under uvicorn: ledger entries waiting for the table past this many go to the fallback
    # queue instead; at shutdown, work still metering after shutdown_grace seconds is cut
    # short and its entries go there too (metering/group_commit.py).
    ledger_max_backlog: int = 1024
    shutdown_grace: float = 10.0
    # Observability (handler/observe/telemetry.py): the `service` dimension and log field, the
    # CloudWatch namespace of the metrics, and the share of a key's monthly_usd past which
    # its requests count in KeySpendOverShare (the per-key spend alarm).
    service_name: str = "edenai-gateway"
    metrics_namespace: str = "EdenAIGateway"
    key_spend_alert_share: float = 0.8

    def __post_init__(self) -> None:
        from .pipeline.routing import POLICIES

        if not 0 < self.key_spend_alert_share <= 1:
            raise ValueError(f"GATEWAY_KEY_SPEND_ALERT_SHARE is a share in (0, 1], not {self.key_spend_alert_share}")
        if not 1 <= self.key_shards <= 4096:
            raise ValueError("GATEWAY_KEY_SHARDS must be between 1 and 4096")
        if self.key_max_staleness < self.key_cache_ttl:
            raise ValueError("GATEWAY_KEY_MAX_STALENESS must be at least GATEWAY_KEY_CACHE_TTL")
        if self.router_policy not in POLICIES:
            raise ValueError(f"GATEWAY_ROUTER_POLICY must be one of {', '.join(POLICIES)}, not {self.router_policy!r}")

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            keys_secret_id=os.environ.get("GATEWAY_KEYS_SECRET_ID", "gateway/keys"),
            providers_secret_id=os.environ.get("GATEWAY_PROVIDERS_SECRET_ID", "gateway/providers"),
            usage_table=os.environ.get("GATEWAY_USAGE_TABLE", "gateway-usage"),
            key_cache_ttl=_float("GATEWAY_KEY_CACHE_TTL", 60.0),
            secret_refresh_gap=_float("GATEWAY_SECRET_REFRESH_GAP", 5.0),
            key_max_staleness=_float("GATEWAY_KEY_MAX_STALENESS", 900.0),
            providers_cache_ttl=_float("GATEWAY_PROVIDERS_CACHE_TTL", 300.0),
            key_shards=_int("GATEWAY_KEY_SHARDS", 1),
            max_body_bytes=_int("GATEWAY_MAX_BODY_BYTES", 10 * 1024 * 1024),
            request_deadline=_float("GATEWAY_REQUEST_DEADLINE", 27.0),
            stream_timeout=_float("GATEWAY_STREAM_TIMEOUT", 600.0),
            usage_ttl_days=_int("GATEWAY_USAGE_TTL_DAYS", 400),
            ledger_queue_url=os.environ.get("GATEWAY_LEDGER_QUEUE_URL") or None,
            router_policy=os.environ.get("GATEWAY_ROUTER_POLICY") or "cheapest",
            breaker_threshold=_int("GATEWAY_BREAKER_THRESHOLD", 3),
            breaker_cooldown=_float("GATEWAY_BREAKER_COOLDOWN", 30.0),
            log_prompts=_bool("GATEWAY_LOG_PROMPTS"),
            meter_before_response_end=_bool("GATEWAY_METER_BEFORE_RESPONSE_END"),
            request_read_timeout=_float("GATEWAY_REQUEST_READ_TIMEOUT", 30.0),
            ledger_max_backlog=_int("GATEWAY_LEDGER_MAX_BACKLOG", 1024),
            shutdown_grace=_float("GATEWAY_SHUTDOWN_GRACE", 10.0),
            service_name=os.environ.get("GATEWAY_SERVICE_NAME") or "edenai-gateway",
            metrics_namespace=os.environ.get("GATEWAY_METRICS_NAMESPACE") or "EdenAIGateway",
            key_spend_alert_share=_float("GATEWAY_KEY_SPEND_ALERT_SHARE", 0.8),
        )
