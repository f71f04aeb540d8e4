"""Blocking HTTP/1.1 on kept-alive sockets (handler/blocking_http.py): what the usage write and the
extension's `next` read, framed as RFC 9112 frames an answer, and when a connection is reused.

The server here is a loopback socket that answers each request with scripted bytes, so every
framing a server may choose (Content-Length, chunked, to the connection's end) and every way an
answer can go wrong is exact.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from contextlib import contextmanager

import pytest

from handler.blocking_http import Connection, Disconnected, MalformedAnswer, Pool
from handler.runtime.after_response import Extension, ExtensionsApiError
from tests.support.loopback_tls import tls_pair


class ScriptedServer:
    """Answers the n-th request it reads (on whatever connection) with script[n], then maybe hangs up."""

    def __init__(self, script: list, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self._tls = tls
        self.requests: list[tuple[int, bytes]] = []  # (connection number, request head and body)
        # Released as each kept connection's answer is out, and as each connection ends: after an
        # answer that hangs up, once the connection is closed.
        self.sent = threading.Semaphore(0)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, 0), family=family)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def connections(self) -> int:
        return len({number for number, _ in self.requests})

    def _accept(self) -> None:
        number = 0
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock, number), daemon=True).start()
            number += 1

    def _serve(self, sock: socket.socket, number: int) -> None:
        if self._tls is not None:
            sock = self._tls.wrap_socket(sock, server_side=True)
        reader = sock.makefile("rb")
        with sock, reader:
            try:
                self._answer(sock, reader, number)
            except ConnectionResetError:  # the client closed it with bytes of ours unread
                pass
        self.sent.release()  # the hang-up's

    def _answer(self, sock: socket.socket, reader, number: int) -> None:
        while True:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = reader.readline()
                if not line:
                    return
                head += line
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            self.requests.append((number, head + reader.read(length)))
            step = self.script[min(len(self.requests), len(self.script)) - 1]
            answer, then = step if isinstance(step, tuple) else (step, "keep")
            for piece in answer if isinstance(answer, list) else [answer]:  # a list: pieces, apart
                if isinstance(piece, float):  # a longer pause before the next piece
                    time.sleep(piece)
                    continue
                sock.sendall(piece)
                time.sleep(0.05)
            if then == "hang up":
                return
            self.sent.release()

    def close(self) -> None:
        self._listener.close()


@contextmanager
def serving(*script, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None):
    server = ScriptedServer(list(script), host, tls)
    try:
        yield server
    finally:
        server.close()


def connect(server: ScriptedServer) -> Connection:
    return Connection.connect("127.0.0.1", server.port, timeout=5)


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def this_and_the_next(answer):
    """The answer read from `answer`'s bytes, and the next one (OK) on the same connection: where
    the first ended is where the second begins."""
    with serving(answer, OK) as server:
        connection = connect(server)
        return connection.exchange("GET", "/", {}), connection.exchange("GET", "/", {})


def test_a_content_length_answer_is_read_whole_and_the_connection_is_kept_for_the_next():
    with serving(OK, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\nnope!") as server:
        connection = connect(server)
        first = connection.exchange("POST", "/", {"X-Amz-Target": "T"}, b'{"a":1}')
        second = connection.exchange("POST", "/", {}, b"{}")
    assert (first.status, first.body, first.headers["content-type"]) == (200, b"{}", "application/json")
    assert (second.status, second.body) == (400, b"nope!")
    assert server.connections == 1 and connection.open


def test_the_request_carries_host_with_its_port_and_its_own_content_length():
    with serving(OK) as server:
        connect(server).exchange("POST", "/path", {"Content-Length": "999", "X-Amz-Target": "T"}, b"abc")
    head = server.requests[0][1]
    assert head.startswith(b"POST /path HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n".encode() in head
    assert b"Content-Length: 3\r\n" in head and b"999" not in head, "the body's own length, never the caller's"
    assert head.endswith(b"\r\n\r\nabc")


def test_an_ipv6_host_is_sent_bracketed_as_in_its_url_and_as_sigv4_signs_it():
    try:
        server_cm = serving(OK, host="::1")
        server = server_cm.__enter__()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        Connection.connect("::1", server.port, timeout=5).exchange("GET", "/", {})
    finally:
        server_cm.__exit__(None, None, None)
    assert f"Host: [::1]:{server.port}\r\n".encode() in server.requests[0][1]


def test_a_host_the_caller_signed_is_sent_as_it_is():
    with serving(OK) as server:
        connect(server).exchange("GET", "/", {"Host": "dynamodb.us-east-1.amazonaws.com"})
    head = server.requests[0][1]
    assert head.count(b"Host:") == 1 and b"Host: dynamodb.us-east-1.amazonaws.com\r\n" in head


def test_a_chunked_answer_is_joined_and_its_extensions_and_trailers_dropped():
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"4;name=value\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-Trailer: t\r\n\r\n")
    answer, after = this_and_the_next(chunked)
    assert answer.body == b'{"a":1}'
    assert after.body == b"{}", "the next answer starts where the trailers end"


def test_an_answer_without_a_length_runs_to_the_connections_end_which_then_closes():
    with serving((b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nto the end", "hang up")) as server:
        connection = connect(server)
        answer = connection.exchange("GET", "/", {})
    assert (answer.body, answer.closes, connection.open) == (b"to the end", True, False)


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
])
def test_an_answer_that_ends_the_connection_closes_it_here_too(answer):
    with serving(answer) as server:
        connection = connect(server)
        assert connection.exchange("GET", "/", {}).body == b"{}"
    assert not connection.open


def test_a_head_that_arrives_in_pieces_is_read_whole():
    pieces = [b"HTTP/1.1 200 OK\r\nContent-Ty", b"pe: application/json\r\nContent-Length: 2\r", b"\n\r\n{}"]
    answer, after = this_and_the_next(pieces)
    assert (answer.headers, answer.body) == ({"content-type": "application/json", "content-length": "2"}, b"{}")
    assert after.body == b"{}"


def test_header_lines_ended_by_a_bare_lf_are_lines_too():
    # RFC 9112 section 2.2: a recipient MAY recognize a single LF as a line terminator.
    with serving(b"HTTP/1.1 200 OK\nX-A: 1\r\nContent-Length: 2\r\n\r\n{}") as server:
        answer = connect(server).exchange("GET", "/", {})
    assert (answer.headers["x-a"], answer.body) == ("1", b"{}")


def test_interim_answers_are_skipped_for_the_final_one():
    interim = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
               b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    answer, after = this_and_the_next(interim)
    assert (answer.status, answer.body, "link" in answer.headers) == (200, b"{}", False)
    assert after.status == 200


def test_repeated_header_fields_are_one_value_and_names_are_lower_cased():
    with serving(b"HTTP/1.1 200 OK\r\nX-Thing: a\r\nx-thing:  b \r\nContent-Length: 0\r\n\r\n") as server:
        headers = connect(server).exchange("GET", "/", {}).headers
    assert headers["x-thing"] == "a, b"


@pytest.mark.parametrize("answer, refusal", [
    (b"", Disconnected),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", Disconnected),
    (b"HTTP/1.1 200 OK\r\nContent-Le", Disconnected),
    (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", MalformedAnswer),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", MalformedAnswer),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", MalformedAnswer),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", MalformedAnswer),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", MalformedAnswer),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\n{}\r\n0\r\n\r\n", MalformedAnswer),
    ("HTTP/1.1 200 OK\r\nContent-Length: \u00b2\r\n\r\n{}".encode("latin-1"), MalformedAnswer),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n{}", MalformedAnswer),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\nab\r\n", MalformedAnswer),
    (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n", MalformedAnswer),
])
def test_an_answer_cut_short_or_malformed_is_an_oserror_and_the_connection_is_closed(answer, refusal):
    with serving((answer, "hang up")) as server:
        connection = connect(server)
        with pytest.raises(refusal) as raised:
            connection.exchange("GET", "/", {})
    assert isinstance(raised.value, OSError), "the callers keep or queue on OSError"
    assert not connection.open


def test_a_read_that_outlasts_the_timeout_raises_and_closes():
    with serving(b"") as server:  # reads the request, answers nothing
        connection = connect(server)
        connection.settimeout(0.2)
        with pytest.raises(TimeoutError):
            connection.exchange("GET", "/", {})
    assert not connection.open


# ------------------------------------------------------------- the pool both callers keep


def watched_pool(server: ScriptedServer, tls: ssl.SSLContext | None = None, **options) -> tuple[Pool, list]:
    """A pool of connections to `server`, and what each exchange sent on one came to: its status,
    or the name of the failure (a request sent on a connection the server had closed fails)."""
    outcomes: list = []

    class Watched(Connection):
        def exchange(self, *args, **kwargs):
            try:
                answer = super().exchange(*args, **kwargs)
            except OSError as exc:
                outcomes.append(type(exc).__name__)
                raise
            outcomes.append(answer.status)
            return answer

    return Pool(lambda: Watched.connect("127.0.0.1", server.port, timeout=5, tls=tls), **options), outcomes


def test_a_connection_the_server_closed_while_idle_is_replaced_before_any_request_is_sent_on_it():
    with serving((OK, "hang up"), OK) as server:
        pool, outcomes = watched_pool(server)
        pool.exchange("GET", "/", {})
        assert server.sent.acquire(timeout=5), "the server closes the connection once idle"
        second = pool.exchange("GET", "/", {})
    assert second.status == 200
    assert outcomes == [200, 200], f"no request sent on the closed connection first: {outcomes}"
    assert server.connections == 2


def test_a_tls_connection_is_kept_across_requests_and_replaced_once_the_server_closes_it(tmp_path):
    """A TLS 1.3 server's session tickets, sent after the handshake, are no sign of a closed connection."""
    server_tls, client_tls = tls_pair(tmp_path)
    with serving(OK, OK, (OK, "hang up"), OK, tls=server_tls) as server:
        pool, outcomes = watched_pool(server, tls=client_tls)
        for _ in range(3):
            pool.exchange("GET", "/", {})
        assert server.connections == 1, "a kept TLS connection is reused"
        for _ in range(3):  # two answers, then the third's hang-up
            assert server.sent.acquire(timeout=5)
        pool.exchange("GET", "/", {})
    assert outcomes == [200] * 4, f"no request sent on the closed TLS connection first: {outcomes}"
    assert server.connections == 2


