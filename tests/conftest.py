"""Shared fixtures: one moto server and one fake upstream per session, a
fresh gateway (own secrets, own app, own uvicorn) per test."""

from __future__ import annotations

import logging

import anthropic
import pytest

from tests.support.fake_upstream import ANTHROPIC, OPENAI, FakeUpstream
from tests.support.stack import ANTHROPIC_TEST_KEY, OPENAI_TEST_KEY, new_stack, serve, settle_servers, start_moto


logging.getLogger("werkzeug").setLevel(logging.ERROR)


@pytest.fixture(scope="session")
def moto_endpoint():
    server, endpoint = start_moto()
    yield endpoint
    server.stop()


@pytest.fixture(scope="session")
def _fake_session():
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def fake(_fake_session):
    """The fake providers, which take only the keys the stack's providers secret holds (a test
    configuring another provider key adds it to `fake.keys`, as the provider issuing it)."""
    _fake_session.clear()
    _fake_session.clear_faults()
    _fake_session.keys = {ANTHROPIC: {ANTHROPIC_TEST_KEY}, OPENAI: {OPENAI_TEST_KEY}}
    yield _fake_session
    _fake_session.clear_faults()


@pytest.fixture
def dynamodb_at(monkeypatch, moto_endpoint):
    """Point the gateway's DynamoDB (only it: SQS and Secrets Manager stay on moto) at a URL,
    through the variable botocore reads for it."""

    from handler import aws
    from handler.metering import transact_wire

    def point(url: str) -> None:
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", url)
        aws.reset_clients()

    yield point
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    aws.reset_clients()
    transact_wire.forget_connections()


@pytest.fixture
def stack(moto_endpoint, fake):
    return new_stack(fake.url)


@pytest.fixture
def server(stack):
    with serve(stack) as running:
        yield running


@pytest.fixture
def api_key(stack):
    return stack.add_key(name="default")


@pytest.fixture
def client(server, api_key):
    """The official Anthropic SDK pointed at the gateway, no SDK retries (tests see every failure)."""
    return anthropic.Anthropic(api_key=api_key, base_url=server.url + "/v3", max_retries=0, timeout=20)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_call(item):
    """Inside pytest's capture (trylast: the innermost wrapper), wait for the running gateways to
    write the lines of the requests the test made: the request log and the metric documents stay
    in the test's captured output (capsys sees them, a failure report shows them) instead of
    reaching the terminal between tests."""
    try:
        return (yield)
    finally:
        settle_servers()


def pytest_sessionfinish(session, exitstatus):
    """Close the coroutines the per-test servers' stopped event loops left suspended (litellm's
    logging worker waits on its queue in each loop that called it) while the interpreter is
    whole. Left to its shutdown instead, CPython 3.11's last collection crashed on them: a
    SIGSEGV in asyncio.Queue.get, exit status 139 after every test had passed."""
    import gc
    import types

    gc.collect()
    for suspended in gc.get_objects():
        if isinstance(suspended, types.CoroutineType) and suspended.cr_frame is not None \
                and not suspended.cr_running:
            try:
                suspended.close()
            except Exception:  # noqa: BLE001 - its loop is closed: nothing can be scheduled, and nothing need be
                pass
