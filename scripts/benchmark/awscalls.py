"""DynamoDB and Secrets Manager calls, counted where the gateway makes them.

A botocore `before-call` hook on the handler's own clients (handler.aws)
sees every API call, retries included, without touching the gateway's code.
"""

from __future__ import annotations

from collections import Counter
from typing import Any


def count_aws_calls() -> Counter:
    """A Counter of "service.Operation" that grows with every call the gateway's clients make."""
    from handler import aws

    counted: Counter = Counter()

    def count(event_name: str, **_: Any) -> None:
        counted[event_name.split(".", 1)[1]] += 1  # before-call.dynamodb.UpdateItem

    for service in ("dynamodb", "secretsmanager"):
        aws.client(service).meta.events.register("before-call.*", count)
    return counted


def per_request(before: dict[str, int], after: dict[str, int], requests: int) -> dict[str, Any]:
    """Calls per request by service and by operation, from two snapshots of the counter."""
    delta = {name: after.get(name, 0) - before.get(name, 0) for name in set(before) | set(after)}
    delta = {name: count for name, count in delta.items() if count}
    by_service: dict[str, int] = {}
    for name, count in delta.items():
        service = name.split(".", 1)[0]
        by_service[service] = by_service.get(service, 0) + count
    return {
        "requests": requests,
        "dynamodb": by_service.get("dynamodb", 0) / requests if requests else None,
        "secretsmanager": by_service.get("secretsmanager", 0) / requests if requests else None,
        "operations": dict(sorted(delta.items())),
    }
