"""The stack's monthly AWS bill at 0, 100k, 1M and 10M requests: `python -m scripts.benchmark.cost`.

Reads template.yaml (its defaults: memory, SnapStart, alarms, dashboard, secrets)
and the gateway's metric set (handler/observe/observation.py), takes the
measured per-request figures below (each with the command that measured it),
and prints the README's cost table (scripts/benchmark/cost_model.py computes it).
`--memory`, `--snapstart`, `--streaming` and `--answer-s` price another configuration.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from .cost_model import (LAMBDA_MEMORY_DOC, PRICES, Measured, Stack, added_latency_ms, monthly_bill,
                         smallest_memory)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
VOLUMES = (0, 100_000, 1_000_000, 10_000_000)

# Measured on 2026-12-07 11:13 UTC side by side (`scripts/bench --targets direct,gateway,proxy,lambda,streaming
# --rounds 3 --requests 200 --cold-starts 0 --aws-requests 10`, 2 cores, loopback, metering on, Anthropic path),
# in the configuration `template.yaml` deploys by default, buffered mode (awslambdaric running the handler in
# the environment Lambda sets, Lambda's side in a process of its own, each request after the last one's usage
# write): the function's CPU per request (process CPU over a phase / requests), its added p50 at c=1, LiteLLM
# Proxy's, and the function's peak RSS under load. The same with `--model openai/gpt-4o-mini` at 11:16 UTC
# chose 512 MB too, at its edge (9.7 ms against 9.8).
BENCH = {"cpu_ms": 2.4, "added_ms": 1.62, "peer_added_ms": 16.46, "peak_rss_mb": 92.4,
         "litellm_path_peak_rss_mb": 320.0}

# One request's figures and what measured each.
MEASURED = Measured(
    answer_s=5.0,  # the question asked: 5 s answers
    cpu_ms=BENCH["cpu_ms"],  # scripts/bench --json bench.json (process CPU / requests)
    added_ms=BENCH["added_ms"],  # scripts/bench --json bench.json (added p50, c=1)
    write_ms=15.0,  # assumed: a TransactWriteItems in the region (~9 ms of moto's CPU here; not AWS's)
    function_log_bytes=0.0,  # filled in below: request line + Lambda's platform records
    access_log_bytes=0.0,  # filled in below: template.yaml's access log format, filled
    dynamodb_wru=6.0,  # scripts/bench: 1 TransactWriteItems per request (awscalls.py), 3 items < 1 KB, 2 WRU each
    record_bytes=584.0,  # the usage record, 484 B (items.request_record, DynamoDB's size rules) + 100 B per item
    secrets_calls_per_start=2,  # keys and providers secrets (scripts/bench: 0 calls on a warm process)
    key_cache_ttl_s=60.0,  # GATEWAY_KEY_CACHE_TTL
    providers_cache_ttl_s=300.0,  # GATEWAY_PROVIDERS_CACHE_TTL
    init_s=0.0,  # filled in below: CPU seconds at a full vCPU
)
# python -m scripts.benchmark.telemetry_cost: bytes of the request line (its metrics included) per request.
REQUEST_LINE_BYTES = 1546
# python -m scripts.benchmark.snapstart_init ARTIFACT --samples 3: the CPU of an on-demand init under
# awslambdaric (median), which Lambda's CPU share stretches; a SnapStart init took 6.45 s of CPU and 263 MB.
ON_DEMAND_INIT_S = 0.56
SAMPLE_ID = "8f5e3f1c-3b1e-4c1a-9d7e-2f4b5c6d7e8f"
TRACE = "Root=1-6759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
# Lambda's own records per invocation with LogFormat JSON (shapes from "Using the JSON log format",
# https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-advanced.html).
PLATFORM_RECORDS = [
    {"time": "2026-12-07T01:30:00.000Z", "type": "platform.start",
     "record": {"requestId": SAMPLE_ID, "version": "3", "tracing": {"spanId": "53995c3f42cd8ad8",
                                                                   "type": "X-Amzn-Trace-Id", "value": TRACE}}},
    {"time": "2026-12-07T01:30:05.021Z", "type": "platform.report",
     "record": {"requestId": SAMPLE_ID, "metrics": {"durationMs": 5021.42, "billedDurationMs": 5022,
                                                    "memorySizeMB": 512, "maxMemoryUsedMB": 98},
                "tracing": {"spanId": "53995c3f42cd8ad8", "type": "X-Amzn-Trace-Id", "value": TRACE},
                "status": "success"}},
]
ACCESS_LOG_VALUES = {"requestId": "Jd9sQgk1IAMEVxw=", "identity.sourceIp": "203.0.113.17",
                     "requestTime": "07/Dec/2026:01:30:00 +0000", "httpMethod": "POST", "path": "/v3/v1/messages",
                     "status": "200", "protocol": "HTTP/1.1", "responseLength": "1412", "responseLatency": "5031",
                     "integrationLatency": "5027", "integrationStatus": "200", "integrationErrorMessage": "-",
                     "integration.requestId": SAMPLE_ID}


def load_template(path: Path = TEMPLATE) -> dict:
    from cfnlint.decode import decode

    template, matches = decode(str(path))
    if template is None:
        raise ValueError(f"{path}: {matches}")
    return template


def alarm_metrics(alarm: dict) -> int:
    """Metrics an alarm is billed for: one, or each metric a math expression reads."""
    queries = alarm.get("Metrics")
    return sum(1 for q in queries if "MetricStat" in q) if queries else 1


def access_log_bytes(template: dict) -> int:
    """The HTTP API's access log line as template.yaml formats it, with a request's values."""
    line = template["Resources"]["HttpApiStageSettings"]["Properties"]["Stage"]["AccessLogSettings"]["Format"]
    for name, value in ACCESS_LOG_VALUES.items():
        line = line.replace(f"$context.{name}", value)
    return len(line.encode()) + 1


def stack_from_template(template: dict, *, versions_kept: int = 2, **overrides) -> Stack:
    """The billed shape of what template.yaml creates with its defaults (overrides: Stack fields)."""
    from handler.observe.observation import METRIC_UNITS

    resources = template["Resources"].values()
    parameters = template["Parameters"]
    kinds = [r["Type"] for r in resources]
    alarms = [r["Properties"] for r in resources if r["Type"] == "AWS::CloudWatch::Alarm"]
    stack = Stack(
        memory_mb=int(parameters["FunctionMemorySize"]["Default"]),
        snapstart=parameters["EnableSnapStart"]["Default"] == "true",
        versions_kept=versions_kept,
        secrets=kinds.count("AWS::SecretsManager::Secret"),
        alarm_metrics=sum(alarm_metrics(a) for a in alarms),
        dashboards=kinds.count("AWS::CloudWatch::Dashboard"),
        insight_rules=kinds.count("AWS::CloudWatch::InsightRule"),
        # By service, and AddedLatency by the version serving (Errors by version only on an unhandled exception).
        custom_metrics=len(METRIC_UNITS) + 1,
        tracing=parameters["TracingMode"]["Default"] == "Active",
        log_retention_days=int(parameters["LogRetentionDays"]["Default"]),
        usage_ttl_days=int(parameters["UsageRecordTtlDays"]["Default"]),
    )
    return replace(stack, **overrides)


def measured(template: dict) -> Measured:
    platform = sum(len(json.dumps(r, separators=(",", ":")).encode()) + 1 for r in PLATFORM_RECORDS)
    return replace(MEASURED, function_log_bytes=REQUEST_LINE_BYTES + platform,
                   access_log_bytes=access_log_bytes(template), init_s=ON_DEMAND_INIT_S)


def table(stack: Stack, m: Measured) -> str:
    bills = {n: monthly_bill(n, stack, m) for n in VOLUMES}
    heads = ["0", "100k", "1M", "10M"]
    rows = ["| component | " + " | ".join(heads) + " |", "| --- |" + " ---: |" * len(heads)]
    for component in bills[0]:
        rows.append(f"| {component} | " + " | ".join(f"{bills[n][component]:,.2f}" for n in VOLUMES) + " |")
    rows.append("| **total** | " + " | ".join(f"**{sum(bills[n].values()):,.2f}**" for n in VOLUMES) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory", type=int, help="MB (default: template.yaml's FunctionMemorySize)")
    parser.add_argument("--snapstart", choices=["true", "false"], help="default: template.yaml's EnableSnapStart")
    parser.add_argument("--keep-versions", type=int, default=2, help="SnapStart versions kept (scripts/deploy)")
    parser.add_argument("--streaming", action="store_true", help="streaming mode: the REST API's price")
    parser.add_argument("--answer-s", type=float, default=MEASURED.answer_s)
    args = parser.parse_args()
    template = load_template()
    overrides = {}
    if args.memory:
        overrides["memory_mb"] = args.memory
    if args.snapstart:
        overrides["snapstart"] = args.snapstart == "true"
    if args.streaming:
        overrides["api"] = "rest"
    stack = stack_from_template(template, versions_kept=args.keep_versions, **overrides)
    m = replace(measured(template), answer_s=args.answer_s)
    print(f"{stack}\n")
    print(table(stack, m))
    best = smallest_memory(cpu_ms=BENCH["cpu_ms"], added_ms=BENCH["added_ms"], peer_added_ms=BENCH["peer_added_ms"],
                           peak_rss_mb=BENCH["peak_rss_mb"])
    print(f"\nsmallest memory with added latency <= 0.5x LiteLLM Proxy's and 2x the peak RSS: {best} MB "
          f"(added {added_latency_ms(best, BENCH['cpu_ms'], BENCH['added_ms']):.1f} ms against "
          f"{0.5 * BENCH['peer_added_ms']:.2f}; CPU share {best}/{1769}: {LAMBDA_MEMORY_DOC})")
    print(f"log bytes per request: function {m.function_log_bytes:.0f}, API access log {m.access_log_bytes:.0f}")
    print("\nprices (us-east-1, no free tier):")
    for name, price in PRICES.items():
        print(f"  {name}: ${price.usd:.10g} per {price.per} ({price.source})")


if __name__ == "__main__":
    main()
