"""The HTTP edges an attacker probes before any model is called.

No redirect built from the Host header, no ambiguous credentials, no
ambiguous framing, no connection held open by a request that never
finishes arriving; and the local stack's moto keeps serving a key whose
settled spend returned to zero.
"""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from handler.runtime import serving
from tests.support.stack import serve

CLAUDE = "anthropic/claude-sonnet-4-5"
BODY = {"model": CLAUDE, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


def test_a_trailing_slash_is_a_404_not_a_redirect_to_the_callers_host(server, api_key, fake):
    response = httpx.post(f"{server.url}/v3/v1/messages/", json=BODY,
                          headers={"x-api-key": api_key, "host": "evil.example"})
    assert response.status_code == 404, f"answered {response.status_code} to {response.headers.get('location')}"
    assert "location" not in response.headers and fake.count() == 0


def test_two_authorization_headers_naming_different_keys_are_a_401(server, stack, api_key, fake):
    other = stack.add_key(name="other")
    headers = [("x-api-key", api_key), ("authorization", f"Bearer {api_key}"), ("authorization", f"Bearer {other}")]
    response = httpx.post(f"{server.url}/v3/v1/messages", json=BODY, headers=headers)
    assert response.status_code == 401, "the first of two conflicting credentials was taken"
    assert fake.count() == 0


def raw_request(server, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(payload)
        return sock.recv(65536)


def test_content_length_with_chunked_encoding_is_refused(server, api_key, fake):
    body = json.dumps(BODY).encode()
    head = (f"POST /v3/v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: {api_key}\r\n"
            f"content-type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode()
    answer = raw_request(server, head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert fake.count() == 0


# Both parsers uvicorn serves with: httptools (a runtime dependency, the deployed one) and h11
# (where httptools is missing).
PROTOCOLS = [pytest.param("GuardedHttpToolsProtocol", id="httptools"), pytest.param("GuardedH11Protocol", id="h11")]


def test_the_deployed_protocol_is_httptools_with_the_read_deadline():
    assert serving.GuardedHTTPProtocol.__name__ == "GuardedHttpToolsProtocol", \
        f"uvicorn serves with {serving.GuardedHTTPProtocol.__name__}: h11's pure-Python parser, not httptools"


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("part", ["headers", "body", "kept-alive"])
def test_a_request_that_never_finishes_arriving_is_dropped(stack, monkeypatch, part, protocol):
    protocol = getattr(serving, protocol)
    monkeypatch.setattr(protocol, "read_timeout", 1.0)
    key = stack.add_key()
    partial = {"headers": b"POST /v3/v1/messages HTTP/1.1\r\nHost: x\r\nx-api-",
               "body": f"POST /v3/v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: {key}\r\n"
                       "Content-Length: 500\r\n\r\n{\"mod".encode(),
               # after a whole request, answered: the next one on the same connection half sent
               "kept-alive": b"POST /v3/v1/messages HTTP/1.1\r\nHo"}[part]
    with serve(stack, http=protocol) as server:
        sockets = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(5)]
        for sock in sockets:
            if part == "kept-alive":
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                answered = b""
                while not answered.endswith(b'{"status":"ok"}'):
                    answered += sock.recv(1024)
            sock.sendall(partial)
        started = time.monotonic()
        for sock in sockets:
            try:
                assert sock.recv(1024) == b"", "answered a request that never finished arriving"
            except TimeoutError:
                pytest.fail(f"a slow partial request kept its connection ({part}, {protocol.__name__})")
            sock.close()
        assert time.monotonic() - started < 9
        assert httpx.post(f"{server.url}/v3/v1/messages", json=BODY).status_code == 401  # still serving


def test_a_limited_key_keeps_working_once_its_settled_spend_is_back_to_zero(server, stack, fake):
    key = stack.add_key(limits={"monthly_usd": 5})
    fake.fail("claude-sonnet-4-5", status=400)  # metered at $0: the reservation is given back whole
    post = lambda: httpx.post(f"{server.url}/v3/v1/messages", json=BODY, headers={"x-api-key": key}, timeout=30)
    assert post().status_code == 400
    stack.month(key, requests=1)
    assert post().status_code == 200, "moto kept the zeroed budget as 0E-12 and refused every later request"
