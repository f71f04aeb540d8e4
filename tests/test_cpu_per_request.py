"""What the gateway does per request to keep its CPU small (issue 27); the CPU itself is the bench's.

On Lambda, CPU is sold by memory size, so every millisecond the gateway spends on a
request is latency at a small size. The figures (server CPU per request beside LiteLLM
Proxy's) come from `scripts/bench`, not from timed tests on a shared machine; these tests
pin the mechanisms behind them: where a body is judged, the transport's framing, the
ledger write without botocore's schema walk, and what a direct call sends.
"""

from __future__ import annotations

import anthropic
import pytest

from handler import app as app_module
from handler.pipeline import gateway
from tests.support.stack import running_on_a_loop

CLAUDE = "anthropic/claude-sonnet-4-5"
HELLO = [{"role": "user", "content": "hello there"}]


def test_a_small_body_is_parsed_and_judged_on_the_event_loop_and_a_large_one_off_it(server, api_key, fake,
                                                                                    monkeypatch):
    """Parsing, the shape bounds and the schema walk a body: a large one's in a worker thread (other
    requests go on), a small one's on the loop, where the thread hop would cost more CPU than the walk."""
    on_the_loop: list[tuple[str, bool]] = []

    def spy(name, real):
        def wrapper(*args):
            on_the_loop.append((name, running_on_a_loop()))
            return real(*args)
        return wrapper

    monkeypatch.setattr(app_module, "_parsed_and_bounded", spy("parse", app_module._parsed_and_bounded))
    monkeypatch.setattr(app_module, "_judged", spy("judge", app_module._judged))
    client = anthropic.Anthropic(api_key=api_key, base_url=server.url + "/v3", max_retries=0, timeout=30)
    client.messages.create(model=CLAUDE, max_tokens=20, messages=HELLO)
    assert on_the_loop == [("parse", True), ("judge", True)], "a small body's walks left the event loop"
    on_the_loop.clear()
    large = [{"role": "user", "content": "word " * (gateway.OFF_LOOP_BODY_BYTES // 5 + 10)}]
    client.messages.create(model=CLAUDE, max_tokens=20, messages=large)
    assert on_the_loop == [("parse", False), ("judge", False)], "a large body's walks ran on the event loop"


@pytest.mark.parametrize("gzip", [False, True])
def test_answers_over_the_gateways_transport_are_whole_whatever_their_framing(client, fake, gzip):
    """Content-Length, chunked (the fake's streams) and gzip-encoded answers, one after another on
    kept-alive connections: each arrives whole."""
    fake.gzip = gzip
    for _ in range(3):
        created = client.messages.create(model=CLAUDE, max_tokens=50, messages=HELLO)
        with client.messages.stream(model=CLAUDE, max_tokens=50, messages=HELLO) as stream:
            streamed = stream.get_final_message()
        assert streamed.content[0].text == created.content[0].text == "Hello from claude-sonnet-4-5: hello there"


def test_a_served_requests_ledger_write_is_not_walked_by_botocores_schema_check(client, stack, api_key, fake,
                                                                              monkeypatch):
    """The ledger's transaction is the gateway's own (metering/items.py): botocore's client-side check
    of it against DynamoDB's model walked every attribute of every item, a quarter of the write's CPU.
    DynamoDB still refuses a malformed call, and the entry still goes to the fallback queue then."""
    from botocore import validate

    walked: list[str] = []
    real = validate.ParamValidator.validate

    def counted(self, params, shape):
        walked.append(shape.name)
        return real(self, params, shape)

    monkeypatch.setattr(validate.ParamValidator, "validate", counted)
    client.messages.create(model=CLAUDE, max_tokens=20, messages=HELLO)
    assert [r["status"] for r in stack.records(api_key, 1)] == ["ok"]
    assert not any("TransactWriteItems" in name for name in walked), (
        f"botocore walked the ledger write against the service model: {walked}")


@pytest.mark.parametrize("model", [CLAUDE, "openai/gpt-4o-mini"])
def test_a_cookie_one_callers_answer_set_is_not_sent_with_another_callers_call(server, stack, fake, monkeypatch, model):
    """One client serves every key: a cookie a provider (or the CDN in front of it) sets on one
    caller's answer would ride along with every other caller's next call. The calls carry their
    credentials in headers, and the gateway skips the client's cookie jar (a cost per answer too)."""
    monkeypatch.setattr(fake, "response_headers", {"Set-Cookie": "__cf_bm=first-callers-session; Path=/"})
    first, second = stack.add_key(name="first"), stack.add_key(name="second")
    for key in (first, second):
        anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0, timeout=30).messages.create(
            model=model, max_tokens=20, messages=HELLO)
    sent = [request.headers.get("cookie") for request in fake.snapshot()]
    assert sent == [None, None], f"the provider saw these cookies from the gateway: {sent}"
