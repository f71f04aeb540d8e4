"""The ledger's TransactWriteItems on the wire, without botocore's request machinery.

Each request's usage is one TransactWriteItems, the one DynamoDB call every
request makes. Through botocore's client most of its CPU went to
`Endpoint.make_request` (its event hooks, the retry handler, urllib3, signing,
the response parser) and endpoint ruleset resolution; this caller takes about
a third of the CPU a write (`python -m scripts.benchmark.ledger_write --against
keepalive` measures both, alternating: 1.48 against 0.45 ms on a loaded machine). Here the body is
the JSON DynamoDB's JSON-1.0 protocol takes (the ledger's items are already
in its wire format), signed as botocore's `SigV4Auth` signs (handler/sigv4.py) with the client's
credentials (frozen per call, so refreshing credentials still work), sent on a
kept-alive connection, and a success answer is read with `json.loads`.

What the ledger relies on is botocore's, kept:
- the `before-parameter-build` and `before-call` events are emitted on the
  dynamodb client's emitter: its own handlers add the ClientRequestToken
  (idempotent within DynamoDB's 10 minutes, so a write resent after a lost
  answer is not a second write) and Lambda's X-Amzn-Trace-Id header, and the
  hooks that count AWS calls (tests, the bench) see this call;
- an error answer is parsed by botocore's JSON parser, modeled fields
  (`CancellationReasons`) included, as `Endpoint._add_modeled_error_fields`
  does, and raised as the class the client raises (`ClientError` subclasses);
- a transport failure is a `BotoCoreError`: EndpointConnectionError,
  ConnectTimeoutError (2 s), ReadTimeoutError (5 s), ConnectionClosedError.

The client's own connection settings decide the way: a write the client would send
through a proxy (HTTP(S)_PROXY, NO_PROXY, `Config(proxies=...)`) goes through the client
itself, and TLS is verified as the client verifies (its CA bundle: AWS_CA_BUNDLE or
certifi's; `verify=False`), so a function that reaches DynamoDB only through a proxy or a
private CA writes as it did through botocore.

One attempt a call: the Ledger's own four attempts with backoff
(`Ledger._with_retries`, retrying the codes and statuses botocore's standard
mode retries) replace the client's, which made up to four under each of them
(`max_attempts: 3` counts retries: botocore adds the first attempt), so a
throttled DynamoDB now sees 4 calls, not 16; `runtime/after_response.settle`
still bounds the whole by the invocation's deadline. Not kept: the client's
retry quota (a token bucket across calls) and its check of DynamoDB's
`x-amz-crc32` (a success answer's body is not read by the ledger).
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import threading
import time
from typing import Any, Callable
from urllib.parse import urlsplit

import botocore
from botocore.exceptions import (
    BotoCoreError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.httpsession import get_cert_path
from botocore.parsers import create_parser

from .. import aws
from ..blocking_http import Connection, Pool
from ..sigv4 import Signer

OPERATION = "TransactWriteItems"
_TARGET = "DynamoDB_20120810." + OPERATION
_CONTENT_TYPE = "application/x-amz-json-1.0"
CONNECT_TIMEOUT_S = 2  # aws._CONFIG's
READ_TIMEOUT_S = 5
# An idle connection older than this is closed rather than reused: one dropped without a FIN or
# RST reaching us (a NAT's idle timeout, an environment frozen between invocations) would
# otherwise cost a whole read timeout and one of the ledger's attempts.
IDLE_EXPIRY_S = 60.0


# json.dumps(separators=(",", ":"))'s bytes from one encoder made once; the ledger's items hold no
# cycles to look for.
_compact_json = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


class Writer:
    """TransactWriteItems for one dynamodb client: its endpoint, region, credentials and events."""

    def __init__(self, client: Any, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        meta = client.meta
        self._url = meta.endpoint_url  # AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL, else the region's
        session = client._endpoint.http_session  # noqa: SLF001 - the settings botocore's own sends use
        # A proxy the client would use for this endpoint: the client sends the write itself.
        self.through_client = bool(session._proxy_config.proxy_url_for(self._url))  # noqa: SLF001
        self._verify = session._verify  # noqa: SLF001 - True, False or a CA bundle's path
        parts = urlsplit(self._url)
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._path = parts.path or "/"
        self._region = meta.region_name
        self._signer = Signer(self._url, self._region, "dynamodb")
        self._events = meta.events
        self._model = meta.service_model.operation_model(OPERATION)
        self._service_id = meta.service_model.service_id.hyphenize()
        self._user_agent = f"Botocore/{botocore.__version__} edenai-gateway-ledger"
        self._tls: ssl.SSLContext | None = None  # made on the first https connection
        # Kept-alive connections (a resent write is harmless: its ClientRequestToken makes it one).
        self._pool = Pool(self._connect, idle_expiry=IDLE_EXPIRY_S, clock=clock)

    # ------------------------------------------------------------- the call

    def transact_write_items(self, items: list[dict], token: str | None = None) -> dict:
        """One TransactWriteItems; `token` (a ClientRequestToken) makes the ledger's attempts of one
        write one transaction to DynamoDB: a retry after a lost answer is answered as written."""
        if self.through_client:
            extra = {"ClientRequestToken": token} if token else {}
            return self.client.transact_write_items(TransactItems=items, **extra)
        context = {"client_region": self._region, "client_config": self.client.meta.config,
                   "has_streaming_input": False, "auth_type": None}
        params: dict[str, Any] = {"TransactItems": items}
        if token:
            params["ClientRequestToken"] = token  # botocore's hook only fills one in when absent
        self._events.emit(f"before-parameter-build.{self._service_id}.{OPERATION}",
                          params=params, model=self._model, context=context)
        body = _compact_json(params).encode()
        request = {"url_path": self._path, "query_string": "", "method": "POST", "url": self._url,
                   "headers": {"X-Amz-Target": _TARGET, "Content-Type": _CONTENT_TYPE,
                               "User-Agent": self._user_agent},
                   "body": body, "context": context}
        _, answered = self._events.emit_until_response(
            f"before-call.{self._service_id}.{OPERATION}",
            model=self._model, params=request, request_signer=None, context=context)
        if answered is not None:  # a hook answered in its place (botocore's Stubber does)
            http_response, parsed = answered
            return self._result(http_response.status_code, parsed)
        status, headers, data = self._send(self._signed(request["headers"], body), body)
        if status < 300:
            parsed = _json_object(data)  # the ledger reads none of it: a body that is not JSON is no failure
            parsed["ResponseMetadata"] = {"RequestId": headers.get("x-amzn-requestid", ""),
                                          "HTTPStatusCode": status, "HTTPHeaders": headers,
                                          "RetryAttempts": 0}
            return parsed
        return self._result(status, self._error(status, headers, data))

    def _result(self, status: int, parsed: dict) -> dict:
        if status >= 300:
            code = parsed.get("Error", {}).get("Code")
            raise self.client.exceptions.from_code(code)(parsed, OPERATION)
        return parsed

    def _signed(self, headers: dict, body: bytes) -> dict:
        credentials = self.client._request_signer._credentials  # the client's own chain, refreshed by it
        if credentials is None:
            raise NoCredentialsError()  # botocore's own refusal to send unsigned
        return self._signer.signed(headers, body, credentials.get_frozen_credentials())

    def _error(self, status: int, headers: dict, data: bytes) -> dict:
        """botocore's parse of a JSON-1.0 error (Error.Code from `__type` after `#`, Error.Message,
        ResponseMetadata), with the error shape's own members on top (CancellationReasons for
        TransactionCanceledException), as `Endpoint._add_modeled_error_fields` adds them."""
        response = {"status_code": status, "headers": headers, "body": data}
        parser = create_parser("json")
        try:
            parsed = parser.parse(response, self._model.output_shape)
        except ValueError:  # a body botocore cannot read (not UTF-8: a middlebox's page): named by its status
            return {"Error": {"Code": str(status), "Message": data[:1024].decode("utf-8", "replace")},
                    "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers, "RetryAttempts": 0}}
        code = parsed.get("Error", {}).get("Code")
        shape = self._model.service_model.shape_for_error_code(code) if code else None
        if shape is not None:
            parsed.update(parser.parse(response, shape))
        parsed.setdefault("ResponseMetadata", {})["RetryAttempts"] = 0
        return parsed

    # ------------------------------------------------------------- the wire

    def _send(self, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
        """POST on a kept-alive connection: (status, lower-cased headers, body)."""
        try:
            answer = self._pool.exchange("POST", self._path, headers, body)
        except BotoCoreError:  # no connection made: `_connect` named the failure as botocore does
            raise
        except socket.timeout as exc:
            raise ReadTimeoutError(endpoint_url=self._url, error=exc) from exc
        except OSError as exc:  # blocking_http closed it: a malformed answer, a reset, a new connection's close
            raise ConnectionClosedError(endpoint_url=self._url, error=exc) from exc
        return answer.status, answer.headers, answer.body

    def _connect(self) -> Connection:
        if self._https and self._tls is None:
            self._tls = tls_context(self._verify)
        try:
            connection = Connection.connect(self._host, self._port or (443 if self._https else 80),
                                            timeout=CONNECT_TIMEOUT_S, tls=self._tls if self._https else None)
        except socket.timeout as exc:
            raise ConnectTimeoutError(endpoint_url=self._url, error=exc) from exc
        except OSError as exc:
            raise EndpointConnectionError(endpoint_url=self._url, error=exc) from exc
        connection.settimeout(READ_TIMEOUT_S)
        return connection

    def close(self) -> None:
        self._pool.close()


def tls_context(verify: bool | str) -> ssl.SSLContext:
    """TLS as botocore's urllib3 pool verifies: its CA bundle (certifi's, or AWS_CA_BUNDLE's path, a
    file or a directory), or no verification when the client was made with `verify=False`."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    path = get_cert_path(verify)
    if os.path.isdir(path):  # a directory of hashed certificates, as urllib3 takes it (ca_cert_dir)
        return ssl.create_default_context(capath=path)
    return ssl.create_default_context(cafile=path)


def _json_object(data: bytes) -> dict:
    try:
        parsed = json.loads(data) if data else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


_writer: Writer | None = None
_writer_lock = threading.Lock()


def writer() -> Writer:
    """The writer of the current dynamodb client: `aws.reset_clients` (a SnapStart restore)
    makes a new client, and with it a writer whose connections are new too."""
    global _writer
    client = aws.client("dynamodb")
    current = _writer
    if current is not None and current.client is client:
        return current
    with _writer_lock:
        current = _writer
        if current is None or current.client is not client:
            if current is not None:
                current.close()
            current = _writer = Writer(client)
        return current


def forget_connections() -> None:
    """Close the kept-alive connections (SnapStart: a snapshot holds none, a restore opens its own)."""
    global _writer
    current, _writer = _writer, None
    if current is not None:
        current.close()


def transact_write_items(items: list[dict], token: str | None = None) -> dict:
    return writer().transact_write_items(items, token)
