"""The ledger's aggregates are read whole, as DynamoDB answers them, even while a write lands.

DynamoDB applies an UpdateItem's actions to its item all at once: a strongly
consistent read sees the item before or after the update, never between.
moto applies the actions one by one to the live item, so tests/support/moto_dynamodb.py
makes its reads wait for the write and answer copies. Without that, a reader
that waits for the month to count its requests (the ADD of `requests` comes
first) could read the tokens of the requests before: a test saw "4/5 tokens
against 6/10". Here every ADD action is slowed, so the window moto would leave
open is wide enough to hit every time.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from moto.dynamodb.parsing.executors import AddExecutor

CLAUDE = "anthropic/claude-sonnet-4-5"
ACTION_SECONDS = 0.03


@pytest.fixture
def slow_updates(monkeypatch):
    """Each ADD of an UpdateExpression takes ACTION_SECONDS after it is applied to the item."""
    execute = AddExecutor.execute

    def slowly(self, item):
        execute(self, item)
        time.sleep(ACTION_SECONDS)

    monkeypatch.setattr(AddExecutor, "execute", slowly)


def two_requests(client) -> None:
    client.messages.create(model=CLAUDE, max_tokens=20, messages=[{"role": "user", "content": "one two three"}])
    with client.messages.stream(model=CLAUDE, max_tokens=20, messages=[{"role": "user", "content": "four"}]) as stream:
        stream.get_final_message()


def test_a_month_counting_its_requests_holds_their_tokens(slow_updates, client, stack, api_key, fake):
    two_requests(client)
    told = fake.reported_totals()
    month = stack.month(api_key, requests=2)  # a Query, as the tests read the ledger
    assert month.get("requests") == 2, f"the ledger counted {month.get('requests')} of 2 requests"
    assert (month.get("input_tokens"), month.get("output_tokens")) == (told["input_tokens"], told["output_tokens"]), \
        f"the month counted 2 requests with {month.get('input_tokens')}/{month.get('output_tokens')} tokens " \
        f"against the {told['input_tokens']}/{told['output_tokens']} the upstream reported"


def test_the_usage_report_counting_the_requests_holds_their_tokens(slow_updates, client, stack, api_key, fake):
    """`gateway-admin usage` reads the month item with GetItem."""
    two_requests(client)
    told = fake.reported_totals()
    month, deadline = f"{datetime.now(timezone.utc):%Y-%m}", time.monotonic() + 10
    totals = stack.ledger().month_report(stack.key_id(api_key), month)["totals"]
    while totals["requests"] < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
        totals = stack.ledger().month_report(stack.key_id(api_key), month)["totals"]
    assert totals["requests"] == 2, f"the report counted {totals['requests']} of 2 requests"
    assert (totals["input_tokens"], totals["output_tokens"]) == (told["input_tokens"], told["output_tokens"]), \
        f"the report counted 2 requests with {totals['input_tokens']}/{totals['output_tokens']} tokens " \
        f"against the {told['input_tokens']}/{told['output_tokens']} the upstream reported"
