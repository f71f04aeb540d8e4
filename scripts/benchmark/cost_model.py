"""The stack's monthly AWS bill, from AWS's list prices and the gateway's measured per-request figures.

Pure: `monthly_bill` takes a request count, the stack's shape (`Stack`, read from
template.yaml by scripts/benchmark/cost.py) and the measured figures (`Measured`),
and returns dollars per component. `smallest_memory` picks the default memory
size from the measured CPU, latency and RSS. Prices are us-east-1 list prices
without free tiers (an account's free tier is shared by everything in it),
each with the AWS page it comes from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MONTH_S = 730 * 3600  # AWS's pricing examples count a month as 730 hours
MB_PER_VCPU = 1769  # "at 1,769 MB, a function has the equivalent of one vCPU" (Lambda, Configuring memory)
LAMBDA_MEMORY_DOC = "https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html"


@dataclass(frozen=True)
class Price:
    usd: float
    per: str
    source: str


PRICES = {
    "lambda_request": Price(0.20 / 1e6, "request", "https://aws.amazon.com/lambda/pricing/"),
    "lambda_gb_s_arm64": Price(0.0000133334, "GB-second (arm64, first 7.5 billion)",
                               "https://aws.amazon.com/lambda/pricing/"),
    "snapstart_cache_gb_s": Price(0.0000015046, "GB-second cached, per version (minimum 3 hours)",
                                  "https://aws.amazon.com/lambda/pricing/ (SnapStart)"),
    "snapstart_restore_gb": Price(0.0001397998, "GB restored", "https://aws.amazon.com/lambda/pricing/ (SnapStart)"),
    "http_api_request": Price(1.00 / 1e6, "request (first 300 million, 512 KB units)",
                              "https://aws.amazon.com/api-gateway/pricing/"),
    "rest_api_request": Price(3.50 / 1e6, "request (first 333 million)", "https://aws.amazon.com/api-gateway/pricing/"),
    "dynamodb_wru": Price(0.625 / 1e6, "write request unit (on-demand)",
                          "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "dynamodb_storage_gb": Price(0.25, "GB-month", "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "dynamodb_pitr_gb": Price(0.20, "GB-month (continuous backups)", "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "cw_metric": Price(0.30, "metric-month (first 10,000; prorated by the hour it is sent)",
                       "https://aws.amazon.com/cloudwatch/pricing/"),
    "cw_alarm_metric": Price(0.10, "standard-resolution alarm metric-month", "https://aws.amazon.com/cloudwatch/pricing/"),
    "cw_dashboard": Price(3.00, "dashboard-month (beyond the account's 3 free)",
                          "https://aws.amazon.com/cloudwatch/pricing/"),
    "cw_insight_rule": Price(0.50, "Contributor Insights rule-month", "https://aws.amazon.com/cloudwatch/pricing/"),
    "cw_logs_ingest_gb": Price(0.50, "GB ingested (standard; Lambda's vended logs' first tier)",
                               "https://aws.amazon.com/cloudwatch/pricing/"),
    "cw_logs_store_gb": Price(0.03, "GB-month stored", "https://aws.amazon.com/cloudwatch/pricing/"),
    "secret": Price(0.40, "secret-month", "https://aws.amazon.com/secrets-manager/pricing/"),
    "secrets_call": Price(0.05 / 10_000, "API call", "https://aws.amazon.com/secrets-manager/pricing/"),
    "sqs_request": Price(0.40 / 1e6, "request (standard queue)", "https://aws.amazon.com/sqs/pricing/"),
    "xray_trace": Price(5.00 / 1e6, "trace recorded", "https://aws.amazon.com/xray/pricing/"),
}


@dataclass(frozen=True)
class Stack:
    """What template.yaml deploys, as far as the bill goes."""

    memory_mb: int
    snapstart: bool
    versions_kept: int  # scripts/deploy --keep-versions: each SnapStart version's snapshot is cached
    secrets: int
    alarm_metrics: int
    dashboards: int
    insight_rules: int
    custom_metrics: int  # series the gateway sends while it has traffic (service + version)
    api: str = "http"  # http (buffered mode) | rest (streaming mode)
    tracing: bool = True
    log_retention_days: int = 30
    usage_ttl_days: int = 400


@dataclass(frozen=True)
class Measured:
    """Per-request and per-start figures; scripts/benchmark/cost.py says what measured each."""

    answer_s: float  # the model's time, which the function waits through
    cpu_ms: float  # the gateway's CPU per request at a full vCPU
    added_ms: float  # the gateway's added latency at a full vCPU (CPU and waits)
    write_ms: float  # the usage write after the response, inside the invocation
    function_log_bytes: float  # the request line (with its metrics) and Lambda's start/report records
    access_log_bytes: float  # API Gateway's access log line
    dynamodb_wru: float  # write request units per request
    record_bytes: float  # the usage record kept for usage_ttl_days
    secrets_calls_per_start: int
    key_cache_ttl_s: float
    providers_cache_ttl_s: float
    init_s: float  # an on-demand init at a full vCPU
    environment_hours: float = 2.0  # how long Lambda keeps an environment (not published; an assumption)


def cpu_share(memory_mb: int) -> float:
    return min(1.0, memory_mb / MB_PER_VCPU)


def added_latency_ms(memory_mb: int, cpu_ms: float, added_ms: float) -> float:
    """The added latency at a memory size: its CPU part stretched by the CPU share, its waits as they are."""
    return added_ms - cpu_ms + cpu_ms / cpu_share(memory_mb)


def smallest_memory(*, cpu_ms: float, added_ms: float, peer_added_ms: float, peak_rss_mb: float,
                    latency_ratio: float = 0.5, headroom: float = 2.0, step: int = 64, floor: int = 128) -> int:
    """The smallest size (a multiple of `step` MB) whose added latency is at most `latency_ratio` of
    the peer's (LiteLLM Proxy's) and whose memory is `headroom` times the peak RSS under load."""
    memory = max(floor, math.ceil(peak_rss_mb * headroom / step) * step)
    while added_latency_ms(memory, cpu_ms, added_ms) > latency_ratio * peer_added_ms:
        memory += step
    return memory


def environments(requests: float, busy_s: float) -> int:
    """Warm environments: the mean concurrency, rounded up (one request per environment at a time)."""
    return math.ceil(requests * busy_s / MONTH_S) if requests else 0


def xray_traces(requests: float) -> float:
    """X-Ray's default sampling rule, traffic spread evenly: the first request each second, 5% of the rest."""
    rate = requests / MONTH_S
    return min(requests, MONTH_S * (min(rate, 1.0) + 0.05 * max(0.0, rate - 1.0)))


