"""Every request that reaches the upstream is metered, exactly once, to the token.

A request record and the key's daily and monthly aggregates are written in
one conditional transaction; cost comes from the local price map with cache
tokens at their own rates; a stream meters the same as a non-stream, also
when the client leaves mid-way or the upstream fails after it began.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from decimal import Decimal

import anthropic
import httpx
import pytest

from handler.metering.ledger import Ledger
from handler.metering.items import LedgerEntry
from handler.protocol.usage import Usage
from tests.support.stack import TEST_MODELS, new_stack, providers_document, serve

CLAUDE = "anthropic/claude-sonnet-4-5"
HAIKU = "anthropic/claude-haiku-4-5"
GPT = "openai/gpt-4o-mini"
SONNET_PRICE = {"input": Decimal("3e-6"), "output": Decimal("1.5e-5"),
                "cache_write": Decimal("3.75e-6"), "cache_read": Decimal("3e-7")}


def ask(text="hello there"):
    return [{"role": "user", "content": text}]


def usage_of(record) -> dict:
    return {name: int(record[name]) for name in
            ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")}


def test_a_non_streamed_request_is_recorded_with_its_usage_and_cost(client, stack, api_key, fake):
    message = client.messages.create(model=CLAUDE, max_tokens=100, messages=ask("one two three"))
    [record] = stack.records(api_key, 1)
    assert usage_of(record) == {"input_tokens": 3, "output_tokens": message.usage.output_tokens,
                                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    assert record["requested_model"] == record["served_model"] == CLAUDE
    assert record["status"] == "ok" and record["stream"] is False and record["priced"] is True
    assert record["cost_usd"] == 3 * SONNET_PRICE["input"] + message.usage.output_tokens * SONNET_PRICE["output"]
    assert record["attempts"][0]["model"] == CLAUDE and record["attempts"][0]["status"] == 200
    assert record["key_id"] == stack.key_id(api_key)
    assert record["request_id"].startswith("req_")
    at = datetime.fromisoformat(record["at"])
    assert record["expires_at"] == int(at.timestamp()) + 400 * 86400
    month = stack.month(api_key, requests=1)
    assert (month["requests"], month["input_tokens"], month["cost_usd"]) == (1, 3, record["cost_usd"])
    assert "expires_at" not in month
    [day] = stack.items(api_key, "DAY#")
    assert day["sk"] == f"DAY#{at:%Y-%m-%d}" and day["requests"] == 1


def test_the_request_id_header_names_the_record(client, stack, api_key):
    raw = client.messages.with_raw_response.create(model=CLAUDE, max_tokens=10, messages=ask())
    [record] = stack.records(api_key, 1)
    assert record["request_id"] == raw.headers["request-id"]


def test_cache_tokens_are_priced_at_their_own_rates_and_not_as_input(client, stack, api_key):
    system = [{"type": "text", "text": "a b c d e f g h", "cache_control": {"type": "ephemeral"}}]
    written = client.messages.create(model=CLAUDE, max_tokens=100, system=system, messages=ask("x y"))
    read = client.messages.create(model=CLAUDE, max_tokens=100, system=system, messages=ask("x y"),
                                  extra_body={"extra_headers": {"x-fake-cache": "read"}})
    records = sorted(stack.records(api_key, 2), key=lambda r: r["at"])
    for record, message in zip(records, (written, read)):
        u = message.usage
        assert usage_of(record) == {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
                                    "cache_creation_input_tokens": u.cache_creation_input_tokens,
                                    "cache_read_input_tokens": u.cache_read_input_tokens}
        expected = (u.input_tokens * SONNET_PRICE["input"] + u.output_tokens * SONNET_PRICE["output"]
                    + u.cache_creation_input_tokens * SONNET_PRICE["cache_write"]
                    + u.cache_read_input_tokens * SONNET_PRICE["cache_read"])
        assert record["cost_usd"] == expected
    assert records[0]["cache_creation_input_tokens"] == 5 and records[1]["cache_read_input_tokens"] == 5


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_a_stream_meters_the_same_tokens_and_cost_as_a_non_stream(client, stack, api_key, model):
    client.messages.create(model=model, max_tokens=100, messages=ask("same prompt here"))
    with client.messages.stream(model=model, max_tokens=100, messages=ask("same prompt here")) as stream:
        stream.get_final_message()
    plain, streamed = sorted(stack.records(api_key, 2), key=lambda r: r["stream"])
    assert (plain["stream"], streamed["stream"]) == (False, True)
    assert usage_of(plain) == usage_of(streamed)
    assert plain["cost_usd"] == streamed["cost_usd"] > 0


def test_a_failed_request_is_recorded_with_its_attempts(client, stack, api_key, fake):
    fake.fail("claude-sonnet-4-5", status=400)
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model=CLAUDE, max_tokens=10, messages=ask())
    [record] = stack.records(api_key, 1)
    assert record["status"] == "error" and record["served_model"] == ""
    assert record["attempts"] == [{"model": CLAUDE, "status": 400, "latency_ms": record["attempts"][0]["latency_ms"]}]
    assert stack.month(api_key, requests=1)["errors"] == 1


def test_a_fallen_back_request_records_every_attempt(client, stack, api_key, fake):
    fake.fail("claude-sonnet-4-5", status=500)
    message = client.messages.create(model=CLAUDE, max_tokens=10, messages=ask(), extra_body={"fallbacks": [HAIKU]})
    assert message.model == HAIKU
    [record] = stack.records(api_key, 1)
    assert [(a["model"], a["status"]) for a in record["attempts"]] == [(CLAUDE, 502), (HAIKU, 200)]
    assert record["served_model"] == HAIKU and record["requested_model"] == CLAUDE


@pytest.mark.parametrize("meter_before_response_end", [False, True])
def test_streams_read_to_their_end_are_recorded_ok_not_as_disconnects(moto_endpoint, fake, meter_before_response_end):
    stack = new_stack(fake.url, meter_before_response_end=meter_before_response_end)
    key = stack.add_key()
    with serve(stack) as server:
        client = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0)
        for n in range(5):
            with client.messages.stream(model=CLAUDE, max_tokens=20, messages=ask(f"stream {n}")) as stream:
                stream.get_final_message()
        records = stack.records(key, 5)
    assert [r["status"] for r in records] == ["ok"] * 5, "a delivered stream was metered as a client disconnect"
    month = stack.month(key, requests=5)
    assert month["errors"] == 0, "delivered streams were counted among the month's errors"


def test_a_client_that_leaves_mid_stream_is_still_metered_in_full(server, stack, api_key, fake):
    fake.pace_stream("claude-sonnet-4-5", seconds=0.05)
    payload = {"model": CLAUDE, "max_tokens": 100, "messages": ask("one two three four five"), "stream": True}
    with httpx.stream("POST", f"{server.url}/v3/v1/messages", json=payload, headers={"x-api-key": api_key}) as r:
        for line in r.iter_lines():
            if "content_block_delta" in line:
                break  # hang up after the first delta
    [record] = stack.records(api_key, 1)
    assert record["status"] == "client_disconnected"
    [(_, reported)] = fake.reported
    assert usage_of(record) == reported and reported["output_tokens"] > 1


def test_a_stream_that_fails_after_it_began_meters_what_was_produced(server, stack, api_key, fake):
    fake.cut_stream("claude-sonnet-4-5", after_events=4)  # message_start, ping, block start, first delta
    payload = {"model": CLAUDE, "max_tokens": 100, "messages": ask("one two three"), "stream": True}
    with httpx.stream("POST", f"{server.url}/v3/v1/messages", json=payload, headers={"x-api-key": api_key}) as r:
        body = r.read().decode()
    assert "event: error" in body
    [record] = stack.records(api_key, 1)
    assert record["status"] == "stream_error"
    [(_, reported)] = fake.reported
    assert record["input_tokens"] == reported["input_tokens"] == 3
    # Cut before its final usage: the first delta ("Hello from claude-sonnet-4-5:") is metered at
    # 3 bytes a token, not message_start's 1, and the record says the figure is an estimate.
    assert record["output_tokens"] == 10 > reported["output_tokens"] and record["usage_estimated"] is True


def test_a_cut_openai_stream_is_metered_as_a_flagged_estimate(server, stack, api_key, fake):
    """OpenAI reports usage only in its last chunk: a cut stream's input is litellm's estimate
    and its output is estimated from the relayed text; the record says so."""
    fake.cut_stream("gpt-4o-mini", after_events=3)
    payload = {"model": GPT, "max_tokens": 100, "messages": ask("one two three"), "stream": True}
    with httpx.stream("POST", f"{server.url}/v3/v1/messages", json=payload, headers={"x-api-key": api_key}) as r:
        assert "event: error" in r.read().decode()
    [record] = stack.records(api_key, 1)
    assert record["status"] == "stream_error" and record["usage_estimated"] is True
    assert record["input_tokens"] > 0 and record["output_tokens"] > 1


def test_a_malformed_event_mid_stream_ends_the_clients_stream_but_every_produced_token_is_metered(
        server, stack, api_key, fake):
    fake.malformed("claude-sonnet-4-5", kind="sse")
    words = " ".join(f"w{n}" for n in range(60))
    payload = {"model": CLAUDE, "max_tokens": 500, "messages": ask(words), "stream": True}
    with httpx.stream("POST", f"{server.url}/v3/v1/messages", json=payload, headers={"x-api-key": api_key}) as r:
        body = r.read().decode()
    assert "event: error" in body and "event: message_stop" not in body
    [record] = stack.records(api_key, 1)
    [(_, reported)] = fake.reported
    assert reported["output_tokens"] > 50
    assert record["status"] == "stream_error"
    assert usage_of(record) == reported, "reading stopped at the malformed event: the rest went unmetered"
    assert "usage_estimated" not in record


def test_an_unpriced_model_is_metered_with_cost_zero_and_flagged(moto_endpoint, fake):
    stack = new_stack(fake.url)
    stack.put_providers(providers_document(fake.url, {**TEST_MODELS, "openai/house-model": {}}))
    key = stack.add_key()
    with serve(stack) as server:
        client = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0)
        client.messages.create(model="openai/house-model", max_tokens=10, messages=ask())
    [record] = stack.records(key, 1)
    assert record["priced"] is False and record["cost_usd"] == 0 and record["input_tokens"] == 2
    assert stack.month(key, requests=1)["unpriced_requests"] == 1


def test_the_providers_secret_prices_models_the_price_map_lacks(moto_endpoint, fake):
    stack = new_stack(fake.url)
    prices = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
    stack.put_providers(providers_document(fake.url, {**TEST_MODELS, "openai/house-model": prices}))
    key = stack.add_key()
    with serve(stack) as server:
        client = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0)
        message = client.messages.create(model="openai/house-model", max_tokens=10, messages=ask())
    [record] = stack.records(key, 1)
    assert record["priced"] is True
    assert record["cost_usd"] == 2 * Decimal("1e-6") + message.usage.output_tokens * Decimal("2e-6")


def test_a_model_whose_prices_the_operator_changes_is_metered_at_the_new_prices(moto_endpoint, fake):
    """Prices read from the providers secret are kept per catalogue entry: a reload brings new entries."""
    stack = new_stack(fake.url, providers_cache_ttl=0.0, secret_refresh_gap=0.0)
    old, new = ({"input_cost_per_token": rate, "output_cost_per_token": 2 * rate} for rate in (1e-6, 5e-6))
    stack.put_providers(providers_document(fake.url, {**TEST_MODELS, "openai/house-model": old}))
    key = stack.add_key()
    with serve(stack) as server:
        client = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0)
        first = client.messages.create(model="openai/house-model", max_tokens=10, messages=ask())
        stack.put_providers(providers_document(fake.url, {**TEST_MODELS, "openai/house-model": new}))
        second = client.messages.create(model="openai/house-model", max_tokens=10, messages=ask())
    by_price = sorted(record["cost_usd"] for record in stack.records(key, 2))
    assert by_price == [2 * Decimal("1e-6") + first.usage.output_tokens * Decimal("2e-6"),
                        2 * Decimal("5e-6") + second.usage.output_tokens * Decimal("1e-5")], (
        f"the second request was not metered at the operator's new prices: {by_price}")


def test_a_retried_ledger_write_cannot_count_twice(stack, api_key):
    entry = LedgerEntry(key_id=stack.key_id(api_key), request_id="req_retried", at=datetime.now(timezone.utc).isoformat(),
                        requested_model=CLAUDE, served_model=CLAUDE, attempts=[], usage=Usage(10, 5),
                        cost_usd=Decimal("0.001"), priced=True, stream=False, status="ok")
    ledger = stack.ledger()
    assert [ledger.write(entry), ledger.write(entry), ledger.record(entry)] == ["written", "duplicate", "duplicate"]
    month = stack.month(api_key)
    assert (month["requests"], month["input_tokens"], month["cost_usd"]) == (1, 10, Decimal("0.001"))


def test_the_record_ttl_is_configurable(moto_endpoint, fake):
    stack = new_stack(fake.url, usage_ttl_days=30)
    key = stack.add_key()
    with serve(stack) as server:
        anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0).messages.create(
            model=CLAUDE, max_tokens=10, messages=ask())
    [record] = stack.records(key, 1)
    assert record["expires_at"] == int(datetime.fromisoformat(record["at"]).timestamp()) + 30 * 86400


def test_a_mixed_parallel_run_meters_exactly_what_the_upstream_reported(server, stack, api_key, fake):
    """Streamed, non-streamed, failed, fallen-back, cut and abandoned requests, some in parallel."""
    client = anthropic.Anthropic(api_key=api_key, base_url=server.url + "/v3", max_retries=0, timeout=20)
    fake.fail("claude-sonnet-4-5", status=500, times=3)   # three requests fall back to haiku
    fake.fail("gpt-4o", status=400, times=2)              # two requests fail outright
    fake.cut_stream("claude-haiku-4-5", after_events=4, times=2)

    def plain(i):
        try:
            client.messages.create(model=[CLAUDE, GPT, "openai/gpt-4o"][i % 3], max_tokens=50,
                                   messages=ask(f"request number {i}"), extra_body={"fallbacks": [HAIKU]})
        except anthropic.APIStatusError:
            pass

    def streamed(i):
        payload = {"model": [HAIKU, GPT][i % 2], "max_tokens": 50, "stream": True,
                   "messages": ask(f"stream number {i} with words")}
        with httpx.stream("POST", f"{server.url}/v3/v1/messages", json=payload,
                          headers={"x-api-key": api_key}, timeout=20) as r:
            for n, _ in enumerate(r.iter_lines()):
                if i % 3 == 0 and n > 3:
                    break  # some clients leave early

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(plain, range(12)))
        list(pool.map(streamed, range(12)))
    records = stack.records(api_key, 24)
    assert len(records) == 24
    reported = fake.reported_totals()
    month = stack.month(api_key, requests=24)
    # The two cut streams never reported their output: theirs is estimated from what they relayed.
    estimated = [r for r in records if r.get("usage_estimated")]
    assert len(estimated) == 2
    extra_output = sum(int(r["output_tokens"]) - 1 for r in estimated)  # message_start reported 1 each
    for name, total in reported.items():
        total += extra_output if name == "output_tokens" else 0
        assert sum(int(r[name]) for r in records) == total, name
        assert month[name] == total, name
    assert month["requests"] == 24
    assert month["cost_usd"] == sum(r["cost_usd"] for r in records)
    days = stack.items(api_key, "DAY#")
    assert sum(d["requests"] for d in days) == 24


class SlowLedger(Ledger):
    """A ledger whose writes take a while, as a real table's can."""

    def record_batch(self, entries):
        time.sleep(0.3)
        return super().record_batch(entries)


