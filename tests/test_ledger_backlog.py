"""Under uvicorn, ledger writes that the table cannot keep up with are bounded and never lost.

Past GATEWAY_LEDGER_MAX_BACKLOG waiting entries, an entry goes straight to
the fallback queue (counted and logged); at shutdown, what is still metering
after GATEWAY_SHUTDOWN_GRACE is cut short and spilled there too. Replaying
the queue then gives exactly the count of requests served.
"""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import httpx

from handler.metering.ledger import Ledger
from tests.support.stack import new_stack, serve

CLAUDE = "anthropic/claude-sonnet-4-5"
BODY = {"model": CLAUDE, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


class SlowLedger(Ledger):
    """A usage table that falls behind: every batch takes `seconds`."""

    seconds = 0.5

    def record_batch(self, entries):
        time.sleep(self.seconds)
        return super().record_batch(entries)


def queue(moto_endpoint) -> str:
    return boto3.client("sqs").create_queue(QueueName=f"ledger-{uuid.uuid4().hex[:8]}")["QueueUrl"]


def post(server, key, **extra):
    return httpx.post(f"{server.url}/v3/v1/messages", json={**BODY, **extra}, headers={"x-api-key": key}, timeout=30)


def test_a_table_that_falls_behind_spills_past_the_backlog_bound_and_loses_nothing(moto_endpoint, fake, caplog):
    queue_url = queue(moto_endpoint)
    stack = new_stack(fake.url, ledger_queue_url=queue_url, ledger_max_backlog=4)
    key = stack.add_key()
    with serve(stack, ledger=SlowLedger(stack.settings.usage_table, queue_url=queue_url)) as server:
        with caplog.at_level(logging.WARNING, logger="handler.metering.group_commit"):
            with ThreadPoolExecutor(30) as pool:
                statuses = list(pool.map(lambda _: post(server, key).status_code, range(30)))
            assert statuses == [200] * 30
            commits = server.app.state.gateway._commits
            deadline = time.monotonic() + 20
            while server.app.state.gateway._pending and time.monotonic() < deadline:
                time.sleep(0.05)
        assert commits.spilled > 0 and commits.backlog == 0
        assert any("ledger backlog" in r.getMessage() for r in caplog.records), "the spill was not visible"
    written = len(stack.items(key, "REQ#"))
    assert written + commits.spilled == 30 and written <= 30 - commits.spilled
    assert stack.ledger(queue_url=queue_url).replay(wait_seconds=0)["written"] == commits.spilled
    assert stack.month(key, requests=30)["requests"] == 30, "entries were lost between the backlog and the queue"


def test_a_server_stopped_before_its_writes_finish_spills_them_and_meters_cut_streams(moto_endpoint, fake):
    queue_url = queue(moto_endpoint)
    stack = new_stack(fake.url, ledger_queue_url=queue_url, shutdown_grace=0.5)
    key = stack.add_key()
    slow = SlowLedger(stack.settings.usage_table, queue_url=queue_url)
    slow.seconds = 2.0
    fake.pace_stream("claude-sonnet-4-5", seconds=1.0)  # the stream below would take about 40 s
    with serve(stack, ledger=slow) as server:
        with httpx.stream("POST", f"{server.url}/v3/v1/messages", headers={"x-api-key": key}, timeout=30,
                          json={**BODY, "max_tokens": 100, "stream": True,
                                "messages": [{"role": "user", "content": "word " * 40}]}) as response:
            for line in response.iter_lines():
                if "content_block_delta" in line:
                    break  # the client leaves; the gateway reads on to meter it
        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(lambda _: post(server, key).status_code, range(8))) == [200] * 8
    server._thread.join(30)  # uvicorn's shutdown: pending work gets 0.5 s, then the rest is spilled
    assert not server._thread.is_alive()
    time.sleep(slow.seconds)  # a batch already inside the table's thread finishes on its own
    replayed = stack.ledger(queue_url=queue_url).replay(wait_seconds=0)
    assert replayed["written"] > 0, "nothing was spilled: the test did not stop the server mid-write"
    records = stack.records(key, 9)
    assert len(records) == 9, f"{9 - len(records)} requests' entries were lost at shutdown"
    [stream] = [r for r in records if r["stream"]]
    assert stream["status"] == "client_disconnected" and stream["output_tokens"] >= 1
