"""AWS round trips per request, counted with a botocore event hook.

Metering costs one DynamoDB round trip after the upstream call for a key
without limits and one before plus one after for a key with limits; a warm
process makes no Secrets Manager call at all.
"""

from __future__ import annotations

from collections import Counter

import anthropic
import pytest

from handler import aws

CLAUDE = "anthropic/claude-sonnet-4-5"
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def calls():
    counted: Counter = Counter()

    def count(event_name, **_):
        counted[event_name.split(".", 1)[1]] += 1  # "before-call.dynamodb.UpdateItem" -> "dynamodb.UpdateItem"

    def count_records(params, **_):
        for item in params.get("TransactItems", []):
            if str(item.get("Put", {}).get("Item", {}).get("sk", {}).get("S", "")).startswith("REQ#"):
                counted["request records"] += 1

    clients = [aws.client("dynamodb"), aws.client("secretsmanager")]
    for client in clients:
        client.meta.events.register("before-call.*", count)
    clients[0].meta.events.register("before-parameter-build.dynamodb.TransactWriteItems", count_records)
    yield counted
    for client in clients:
        client.meta.events.unregister("before-call.*", count)
    clients[0].meta.events.unregister("before-parameter-build.dynamodb.TransactWriteItems", count_records)


def run(server, stack, key, count, stream=False, already=0):
    client = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0)
    for _ in range(count):
        if stream:
            with client.messages.stream(model=CLAUDE, max_tokens=10, messages=HELLO) as s:
                s.get_final_message()
        else:
            client.messages.create(model=CLAUDE, max_tokens=10, messages=HELLO)
    assert len(stack.records(key, already + count)) == already + count


@pytest.mark.parametrize("stream", [False, True])
def test_a_key_without_limits_costs_one_dynamodb_call_and_no_secrets_manager_call(server, stack, calls, stream):
    key = stack.add_key()
    run(server, stack, key, 1, stream)  # warm: secrets loaded once
    calls.clear()
    run(server, stack, key, 10, stream, already=1)
    # Group commit may write two requests' entries in one transaction when they meet (a
    # loaded machine): count the records each call carries, not the calls that arrived.
    transactions = calls.pop("dynamodb.TransactWriteItems")
    assert calls == Counter({"request records": 10}), "one record per request, and no other AWS call"
    assert 1 <= transactions <= 10, "at most one DynamoDB round trip per request"


def test_a_key_with_limits_costs_one_call_before_and_one_after(server, stack, calls):
    key = stack.add_key(limits={"rpm": 1000, "monthly_tokens": 10**9})
    run(server, stack, key, 1)
    calls.clear()
    run(server, stack, key, 10, already=1)
    # A new minute's first request needs a second UpdateItem to open the window.
    reservations = 11 if calls["dynamodb.UpdateItem"] == 11 else 10
    transactions = calls.pop("dynamodb.TransactWriteItems")
    assert calls == Counter({"dynamodb.UpdateItem": reservations, "request records": 10}), \
        "every AWS call of 10 warm requests, nothing else (no read per request, no Secrets Manager call)"
    assert 1 <= transactions <= 10, "at most one DynamoDB write after each request (group commit may share one)"
