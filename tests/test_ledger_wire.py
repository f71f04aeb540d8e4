"""The ledger's TransactWriteItems on the wire (handler/metering/transact_wire.py) keeps botocore's word.

The ledger writes each request's usage without botocore's client, so these
pin what the ledger relies on from it: the errors botocore raises, in its
shapes (a duplicate record's CancellationReasons), transport failures as
BotoCoreErrors, the retries (the ledger's own four attempts, none under
them), the endpoint botocore would use, kept-alive connections that a
SnapStart restore drops. DynamoDB is moto, or a loopback endpoint answering
as a failing DynamoDB does (tests/support/dynamodb_faults.py).
"""

from __future__ import annotations

import socket
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import anthropic
import boto3
import pytest
from botocore.exceptions import (BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError,
                                 ReadTimeoutError)

from handler import aws
from handler.metering import transact_wire
from handler.metering.items import LedgerEntry, ledger_transaction
from handler.protocol.usage import Usage
from tests.support.dynamodb_faults import (CLOSED_UNANSWERED, THROTTLED, UNAVAILABLE, WRITTEN, WRITTEN_THEN_HANG_UP,
                                           Answer, FaultyDynamoDB)
from tests.support.forward_proxy import ForwardProxy
from tests.support.stack import serve

CLAUDE = "anthropic/claude-sonnet-4-5"
HELLO = [{"role": "user", "content": "hello"}]


def entry(key_id: str, request_id: str | None = None) -> LedgerEntry:
    return LedgerEntry(key_id=key_id, request_id=request_id or f"req_{uuid.uuid4().hex}",
                       at=datetime.now(timezone.utc).isoformat(), requested_model=CLAUDE, served_model=CLAUDE,
                       attempts=[], usage=Usage(10, 5), cost_usd=Decimal("0.0001"), priced=True,
                       stream=False, status="ok")


@pytest.fixture
def queue_url(moto_endpoint):
    return boto3.client("sqs").create_queue(QueueName=f"ledger-wire-{uuid.uuid4().hex[:8]}")["QueueUrl"]


def queued(queue_url: str, count: int, timeout: float = 10.0) -> list[LedgerEntry]:
    """The entries in the fallback queue, once `count` are there (metering runs after the response)."""
    sqs, found, deadline = boto3.client("sqs"), [], time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        found += [LedgerEntry.from_json(message["Body"]) for message in answer.get("Messages", [])]
        time.sleep(0.05)
    return found


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_record_written_twice_is_a_duplicate_with_botocores_cancellation_reasons(stack, api_key):
    ledger = stack.ledger()
    written = entry(stack.key_id(api_key))
    assert ledger.record(written) == "written"
    assert ledger.record(written) == "duplicate", "a usage entry sent twice must count once"
    assert stack.month(api_key)["requests"] == 1

    items = ledger_transaction(stack.settings.usage_table, [written], 400)
    with pytest.raises(ClientError) as by_botocore:
        boto3.client("dynamodb").transact_write_items(TransactItems=items)
    with pytest.raises(ClientError) as on_the_wire:
        transact_wire.transact_write_items(items)
    assert type(on_the_wire.value).__name__ == type(by_botocore.value).__name__ == "TransactionCanceledException", \
        "the class botocore's client raises"
    assert isinstance(on_the_wire.value, aws.client("dynamodb").exceptions.TransactionCanceledException)
    ours, theirs = on_the_wire.value.response, by_botocore.value.response
    assert ours["Error"] == theirs["Error"] and ours["Error"]["Code"] == "TransactionCanceledException"
    assert ours["CancellationReasons"] == theirs["CancellationReasons"], \
        "the ledger tells a duplicate by the first cancellation reason, as botocore parses it"
    assert ours["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert set(ours) == set(theirs)


@pytest.mark.parametrize("failure", [THROTTLED, UNAVAILABLE], ids=["throttled", "503-html"])
def test_a_failing_dynamodb_is_tried_four_times_then_the_request_is_queued(stack, dynamodb_at, queue_url, failure):
    key, sleeps = stack.add_key(), []
    with FaultyDynamoDB([failure]) as dynamodb:
        dynamodb_at(dynamodb.url)
        with serve(stack, ledger=stack.ledger(queue_url=queue_url, backoff=0.001, sleep=sleeps.append)) as server:
            client = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0)
            answer = client.messages.create(model=CLAUDE, max_tokens=10, messages=HELLO)
            kept = queued(queue_url, 1)
    assert answer.content, "the caller is served while DynamoDB fails"
    assert [e.key_id for e in kept] == [stack.key_id(key)], "the request's usage waits in the fallback queue"
    assert len(dynamodb.calls) == 4, \
        f"the ledger's four attempts and no retries under them: DynamoDB saw {len(dynamodb.calls)} calls"
    assert sleeps == [0.001, 0.004, 0.016], "the ledger backs off between its attempts, a 5xx as a throttle"
    call = dynamodb.calls[0]
    assert call.headers["x-amz-target"] == "DynamoDB_20120810.TransactWriteItems"
    assert call.headers["content-type"] == "application/x-amz-json-1.0"
    assert call.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert "/us-east-1/dynamodb/aws4_request" in call.headers["authorization"]
    assert call.body["ClientRequestToken"], "botocore's idempotency token rides along"
    assert len({c.body["ClientRequestToken"] for c in dynamodb.calls}) == 1, \
        "every attempt of one write is one transaction to DynamoDB: one ClientRequestToken"
    assert call.body["TransactItems"][0]["Put"]["Item"]["sk"]["S"].startswith("REQ#")


