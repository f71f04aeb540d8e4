"""The whole gateway on loopback for tests: moto server, fake upstream, uvicorn.

Real parts over real HTTP: boto3 reaches the moto server through
AWS_ENDPOINT_URL exactly as it would reach AWS, litellm reaches the fake
upstream through the providers secret's api_base, and tests talk to uvicorn
with the official anthropic SDK.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Iterator

import boto3
import uvicorn

from handler import aws
from tests.support import moto_dynamodb, moto_secrets
from handler.app import create_app
from handler.config import Settings
from handler.keys.store import hash_key, new_key, new_key_id
from handler.metering.ledger import Ledger
from handler.metering.items import from_item

ANTHROPIC_TEST_KEY = "sk-ant-fake-provider-credential-0001"
OPENAI_TEST_KEY = "sk-openai-fake-provider-credential-0002"

TEST_MODELS = {
    "anthropic/claude-sonnet-4-5": {},
    "anthropic/claude-haiku-4-5": {},
    "openai/gpt-4o-mini": {},
    "openai/gpt-4o": {},
}


def start_moto(port: int = 0) -> tuple[object, str]:
    """A ThreadedMotoServer on a loopback port (any free one by default), and boto3 pointed at it."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every call otherwise
    moto_dynamodb.install()
    moto_secrets.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )
    os.environ.pop("AWS_PROFILE", None)
    aws.reset_clients()
    return server, endpoint


def providers_document(upstream_url: str, models: dict | None = None) -> dict:
    return {
        "providers": {
            "anthropic": {"api_key": ANTHROPIC_TEST_KEY, "api_base": upstream_url},
            "openai": {"api_key": OPENAI_TEST_KEY, "api_base": upstream_url + "/v1"},
        },
        "models": TEST_MODELS if models is None else models,
    }


def key_entry(key: str, **extra) -> dict:
    return {"key_id": new_key_id(), "hash": hash_key(key), "name": extra.pop("name", "test"),
            "status": "active", "created_at": "2026-11-25T00:00:00+00:00", **extra}


class UvicornThread:
    """The app under uvicorn on a free loopback port, in a background thread."""

    running: set["UvicornThread"] = set()  # started and not stopped: conftest settles them after each test
    PROTOCOL = "handler.runtime.serving:GuardedHTTPProtocol"  # as deployed (scripts/_package.py's run.sh)

    def __init__(self, app, http: type | str = PROTOCOL) -> None:
        self.app = app
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5,
                                http=http)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def start(self) -> "UvicornThread":
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            self._thread.join(0.01)
        UvicornThread.running.add(self)
        return self

    def stop(self) -> None:
        UvicornThread.running.discard(self)
        self._server.should_exit = True
        self._thread.join(5)

    def settle(self, timeout: float = 5.0) -> None:
        """Wait until the gateway has written the line and metrics of every response it finished.

        They are written after the response's last byte (with the ledger entry, once it is in), so
        a caller can be done first: a reader of stdout may see the line without its metrics yet,
        and lines written while pytest reports between a test's phases reach the terminal
        instead of the test's captured output."""
        telemetry = getattr(getattr(self.app, "state", None), "telemetry", None)
        live = getattr(telemetry, "_live", None)  # the requests whose line is still to be written
        deadline = time.monotonic() + timeout
        while live and any(o.latency_ms is not None for o in list(live.values())) and time.monotonic() < deadline:
            time.sleep(0.005)


def settle_servers() -> None:
    """Every running gateway has written the line and metrics of each response it finished."""
    for server in list(UvicornThread.running):
        server.settle()


@dataclass
class Stack:
    """One isolated gateway: its own secrets, its own app instance."""

    settings: Settings
    upstream_url: str
    keys: list[dict] = field(default_factory=list)

    @property
    def sm(self):
        return boto3.client("secretsmanager")

    def put_keys(self) -> None:
        aws.write_json_secret(self.settings.keys_secret_id, {"keys": self.keys})

    def put_providers(self, document: dict) -> None:
        aws.write_json_secret(self.settings.providers_secret_id, document)

    def add_key(self, **extra) -> str:
        key = new_key()
        self.keys.append(key_entry(key, **extra))
        self.put_keys()
        return key

    def ledger(self, **options) -> Ledger:
        return Ledger(self.settings.usage_table, **options)

    def items(self, key: str, prefix: str) -> list[dict]:
        pages = boto3.client("dynamodb").get_paginator("query").paginate(
            TableName=self.settings.usage_table, ConsistentRead=True,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": f"KEY#{self.key_id(key)}"}, ":prefix": {"S": prefix}})
        return [from_item(item) for page in pages for item in page["Items"]]

    def records(self, key: str, count: int, timeout: float = 10.0) -> list[dict]:
        """The key's request records, once `count` of them are written (metering runs after the response)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.items(key, "REQ#")
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def month(self, key: str, requests: int | None = None, timeout: float = 10.0) -> dict:
        """The key's month aggregate; with `requests`, once it counts that many.

        moto applies a transaction's writes one after another, so a reader can
        see the request record a moment before the aggregates (DynamoDB cannot)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.items(key, "MONTH#")
            month = found[0] if found else {}
            if requests is None or month.get("requests") == requests or time.monotonic() > deadline:
                return month
            time.sleep(0.02)

    def key_id(self, key: str) -> str:
        return next(entry["key_id"] for entry in self.keys if entry["hash"] == hash_key(key))

    def revoke(self, key: str) -> None:
        for entry in self.keys:
            if entry["hash"] == hash_key(key):
                entry["status"] = "revoked"
        self.put_keys()


def new_stack(upstream_url: str, **settings_overrides) -> Stack:
    suffix = uuid.uuid4().hex[:10]
    settings = replace(
        Settings.from_env(),
        keys_secret_id=f"test/{suffix}/keys",
        providers_secret_id=f"test/{suffix}/providers",
        usage_table=f"test-usage-{suffix}",
        **settings_overrides,
    )
    stack = Stack(settings, upstream_url)
    Ledger(settings.usage_table).create_table()
    stack.put_keys()
    stack.put_providers(providers_document(upstream_url))
    return stack


@contextmanager
def serve(stack: Stack, http: type | str = UvicornThread.PROTOCOL, **app_options) -> Iterator[UvicornThread]:
    server = UvicornThread(create_app(stack.settings, **app_options), http=http).start()
    try:
        yield server
    finally:
        server.stop()


def wait_until_healthy(url: str, process, timeout: float) -> None:
    """Poll `url`/health until the server in `process` answers; fail with its output if it dies."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            output = process.stdout.read().decode()[-3000:] if process.stdout else ""
            raise AssertionError(f"{url} did not come up: {output}")
        time.sleep(0.1)


def running_on_a_loop() -> bool:
    """Whether the caller runs on an event loop's thread (a walk the gateway keeps on the loop)
    or in a worker thread (one it moved off)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