def monthly_bill(requests: float, stack: Stack, m: Measured) -> dict[str, float]:
    """Dollars per component for a month with `requests` requests, each a `m.answer_s` answer."""
    p = {name: price.usd for name, price in PRICES.items()}
    gb = stack.memory_mb / 1024
    share = cpu_share(stack.memory_mb)
    busy_s = m.answer_s + added_latency_ms(stack.memory_mb, m.cpu_ms, m.added_ms) / 1000 + m.write_ms / 1000
    envs = environments(requests, busy_s)
    starts = min(requests, envs * 730 / m.environment_hours)
    per_env = requests / envs if envs else 0
    refreshes = envs * (min(per_env, MONTH_S / m.key_cache_ttl_s) + min(per_env, MONTH_S / m.providers_cache_ttl_s))
    init_gb_s = 0 if stack.snapstart else starts * m.init_s / share * gb
    log_gb = requests * (m.function_log_bytes + m.access_log_bytes) / 1e9
    retained_months = stack.usage_ttl_days / (730 / 24)
    table_gb = requests * retained_months * m.record_bytes / 1e9  # once the TTL has come round
    traffic_hours = min(730.0, requests)  # hours in which a metric is sent, traffic spread evenly
    return {
        "Lambda requests and duration": requests * p["lambda_request"]
        + (requests * busy_s * gb + init_gb_s) * p["lambda_gb_s_arm64"],
        "API Gateway": requests * p[f"{stack.api}_api_request"],
        "DynamoDB writes": requests * m.dynamodb_wru * p["dynamodb_wru"],
        "DynamoDB storage and backups (after the TTL)": table_gb * (p["dynamodb_storage_gb"] + p["dynamodb_pitr_gb"]),
        "CloudWatch metrics": stack.custom_metrics * traffic_hours / 730 * p["cw_metric"],
        "CloudWatch logs": log_gb * (p["cw_logs_ingest_gb"] + p["cw_logs_store_gb"] * stack.log_retention_days / 30),
        "CloudWatch alarms": stack.alarm_metrics * p["cw_alarm_metric"],
        "CloudWatch dashboard and rules": stack.dashboards * p["cw_dashboard"]
        + stack.insight_rules * p["cw_insight_rule"],
        "Secrets Manager": stack.secrets * p["secret"]
        + (starts * m.secrets_calls_per_start + refreshes) * p["secrets_call"],
        "SnapStart": (stack.versions_kept * gb * MONTH_S * p["snapstart_cache_gb_s"]
                      + starts * gb * p["snapstart_restore_gb"]) if stack.snapstart else 0.0,
        "SQS (only usage DynamoDB refused)": 0.0 * p["sqs_request"],
        "X-Ray": xray_traces(requests) * p["xray_trace"] if stack.tracing else 0.0,
    }