def test_an_unreachable_dynamodb_sends_the_entry_to_the_queue(stack, api_key, dynamodb_at, queue_url):
    dynamodb_at(f"http://127.0.0.1:{closed_port()}")
    lost = entry(stack.key_id(api_key))
    with pytest.raises(EndpointConnectionError):
        transact_wire.transact_write_items(ledger_transaction(stack.settings.usage_table, [lost], 400))
    assert stack.ledger(queue_url=queue_url, backoff=0.001).record(lost) == "queued"
    assert [e.request_id for e in queued(queue_url, 1)] == [lost.request_id]


def test_a_dynamodb_that_takes_no_connection_is_botocores_connect_timeout(stack, dynamodb_at, monkeypatch):
    """ConnectTimeoutError, as botocore names it (an OSError too), not a connection closed on a write."""
    monkeypatch.setattr(transact_wire, "CONNECT_TIMEOUT_S", 0.3)
    items = ledger_transaction(stack.settings.usage_table, [entry("k")], 400)
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)  # Linux queues one connection not yet accepted, and drops the SYNs after it
        with socket.create_connection(full.getsockname()):
            dynamodb_at(f"http://127.0.0.1:{full.getsockname()[1]}")
            with pytest.raises(BotoCoreError) as timed_out:
                transact_wire.transact_write_items(items)
    assert type(timed_out.value) is ConnectTimeoutError, f"botocore's class for it, not {timed_out.value!r}"


def test_a_dynamodb_that_does_not_answer_is_a_read_timeout_and_the_entry_is_queued(
        stack, api_key, dynamodb_at, queue_url, monkeypatch):
    monkeypatch.setattr(transact_wire, "READ_TIMEOUT_S", 0.2)
    with socket.socket() as silent:  # connections land in its backlog and are never answered
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        dynamodb_at(f"http://127.0.0.1:{silent.getsockname()[1]}")
        lost = entry(stack.key_id(api_key))
        with pytest.raises(ReadTimeoutError) as timed_out:
            transact_wire.transact_write_items(ledger_transaction(stack.settings.usage_table, [lost], 400))
        assert isinstance(timed_out.value, BotoCoreError)
        assert stack.ledger(queue_url=queue_url, backoff=0.001).record(lost) == "queued"
    assert [e.request_id for e in queued(queue_url, 1)] == [lost.request_id]


def test_writes_share_one_kept_alive_connection_and_a_snapstart_restore_drops_it(stack, api_key, dynamodb_at):
    from handler.runtime import snapstart

    ledger = stack.ledger()
    with FaultyDynamoDB([WRITTEN]) as dynamodb:
        dynamodb_at(dynamodb.url)
        assert [ledger.record(entry("k")) for _ in range(3)] == ["written"] * 3
        assert dynamodb.connections == 1, "one connection kept alive for every write"
        snapstart.forget_process_state()
        assert ledger.record(entry("k")) == "written"
    assert dynamodb.connections == 2, "a restored snapshot opens its own connection"