@pytest.mark.parametrize("stream", [False, True])
def test_with_meter_before_response_end_a_response_ends_only_once_its_usage_is_written(moto_endpoint, fake, stream):
    """What the Lambda Web Adapter needs: the invocation ends with the response, and then
    the environment may be frozen or reclaimed, so nothing may still be in flight."""
    stack = new_stack(fake.url, meter_before_response_end=True)
    key = stack.add_key()
    with serve(stack, ledger=SlowLedger(stack.settings.usage_table)) as server:
        client = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0)
        if stream:
            with client.messages.stream(model=CLAUDE, max_tokens=20, messages=ask()) as events:
                events.get_final_message()
        else:
            client.messages.create(model=CLAUDE, max_tokens=20, messages=ask())
        written_when_the_response_ended = stack.items(key, "REQ#")
    assert len(written_when_the_response_ended) == 1


def test_a_stream_whose_client_left_before_its_first_byte_is_recorded_as_a_disconnect(moto_endpoint, fake):
    stack = new_stack(fake.url)
    key = stack.add_key()
    fake.delay("claude-sonnet-4-5", 1.0, times=1)  # the client gives up while the gateway waits for it
    payload = {"model": CLAUDE, "max_tokens": 20, "messages": ask("one two"), "stream": True}
    with serve(stack) as server:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{server.url}/v3/v1/messages", json=payload, headers={"x-api-key": key}, timeout=0.4)
        [record] = stack.records(key, 1, timeout=15)
    assert record["status"] == "client_disconnected", "a stream no one received was recorded as delivered"
    [(_, reported)] = fake.reported
    assert usage_of(record) == reported, "the stream was not metered in full"


def test_creating_the_usage_table_again_is_harmless_however_many_tables_the_account_has(moto_endpoint):
    """`scripts/serve` and the test stacks create the table they use; an account with more than
    a page of tables (ListTables answers 100 at a time) must not make a second create fail."""
    import uuid

    prefix = f"page-{uuid.uuid4().hex[:6]}"
    for index in range(101):
        Ledger(f"{prefix}-{index:03d}").create_table()
    Ledger(f"{prefix}-000").create_table()  # the first page's
    Ledger(f"{prefix}-100").create_table()  # past the first page