def test_an_idle_connection_with_bytes_no_request_asked_for_is_not_reused_and_they_are_no_answer():
    # A server may send 408 on a connection it has decided to close for idleness (RFC 9110,
    # section 15.5.9): that is no answer to the request sent next.
    timed_out = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    with serving([OK, 0.5, timed_out], OK) as server:  # the 408 well after the answer is read
        pool, outcomes = watched_pool(server)
        pool.exchange("GET", "/", {})
        assert server.sent.acquire(timeout=5), "the server's first answer and the stray bytes after it are out"
        second = pool.exchange("GET", "/", {})
    assert second.status == 200, "the 408 the server sent while the connection was idle is not this answer"
    assert outcomes == [200, 200] and server.connections == 2


def test_a_request_the_servers_close_crossed_on_a_reused_connection_is_sent_once_more_on_a_new_one():
    # A connection can be closed at any time, with a request on its way (RFC 9112, section 9.3.1):
    # this server reads the second request and hangs up without answering it.
    with serving(OK, (b"", "hang up"), OK) as server:
        pool, outcomes = watched_pool(server)
        pool.exchange("POST", "/", {}, b'{"n":1}')
        again = pool.exchange("POST", "/", {}, b'{"n":2}')
    assert again.status == 200
    assert outcomes == [200, "Disconnected", 200]
    assert [number for number, _ in server.requests] == [0, 0, 1]
    assert server.requests[1][1] == server.requests[2][1], "the same request, once more"