def test_a_connection_dynamodb_closed_while_idle_is_replaced_without_losing_the_write(stack, dynamodb_at):
    ledger = stack.ledger(sleep=lambda _: pytest.fail("a closed idle connection is no failure to back off from"))
    with FaultyDynamoDB([WRITTEN_THEN_HANG_UP]) as dynamodb:
        dynamodb_at(dynamodb.url)
        assert [ledger.record(entry("k")) for _ in range(3)] == ["written"] * 3
    assert (len(dynamodb.calls), dynamodb.connections) == (3, 3)


def test_a_write_dynamodb_closed_its_connection_on_is_sent_once_more_and_lands_once(stack, dynamodb_at):
    """DynamoDB's idle close can cross a write on a kept connection: the write goes once more on a
    new connection, within the ledger's attempt (no backoff), as the same transaction."""
    ledger = stack.ledger(sleep=lambda _: pytest.fail("a crossed close is no failure to back off from"))
    with FaultyDynamoDB([WRITTEN, CLOSED_UNANSWERED, WRITTEN]) as dynamodb:
        dynamodb_at(dynamodb.url)
        assert [ledger.record(entry("k")) for _ in range(2)] == ["written"] * 2
    first, crossed, again = dynamodb.calls
    assert [call.connection for call in dynamodb.calls] == [0, 0, 1]
    assert crossed.raw == again.raw and crossed.body["ClientRequestToken"], \
        "the same transaction, its ClientRequestToken with it: DynamoDB applies it once"


def test_a_write_on_a_new_connection_dynamodb_closed_unanswered_is_one_failed_attempt(stack, dynamodb_at):
    """No second send on a connection just made: the ledger's own attempts (and backoff) decide."""
    sleeps: list[float] = []
    ledger = stack.ledger(backoff=0.001, sleep=sleeps.append)
    with FaultyDynamoDB([CLOSED_UNANSWERED, WRITTEN]) as dynamodb:
        dynamodb_at(dynamodb.url)
        assert ledger.record(entry("k")) == "written"
    assert [call.connection for call in dynamodb.calls] == [0, 1]
    assert sleeps == [0.001], "the ledger's second attempt wrote it, after its backoff"


def test_a_served_requests_usage_skips_botocores_endpoint_and_is_still_seen_by_its_hooks(client, stack, api_key,
                                                                                         monkeypatch):
    """The write's CPU was mostly botocore's `Endpoint.make_request` (hooks, the retry handler, urllib3,
    the parser): a served request's TransactWriteItems never reaches it, yet the `before-call` hook
    the bench and the AWS-call tests count with still fires."""
    from botocore import endpoint

    through_endpoint: list[str] = []
    real = endpoint.Endpoint.make_request

    def counted(self, operation_model, request_dict):
        through_endpoint.append(operation_model.name)
        return real(self, operation_model, request_dict)

    monkeypatch.setattr(endpoint.Endpoint, "make_request", counted)
    hooked: list[str] = []

    def hook(event_name, **_):
        hooked.append(event_name)

    events = aws.client("dynamodb").meta.events
    events.register("before-call.dynamodb.TransactWriteItems", hook)
    try:
        client.messages.create(model=CLAUDE, max_tokens=20, messages=HELLO)
        assert [r["status"] for r in stack.records(api_key, 1)] == ["ok"]
    finally:
        events.unregister("before-call.dynamodb.TransactWriteItems", hook)
    assert "TransactWriteItems" not in through_endpoint, f"the ledger write went through botocore: {through_endpoint}"
    assert hooked == ["before-call.dynamodb.TransactWriteItems"], "the write is counted like any botocore call"


def test_a_write_answered_with_a_body_that_is_not_json_is_written(stack, dynamodb_at):
    """The ledger reads nothing of a success answer: a 200 whose body is not JSON (a proxy's
    rewrite) is a write, not an exception that escapes the ledger's keep-or-queue path."""
    with FaultyDynamoDB([Answer(200, b"<html>OK</html>", "text/html")]) as dynamodb:
        dynamodb_at(dynamodb.url)
        assert stack.ledger().record(entry("k")) == "written"


