"""Blocking HTTP/1.1 exchanges on a kept-alive socket, for the threads that call AWS.

The usage write (DynamoDB's TransactWriteItems) and the extension's `next`
(the Lambda Extensions API) run on threads of their own, once per invocation.
Through `http.client` and `urllib` each answer's headers went through the
`email` package's parser, and urllib opened a new connection for every event:
in buffered mode's profile those two were a fifth of the function's own CPU.
Here a request is one `sendall`, and the answer is read with the buffered
reader's `readline` and split by hand: status line, headers, then a body
framed by Content-Length, chunked transfer coding, or the connection's end.

What it reads is what RFC 9112 allows a server to send; what it leaves out is
what these callers never meet: no 1xx answers (they send no Expect), no
pipelining, no trailers kept (they are read and dropped).

Both callers keep their connections in a `Pool`: reused while they are good,
and a request the server's idle close crossed is sent once more.
"""

from __future__ import annotations

import re
import select
import socket
import ssl
import threading
import time
from typing import Callable, NamedTuple

# Lines longer than this are no HTTP these APIs send: refused rather than buffered without end.
MAX_LINE = 65536
MAX_HEADERS = 100
# The answers these callers read are a few KB at most (DynamoDB's, an Extensions API event):
# a body past this is a broken endpoint's, refused rather than held in memory.
MAX_BODY = 1 << 20
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")


class Disconnected(ConnectionResetError):
    """The server closed the connection before a whole answer: on a reused connection, a stale one."""


# How a reused connection the server closed while it was idle fails, before any answer.
_STALE = (BrokenPipeError, ConnectionResetError)  # Disconnected is a ConnectionResetError


class MalformedAnswer(OSError):
    """Bytes that are not an HTTP/1.1 answer."""


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]  # names lower-cased; a repeated field's values joined by ", "
    body: bytes
    closes: bool  # the server ends the connection after this answer


