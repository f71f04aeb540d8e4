"""Faults lose nothing: DynamoDB trouble is retried, then queued, then replayed exactly once.

When the limit check cannot be made, keys with limits are refused (fail
closed, 503) and keys without limits are served and metered through the
fallback queue.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

import anthropic
import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from handler.metering.ledger import Ledger
from handler.metering.items import LedgerEntry
from handler.protocol.usage import Usage
from tests.support.stack import new_stack, serve

CLAUDE = "anthropic/claude-sonnet-4-5"
HELLO = [{"role": "user", "content": "hello there"}]


def dead_dynamodb():
    """A DynamoDB client whose endpoint refuses connections: DynamoDB is down."""
    return boto3.client("dynamodb", endpoint_url="http://127.0.0.1:9",
                        config=Config(retries={"max_attempts": 1}, connect_timeout=0.2, read_timeout=0.2))


@pytest.fixture
def queue_url(moto_endpoint):
    return boto3.client("sqs").create_queue(QueueName=f"ledger-fallback-{uuid.uuid4().hex[:8]}")["QueueUrl"]


@pytest.fixture
def outage(moto_endpoint, fake, queue_url):
    """A gateway whose DynamoDB is down while SQS works."""
    stack = new_stack(fake.url, ledger_queue_url=queue_url)
    ledger = Ledger(stack.settings.usage_table, queue_url=queue_url, dynamodb=dead_dynamodb, backoff=0.001)
    return stack, ledger


def entry(key_id, request_id="req_1", tokens=(10, 5)):
    return LedgerEntry(key_id=key_id, request_id=request_id, at=datetime.now(timezone.utc).isoformat(),
                       requested_model=CLAUDE, served_model=CLAUDE, attempts=[], usage=Usage(*tokens),
                       cost_usd=Decimal("0.0001"), priced=True, stream=False, status="ok")


def test_a_key_without_limits_is_served_and_metered_through_the_queue(outage, fake):
    stack, ledger = outage
    key = stack.add_key()
    with serve(stack, ledger=ledger) as server:
        client = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0)
        client.messages.create(model=CLAUDE, max_tokens=20, messages=HELLO)
        with client.messages.stream(model=CLAUDE, max_tokens=20, messages=HELLO) as stream:
            stream.get_final_message()
    assert stack.items(key, "REQ#") == []
    counts = stack.ledger(queue_url=ledger.queue_url).replay(wait_seconds=0)
    assert counts == {"written": 2, "duplicate": 0, "failed": 0}
    month = stack.month(key)
    reported = fake.reported_totals()
    assert (month["requests"], month["input_tokens"], month["output_tokens"]) == \
        (2, reported["input_tokens"], reported["output_tokens"])
    assert stack.ledger(queue_url=ledger.queue_url).replay(wait_seconds=0)["written"] == 0


def test_a_key_with_limits_is_refused_with_503_when_limits_cannot_be_checked(outage, fake):
    stack, ledger = outage
    key = stack.add_key(limits={"rpm": 100})
    with serve(stack, ledger=ledger) as server:
        response = httpx.post(f"{server.url}/v3/v1/messages", headers={"x-api-key": key},
                              json={"model": CLAUDE, "max_tokens": 10, "messages": HELLO})
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "api_error"
    assert response.headers["retry-after"]
    assert fake.count() == 0


def test_a_replayed_entry_that_was_already_written_counts_once(stack, api_key, queue_url):
    ledger = stack.ledger(queue_url=queue_url)
    written = entry(stack.key_id(api_key))
    ledger.write(written)  # the write succeeded, but (say) its answer was lost
    boto3.client("sqs").send_message(QueueUrl=queue_url, MessageBody=written.to_json())
    assert ledger.replay(wait_seconds=0) == {"written": 0, "duplicate": 1, "failed": 0}
    assert stack.month(api_key)["requests"] == 1


class Throttled:
    """A DynamoDB client that throttles the first `times` ledger transactions."""

    def __init__(self, real, times):
        self._real, self.remaining = real, times

    def transact_write_items(self, **kwargs):
        if self.remaining:
            self.remaining -= 1
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}},
                              "TransactWriteItems")
        return self._real.transact_write_items(**kwargs)

    def __getattr__(self, name):
        return getattr(self._real, name)


def test_throttling_is_retried_with_backoff(stack, api_key):
    throttled = Throttled(boto3.client("dynamodb"), times=2)
    sleeps = []
    ledger = stack.ledger(dynamodb=lambda: throttled, sleep=sleeps.append, backoff=0.05)
    assert ledger.record(entry(stack.key_id(api_key))) == "written"
    assert sleeps == [0.05, 0.2]
    assert stack.month(api_key)["requests"] == 1


def test_an_entry_neither_dynamodb_nor_the_queue_take_is_logged_whole(stack, api_key, caplog):
    ledger = Ledger(stack.settings.usage_table, dynamodb=dead_dynamodb, queue_url=None, backoff=0.001)
    assert ledger.record(entry(stack.key_id(api_key), request_id="req_logged")) == "logged"
    logged = next(r for r in caplog.records if "LEDGER_ENTRY_UNWRITTEN" in r.getMessage())
    assert LedgerEntry.from_json(logged.getMessage().split(" ", 1)[1]).request_id == "req_logged"


def test_gateway_admin_usage_replay_writes_the_queue_back(stack, api_key, queue_url):
    queued = entry(stack.key_id(api_key), request_id="req_queued", tokens=(7, 3))
    boto3.client("sqs").send_message(QueueUrl=queue_url, MessageBody=queued.to_json())
    env = {**os.environ, "GATEWAY_USAGE_TABLE": stack.settings.usage_table, "GATEWAY_LEDGER_QUEUE_URL": queue_url}
    result = subprocess.run([sys.executable, "-m", "handler.admin", "usage", "replay", "--json"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"written": 1, "duplicate": 0, "failed": 0}
    assert stack.month(api_key)["input_tokens"] == 7