def test_a_5xx_whose_body_is_not_utf8_is_retried_then_queued(stack, dynamodb_at, queue_url):
    """A middlebox's error page in another encoding: botocore's parser cannot read it, and the
    write is still a retryable failure named by its status, then a queued entry, never lost."""
    page = Answer(502, b"\xff\xfe<html>Bad Gateway</html>", "text/html")
    lost = entry("k")
    with FaultyDynamoDB([page]) as dynamodb:
        dynamodb_at(dynamodb.url)
        assert stack.ledger(queue_url=queue_url, backoff=0.001).record(lost) == "queued"
    assert len(dynamodb.calls) == 4, "a 502 is retried as botocore's standard mode retries it"
    assert [e.request_id for e in queued(queue_url, 1)] == [lost.request_id]


def test_an_idle_connection_past_its_expiry_is_not_reused(stack, dynamodb_at):
    """A kept connection idle for a minute may have been dropped without a word (a NAT's idle
    timeout, a frozen environment): it is closed, not reused into a read timeout."""
    now = [1000.0]
    items = ledger_transaction(stack.settings.usage_table, [entry("k")], 400)
    with FaultyDynamoDB([WRITTEN]) as dynamodb:
        dynamodb_at(dynamodb.url)
        writer = transact_wire.Writer(aws.client("dynamodb"), clock=lambda: now[0])
        writer.transact_write_items(items)
        now[0] += transact_wire.IDLE_EXPIRY_S / 2
        writer.transact_write_items(items)
        assert dynamodb.connections == 1, "a connection idle for less than the expiry is reused"
        now[0] += transact_wire.IDLE_EXPIRY_S + 1
        writer.transact_write_items(items)
        writer.close()
    assert dynamodb.connections == 2, "a connection idle past the expiry is replaced"


def test_a_write_the_client_would_send_through_a_proxy_goes_through_the_proxy(stack, dynamodb_at, monkeypatch):
    """A function that reaches DynamoDB only through a proxy (HTTP(S)_PROXY) writes its usage
    through it, as botocore's client does; NO_PROXY still sends the write straight."""
    with FaultyDynamoDB([WRITTEN]) as dynamodb, ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "localhost")  # moto's SQS and Secrets Manager stay direct
        dynamodb_at(dynamodb.url)  # 127.0.0.1: not in NO_PROXY, so the proxy's
        assert stack.ledger().record(entry("k")) == "written"
        assert [line.split(" ")[0] for line in proxy.forwarded] == ["POST"], f"the proxy relayed {proxy.forwarded}"
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        dynamodb_at(dynamodb.url)
        assert stack.ledger().record(entry("k")) == "written"
        assert len(proxy.forwarded) == 1, "NO_PROXY's endpoint is written to straight"
    assert len(dynamodb.calls) == 2


def test_tls_to_dynamodb_is_verified_with_the_clients_ca_bundle(tmp_path, monkeypatch, moto_endpoint):
    """AWS_CA_BUNDLE (a private CA in front of DynamoDB) is what botocore verifies with; the wire
    writer verifies with the same bundle, not certifi's."""
    import certifi

    first = certifi.contents().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    bundle = tmp_path / "private-ca.pem"
    bundle.write_text(first)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(bundle))
    aws.reset_clients()
    try:
        writer = transact_wire.Writer(aws.client("dynamodb"))
        assert len(transact_wire.tls_context(writer._verify).get_ca_certs()) == 1, \
            "the writer trusts exactly the bundle the client was told to"
    finally:
        monkeypatch.delenv("AWS_CA_BUNDLE")
        aws.reset_clients()
    unverified = transact_wire.tls_context(False)
    assert (unverified.verify_mode, unverified.check_hostname) == (transact_wire.ssl.CERT_NONE, False)



def test_a_ca_bundle_that_is_a_directory_is_taken_as_botocore_takes_it(tmp_path, monkeypatch, moto_endpoint):
    """botocore hands a directory in AWS_CA_BUNDLE to urllib3 as ca_cert_dir (httpsession's
    `_setup_ssl_cert`): the wire writer must not fail every write on it (open() of a directory)."""
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path))
    aws.reset_clients()
    try:
        writer = transact_wire.Writer(aws.client("dynamodb"))
        context = transact_wire.tls_context(writer._verify)
    finally:
        monkeypatch.delenv("AWS_CA_BUNDLE")
        aws.reset_clients()
    assert (context.verify_mode, context.check_hostname) == (transact_wire.ssl.CERT_REQUIRED, True)