class Connection:
    """One socket, one exchange at a time; `exchange` again to reuse it while `open`."""

    def __init__(self, sock: socket.socket, host_header: str) -> None:
        self._sock = sock
        self._reader = sock.makefile("rb")
        self._host = host_header
        self.open = True
        # Kept, so the idle check is one poll(2): about half a microsecond (select() made per call: 1).
        self._readable = select.poll()
        self._readable.register(sock, select.POLLIN)

    @classmethod
    def connect(cls, host: str, port: int, *, timeout: float | None, tls: ssl.SSLContext | None = None) -> "Connection":
        """Connected (and TLS-wrapped), with TCP_NODELAY: each request is one write, never delayed.

        The Host header is `http.client`'s: the port only when it is not the scheme's own, as
        botocore's SigV4 signs it."""
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls is not None:
                sock = tls.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
        default_port = 443 if tls is not None else 80
        name = f"[{host}]" if ":" in host else host  # an IPv6 literal, bracketed as in its URL (and as signed)
        return cls(sock, name if port == default_port else f"{name}:{port}")

    def settimeout(self, timeout: float | None) -> None:
        self._sock.settimeout(timeout)

    def exchange(self, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> Answer:
        """Send one request and read its answer whole. Closed on any failure, and after an
        answer that ends the connection."""
        try:
            self._sock.sendall(_request(method, target, self._host, headers, body))
            answer = self._read_answer()
        except BaseException:
            self.close()
            raise
        if answer.closes:
            self.close()
        return answer

    def close(self) -> None:
        self.open = False
        self._reader.close()
        self._sock.close()

    def closed_by_peer(self) -> bool:
        """For an idle connection: whether it is readable (the server's FIN or RST, a TLS
        close_notify, or bytes no request asked for). Any of these means it is not to be reused;
        checked without waiting, so the common stale case costs no failed send. Bytes that came
        with the last answer, already in the reader's buffer, are not seen here."""
        return bool(self._readable.poll(0))

    # ------------------------------------------------------------- reading

    def _line(self) -> bytes:
        line = self._reader.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise MalformedAnswer("an answer line longer than 64 KiB")
        return line

    def _read_answer(self) -> Answer:
        while True:
            status_line = self._line()
            if not status_line:
                raise Disconnected("the server closed the connection before answering")
            version, _, rest = status_line.partition(b" ")
            code = rest[:3]
            if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
                raise MalformedAnswer(f"not an HTTP/1.1 status line: {status_line[:80]!r}")
            headers = self._headers()
            # An interim answer (100 Continue, 103 Early Hints) may come before the final one, asked
            # for or not, and a client skips it (RFC 9110, 15.2). 101 is no interim answer: these
            # requests never ask to switch protocols, so it is read as the answer it claims to be.
            if not code.startswith(b"1") or code == b"101":
                break
        connection = headers.get("connection", "").lower()
        closes = "close" in connection or (version == b"HTTP/1.0" and "keep-alive" not in connection)
        status = int(code)
        if status in (204, 304):
            return Answer(status, headers, b"", closes)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return Answer(status, headers, self._chunked(), closes)
        length = headers.get("content-length")
        if length is None:  # the body runs to the connection's end
            body = self._reader.read(MAX_BODY + 1)
            if len(body) > MAX_BODY:
                raise MalformedAnswer("an answer's body past 1 MiB")
            return Answer(status, headers, body, True)
        length = length.strip()
        if not length.isascii() or not length.isdigit():  # str.isdigit alone takes "²"
            raise MalformedAnswer(f"Content-Length {length[:40]!r}")
        return Answer(status, headers, self._exactly(int(length)), closes)

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            line = self._line()
            if line in (b"\r\n", b"\n"):
                return headers
            if not line.endswith(b"\n"):
                raise Disconnected("the server closed the connection in the answer's headers")
            name, colon, value = line.partition(b":")
            if not colon:
                raise MalformedAnswer(f"a header line without a colon: {line[:80]!r}")
            key = name.decode("latin-1").strip().lower()
            text = value.decode("latin-1").strip()
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        raise MalformedAnswer(f"more than {MAX_HEADERS} header lines")

    def _exactly(self, size: int) -> bytes:
        if size > MAX_BODY:
            raise MalformedAnswer(f"an answer's body of {size} bytes, past 1 MiB")
        data = self._reader.read(size)
        if len(data) < size:
            raise Disconnected(f"the answer's body ended after {len(data)} of {size} bytes")
        return data

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = self._line().split(b";", 1)[0].strip()
            if not _HEX.fullmatch(size_line):  # int(x, 16) would also take "-1", "0x2" or "1_0"
                raise MalformedAnswer(f"a chunk size that is not hexadecimal: {size_line[:40]!r}")
            size = int(size_line, 16)
            if size == 0:
                break
            total += size
            if total > MAX_BODY:
                raise MalformedAnswer("a chunked answer's body past 1 MiB")
            parts.append(self._exactly(size))
            self._exactly(2)  # the chunk's CRLF
        for _ in range(MAX_HEADERS + 1):  # trailers, dropped
            if self._line() in (b"\r\n", b"\n", b""):
                return b"".join(parts)
        raise MalformedAnswer(f"more than {MAX_HEADERS} trailer lines")


class Pool:
    """Kept-alive connections to one endpoint, shared by the threads that call it.

    A request goes on the most recently used idle connection that is still good (idle for less
    than `idle_expiry` seconds, not closed by the server), else on a new one from `connect`. A
    server's close can still cross a request on a reused connection: that request is sent once
    more, on a new connection, so the requests sent through a pool must be safe to repeat. A new
    connection's failure is the caller's, never resent."""

    def __init__(self, connect: Callable[[], Connection], *, idle_expiry: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._connect = connect
        self._idle_expiry = idle_expiry  # None: idle connections never expire
        self._clock = clock
        self._idle: list[tuple[float, Connection]] = []  # (idle since, connection), the latest last
        self._lock = threading.Lock()

    def exchange(self, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> Answer:
        """`Connection.exchange` on a kept connection, then kept again while it is open."""
        connection = self.take()
        if connection is not None:
            try:
                return self._exchange(connection, method, target, headers, body)
            except _STALE:
                pass  # closed by the server as the request went: once more, on a new connection
        return self._exchange(self._connect(), method, target, headers, body)

    def _exchange(self, connection: Connection, method: str, target: str, headers: dict[str, str],
                  body: bytes) -> Answer:
        answer = connection.exchange(method, target, headers, body)
        self.put(connection)
        return answer

    def take(self) -> Connection | None:
        """The most recently used idle connection that is still good; the others it passes are closed."""
        now = self._clock() if self._idle_expiry is not None else 0.0
        taken, dropped = None, []
        with self._lock:
            while self._idle:
                since, connection = self._idle.pop()
                if self._idle_expiry is not None and now - since >= self._idle_expiry:
                    dropped.append(connection)  # and the rest, idle longer still
                    dropped += [older for _, older in self._idle]
                    self._idle.clear()
                elif connection.closed_by_peer():
                    dropped.append(connection)
                else:
                    taken = connection
                    break
        for connection in dropped:
            connection.close()
        return taken

    def put(self, connection: Connection) -> None:
        """Kept for the next request, unless its last answer closed it."""
        if connection.open:
            since = self._clock() if self._idle_expiry is not None else 0.0
            with self._lock:
                self._idle.append((since, connection))

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for _, connection in idle:
            connection.close()


def _request(method: str, target: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    """The request's bytes: Host (the caller's, when it signed one) and Content-Length are framed here."""
    lines = [f"{method} {target} HTTP/1.1"]
    if not any(name.lower() == "host" for name in headers):
        lines.append(f"Host: {host}")
    lines += [f"{name}: {value}" for name, value in headers.items() if name.lower() != "content-length"]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