def test_a_request_on_a_new_connection_that_fails_is_not_sent_again():
    with serving((b"", "hang up"), OK) as server:
        pool, outcomes = watched_pool(server)
        with pytest.raises(Disconnected):
            pool.exchange("POST", "/", {}, b"{}")
    assert outcomes == ["Disconnected"] and len(server.requests) == 1, "a new connection's failure is the caller's"


def test_a_request_is_sent_once_more_at_most():
    with serving(OK, (b"", "hang up")) as server:
        pool, outcomes = watched_pool(server)
        pool.exchange("GET", "/", {})
        with pytest.raises(Disconnected):
            pool.exchange("GET", "/", {})
    assert outcomes == [200, "Disconnected", "Disconnected"], "the crossed request and one more try, no third"


def test_an_idle_connection_past_its_expiry_is_closed_not_reused():
    now = [100.0]
    with serving(OK) as server:
        pool, outcomes = watched_pool(server, idle_expiry=60.0, clock=lambda: now[0])
        pool.exchange("GET", "/", {})
        now[0] += 59.0
        pool.exchange("GET", "/", {})
        assert server.connections == 1, "idle for less than the expiry: reused"
        kept = pool.take()
        pool.put(kept)
        now[0] += 60.0
        pool.exchange("GET", "/", {})
    assert server.connections == 2, "idle past the expiry: a new connection"
    assert not kept.open, "the expired connection is closed, not left to the garbage collector"
    assert outcomes == [200, 200, 200]


