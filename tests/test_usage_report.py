"""Usage reporting: a key's own month over HTTP, any key's month for operators.

Totals and each day carry requests, input_tokens (as Anthropic counts them:
cache tokens excluded), output_tokens, both cache figures and cost_usd.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone

import anthropic
import httpx
import pytest

from tests.support.stack import new_stack, serve

CLAUDE = "anthropic/claude-sonnet-4-5"
FIELDS = {"requests", "input_tokens", "output_tokens", "cache_creation_input_tokens",
          "cache_read_input_tokens", "cost_usd"}


def this_month() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m")


@pytest.fixture
def used(client, stack, api_key):
    for words in ("one", "one two", "one two three"):
        client.messages.create(model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": words}])
    stack.records(api_key, 3)
    return api_key


def test_a_key_reads_its_own_month(server, used):
    report = httpx.get(f"{server.url}/v3/usage", params={"month": this_month()}, headers={"x-api-key": used}).json()
    assert report["month"] == this_month() and report["key_id"].startswith("k_")
    assert set(report["totals"]) == FIELDS
    assert report["totals"]["requests"] == 3 and report["totals"]["input_tokens"] == 6
    assert report["totals"]["cost_usd"] > 0
    [day] = report["days"]
    assert day["date"] == datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert {k: v for k, v in day.items() if k != "date"} == report["totals"]


def test_the_month_defaults_to_the_current_one_and_other_months_are_empty(server, used):
    current = httpx.get(f"{server.url}/v3/usage", headers={"x-api-key": used}).json()
    assert current["month"] == this_month() and current["totals"]["requests"] == 3
    old = httpx.get(f"{server.url}/v3/usage", params={"month": "2020-01"}, headers={"x-api-key": used}).json()
    assert old["totals"]["requests"] == 0 and old["days"] == []


def test_a_key_never_sees_another_keys_usage(moto_endpoint, fake):
    stack = new_stack(fake.url)
    busy, idle = stack.add_key(name="busy"), stack.add_key(name="idle")
    with serve(stack) as server:
        anthropic.Anthropic(api_key=busy, base_url=server.url + "/v3", max_retries=0).messages.create(
            model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
        stack.records(busy, 1)
        report = httpx.get(f"{server.url}/v3/usage", headers={"x-api-key": idle}).json()
    assert report["key_id"] == stack.key_id(idle) and report["totals"]["requests"] == 0


@pytest.mark.parametrize("month", ["2026-13", "26-01", "2026-1", "latest"])
def test_a_malformed_month_is_a_400(server, used, month):
    response = httpx.get(f"{server.url}/v3/usage", params={"month": month}, headers={"x-api-key": used})
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"


def test_usage_needs_a_key(server):
    assert httpx.get(f"{server.url}/v3/usage").status_code == 401


def admin_usage(stack, *args):
    env = {**os.environ, "GATEWAY_KEYS_SECRET_ID": stack.settings.keys_secret_id,
           "GATEWAY_USAGE_TABLE": stack.settings.usage_table}
    return subprocess.run([sys.executable, "-m", "handler.admin", "usage", *args], capture_output=True,
                          text=True, env=env, timeout=60)


def test_operators_report_one_key_or_every_key(stack, used):
    key_id = stack.key_id(used)
    one = json.loads(admin_usage(stack, "--key-id", key_id, "--json").stdout)
    assert one["key_id"] == key_id and one["totals"]["requests"] == 3
    every = json.loads(admin_usage(stack, "--month", this_month(), "--json").stdout)
    assert {r["key_id"] for r in every} == {entry["key_id"] for entry in stack.keys}
    table = admin_usage(stack).stdout
    assert key_id in table and "cost_usd" in table


@pytest.fixture
def three_keys(moto_endpoint, fake):
    """Keys with no, little and more usage this month; the busiest ("chatty", most requests)
    is not the dearest ("heavy", long prompts), so an order by requests is told from one by cost."""
    stack = new_stack(fake.url)
    keys = {name: stack.add_key(name=name) for name in ("idle", "light", "chatty", "heavy")}
    with serve(stack) as server:
        for name, count, words in (("light", 1, "hi"), ("chatty", 4, "hi"), ("heavy", 3, "a much longer prompt " * 20)):
            client = anthropic.Anthropic(api_key=keys[name], base_url=server.url + "/v3", max_retries=0)
            for _ in range(count):
                client.messages.create(model=CLAUDE, max_tokens=20, messages=[{"role": "user", "content": words}])
            stack.month(keys[name], count)
    return stack, keys


def test_the_month_table_lists_every_key_dearest_first(three_keys):
    stack, keys = three_keys
    table = json.loads(admin_usage(stack, "--json").stdout)
    assert [row["name"] for row in table] == ["heavy", "chatty", "light", "idle"], \
        "the report is ordered dearest first, not busiest first"
    assert [row["requests"] for row in table] == [3, 4, 1, 0]
    assert table[0]["cost_usd"] > table[1]["cost_usd"] > table[2]["cost_usd"] > 0 == table[3]["cost_usd"]
    text = admin_usage(stack).stdout.splitlines()
    assert text[0].split()[:3] == ["key_id", "name", "requests"] and "heavy" in text[1] and "chatty" in text[2] \
        and "idle" in text[4]
    top = json.loads(admin_usage(stack, "--top", "1", "--json").stdout)
    assert [row["name"] for row in top] == ["heavy"]


def test_the_month_table_exports_as_csv(three_keys):
    import csv

    stack, keys = three_keys
    rows = list(csv.DictReader(admin_usage(stack, "--csv").stdout.splitlines()))
    assert [row["name"] for row in rows] == ["heavy", "chatty", "light", "idle"]
    assert rows[0]["month"] == this_month() and int(rows[0]["requests"]) == 3 and float(rows[0]["cost_usd"]) > 0
    assert set(rows[0]) == {"month", "key_id", "name", "status", *FIELDS}


def test_one_keys_month_shows_a_row_per_day_and_its_total(three_keys):
    stack, keys = three_keys
    key_id = stack.key_id(keys["heavy"])
    text = admin_usage(stack, "--key-id", key_id).stdout
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    [day_line] = [line for line in text.splitlines() if line.startswith(today)]
    [total_line] = [line for line in text.splitlines() if line.startswith("total")]
    assert day_line.split()[1] == "3" and total_line.split()[1] == "3"
    import csv
    days = list(csv.DictReader(admin_usage(stack, "--key-id", key_id, "--csv").stdout.splitlines()))
    assert [(d["date"], d["requests"]) for d in days] == [(today, "3")]


def test_the_month_table_reads_one_item_per_key_however_many_requests(three_keys, capsys):
    """The DynamoDB calls of a report depend on the number of keys, not of requests."""
    from collections import Counter

    from handler import admin, aws

    stack, keys = three_keys
    counted: Counter = Counter()

    def count(event_name, **_):
        counted[event_name.rsplit(".", 1)[1]] += 1

    dynamodb = aws.client("dynamodb")
    dynamodb.meta.events.register("before-call.dynamodb.*", count)
    try:
        assert admin.run(["usage", "--json"], stack.settings) == 0
        before = dict(counted)
        capsys.readouterr()
        with serve(stack) as server:
            client = anthropic.Anthropic(api_key=keys["heavy"], base_url=server.url + "/v3", max_retries=0)
            for _ in range(5):
                client.messages.create(model=CLAUDE, max_tokens=5, messages=[{"role": "user", "content": "x"}])
            stack.month(keys["heavy"], 8)
        counted.clear()
        capsys.readouterr()  # the served requests' log lines
        assert admin.run(["usage", "--json"], stack.settings) == 0
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb.*", count)
    assert dict(counted) == before == {"BatchGetItem": 1}
    assert json.loads(capsys.readouterr().out)[0]["requests"] == 8


def test_a_malformed_month_is_refused_by_the_cli(three_keys):
    stack, _ = three_keys
    result = admin_usage(stack, "--month", "2026-13")
    assert result.returncode == 1 and "YYYY-MM" in result.stderr


def test_a_month_whose_ledger_shards_changed_reports_every_layout_it_used(moto_endpoint, fake):
    """An operator spreads a busy key over ledger shards mid-month: its report still counts the
    requests written under the key id before, and those written to the shards after."""
    stack = new_stack(fake.url)
    key = stack.add_key()
    ask = {"model": CLAUDE, "max_tokens": 20, "messages": [{"role": "user", "content": "one"}]}

    def report(server) -> dict:
        return httpx.get(f"{server.url}/v3/usage", headers={"x-api-key": key}).json()

    with serve(stack) as server:
        assert httpx.post(f"{server.url}/v3/v1/messages", json=ask, headers={"x-api-key": key}).status_code == 200
        stack.records(key, 1)
    next(entry for entry in stack.keys if entry["key_id"] == stack.key_id(key))["limits"] = {"ledger_shards": 4}
    stack.put_keys()
    with serve(stack) as server:  # a fresh app reads the key's new entry
        assert httpx.post(f"{server.url}/v3/v1/messages", json=ask, headers={"x-api-key": key}).status_code == 200
        deadline = time.monotonic() + 10
        while (totals := report(server)["totals"])["requests"] < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert totals["requests"] == 2, f"the month's report lost the requests of its earlier layout: {totals}"