# ------------------------------------------------------------- the extension's calls


REGISTERED = (b"HTTP/1.1 200 OK\r\nLambda-Extension-Identifier: ext-1\r\nContent-Type: application/json\r\n"
              b"Content-Length: 2\r\n\r\n{}")


def event(request_id: str) -> bytes:
    body = f'{{"eventType":"INVOKE","requestId":"{request_id}","deadlineMs":0}}'.encode()
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def test_the_extension_registers_and_takes_every_event_on_one_connection():
    with serving(REGISTERED, event("a"), event("b"), event("c")) as server:
        extension = Extension(f"127.0.0.1:{server.port}")
        extension.register()
        ids = [extension.next_event()["requestId"] for _ in range(3)]
    assert (extension.id, ids) == ("ext-1", ["a", "b", "c"])
    assert server.connections == 1, "one kept connection, not one a call"
    head = server.requests[1][1]
    assert head.startswith(b"GET /2020-01-01/extension/event/next HTTP/1.1\r\n")
    assert b"Lambda-Extension-Identifier: ext-1\r\n" in head


def test_the_extension_replaces_a_connection_the_api_closed_and_loses_no_event():
    with serving(REGISTERED, (event("a"), "hang up"), event("b")) as server:
        extension = Extension(f"127.0.0.1:{server.port}")
        extension.register()
        assert [extension.next_event()["requestId"] for _ in range(2)] == ["a", "b"]
    assert server.connections == 2


def test_a_register_answered_without_an_identifier_is_a_refusal_and_the_write_stays_before_the_return():
    from handler.runtime.after_response import AfterResponse

    nameless = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    with serving(nameless) as server:
        with pytest.raises(ExtensionsApiError, match="without a Lambda-Extension-Identifier"):
            Extension(f"127.0.0.1:{server.port}").register()
        after = AfterResponse.start(ledger=None, runtime_api=f"127.0.0.1:{server.port}")
    assert not after.deferred, "no extension: the function still starts, writing before each response"


def test_an_extensions_api_refusal_is_an_oserror_with_its_words():
    refused = b'HTTP/1.1 403 Forbidden\r\nContent-Length: 29\r\n\r\n{"errorType":"Extension.Bad"}'
    with serving(refused) as server:
        with pytest.raises(ExtensionsApiError, match="403.*Extension.Bad") as raised:
            Extension(f"127.0.0.1:{server.port}").register()
    assert isinstance(raised.value, OSError), "AfterResponse.start falls back to writing before the return"
