"""HTTP/1.1 over asyncio's own streams: the direct routes' transport.

httpx's default transport (httpcore over anyio) cost about 0.8 ms of CPU per call at c=1
and 1.5 ms at c=16, measured against the fake upstream on loopback: its pool asks every
idle connection whether its socket is readable (through anyio's attribute lookups) each
time it hands one out, so the cost grows with the connections kept. This transport does
what the gateway's calls need at about a tenth of that: keep-alive connections per origin,
reused last-in first-out, each checked alone when taken (closed by the server, or idle past
KEEPALIVE_EXPIRY as httpcore's default); bodies framed by Content-Length, chunked, or the
connection's close. Failures are raised as httpx's own exceptions (ConnectError, ReadTimeout,
RemoteProtocolError...), so `upstream.map_exception` reads them as before.

Two doors lead in: `exchange` (method, origin, target, raw headers, body bytes) answers an
`answer.Answer`, without httpx's Request and Response models, for the direct routes' calls
(anthropic_api.post: Anthropic, Chat Completions, Bedrock, Vertex); `handle_async_request`
serves the httpx client's own path (Google's token exchange, Gemini's token count). Proxies
from the environment keep httpx's own transports (anthropic_api.client mounts them).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import AsyncIterator

import httpx

from .answer import Answer

KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is kept (httpcore's default)
MAX_HEAD_BYTES = 64 * 1024  # status line and headers of one answer
_READ_SIZE = 64 * 1024

Origin = tuple[bytes, str, int]  # scheme, host, port


class _Connection:
    __slots__ = ("origin", "reader", "writer", "idle_since")

    def __init__(self, origin: Origin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.origin = origin
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def usable(self, now: float) -> bool:
        """Still open at both ends, with nothing unread: a server that closed it has sent EOF,
        and a byte it sent between answers means the exchange is broken."""
        return (now - self.idle_since < KEEPALIVE_EXPIRY and not self.writer.is_closing()
                and not self.reader.at_eof() and not self.reader._buffer)  # noqa: SLF001

    def close(self) -> None:
        self.writer.close()


class _ReadDeadline:
    """The read timeout of one exchange: no read (of the head, or of the body) may wait longer
    than `timeout`. One timer serves every read: it is armed once, and when it fires it either
    finds the read it was armed for still waiting (the connection is aborted, the read ends,
    and the exchange raises ReadTimeout) or moves on to the read waiting now. An
    `asyncio.timeout` around each read cost a timer, a context and a task lookup per read."""

    __slots__ = ("_connection", "_timeout", "_loop", "_since", "_armed_since", "_timer", "expired")

    def __init__(self, connection: _Connection, timeout: float) -> None:
        self._connection = connection
        self._timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._since: float | None = None  # when the read waiting now began
        self._armed_since: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.expired = False

    def waiting(self) -> None:
        self._since = since = self._loop.time()
        if self._timer is None:
            self._arm(since)

    def done(self) -> None:
        self._since = None

    def _arm(self, since: float) -> None:
        self._armed_since = since
        self._timer = self._loop.call_at(since + self._timeout, self._fired)

    def _fired(self) -> None:
        self._timer = None
        since = self._since
        if since is None:
            return  # no read waiting: the next one arms the timer again
        if since != self._armed_since:
            self._arm(since)
            return
        self.expired = True
        self._connection.writer.transport.abort()  # the waiting read sees the connection end

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


async def _within(timeout: float | None, work, error: type[httpx.TimeoutException], request: httpx.Request | None):
    if timeout is None:
        return await work
    try:
        async with asyncio.timeout(timeout):
            return await work
    except TimeoutError:
        raise error(f"timed out after {timeout:g} s", request=request) from None


def _head_fields(head: bytes, request: httpx.Request | None) -> tuple[bytes, int, list[tuple[bytes, bytes]]]:
    """(HTTP version, status, raw headers) of a response head, the blank line included."""
    lines = head.split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    code = rest[:3]
    if not version.startswith(b"HTTP/1.") or not code.isdigit():
        raise httpx.RemoteProtocolError(f"malformed status line {lines[0][:100]!r}", request=request)
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise httpx.RemoteProtocolError(f"malformed header line {line[:100]!r}", request=request)
        headers.append((name, value.strip()))
    return version, int(code), headers


class _Body(httpx.AsyncByteStream):
    """One response's body, read from its connection as it is iterated. Read to its end on a
    connection that may stay open, the connection goes back to the pool on close."""

    def __init__(self, transport: "Http11Transport", connection: _Connection, request: httpx.Request | None,
                 length: int | None, chunked: bool, keep: bool, deadline: _ReadDeadline | None) -> None:
        self._transport = transport
        self._connection = connection
        self._request = request
        self._length = length
        self._chunked = chunked
        self._keep = keep
        self._deadline = deadline
        self._done = False
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._done or self._closed:
            return
        reader = self._connection.reader
        try:
            if self._chunked:
                async for chunk in self._chunks():
                    yield chunk
            elif self._length is not None:
                left = self._length
                while left:
                    chunk = await self._read(reader.read(min(left, _READ_SIZE)))
                    if not chunk:
                        raise httpx.RemoteProtocolError(
                            f"peer closed connection without sending complete message body: "
                            f"received {self._length - left} bytes, expected {self._length}", request=self._request)
                    left -= len(chunk)
                    yield chunk
            else:  # delimited by the connection's close
                while chunk := await self._read(reader.read(_READ_SIZE)):
                    yield chunk
            self._done = True
        except (ConnectionError, OSError) as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=self._request) from exc

    async def _read(self, work):
        deadline = self._deadline
        if deadline is None:
            return await work
        return await _read_within(deadline, work, self._request)

    async def _line(self) -> bytes:
        try:
            return await self._read(self._connection.reader.readuntil(b"\r\n"))
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body: "
                                            "incomplete chunked read", request=self._request) from exc

    async def _chunks(self) -> AsyncIterator[bytes]:
        reader = self._connection.reader
        while True:
            size_line = (await self._line()).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise httpx.RemoteProtocolError(f"malformed chunk size {size_line[:20]!r}",
                                                request=self._request) from None
            if size == 0:
                while await self._line() != b"\r\n":  # trailers, then the blank line
                    pass
                return
            try:
                data = await self._read(reader.readexactly(size + 2))
            except asyncio.IncompleteReadError as exc:
                raise httpx.RemoteProtocolError("peer closed connection without sending complete message body: "
                                                "incomplete chunked read", request=self._request) from exc
            yield data[:-2]

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._deadline is not None:
            self._deadline.cancel()
        if self._done and self._keep:
            self._transport._release(self._connection)  # noqa: SLF001 - the pool is the transport's
        else:
            self._connection.close()


async def _read_within(deadline: _ReadDeadline, work, request: httpx.Request | None):
    """One read under the exchange's deadline: an end of the connection the deadline caused
    (it aborts it) is a ReadTimeout, whatever the read made of it."""
    deadline.waiting()
    try:
        data = await work
    except (asyncio.IncompleteReadError, ConnectionError, OSError):
        if deadline.expired:
            raise _timed_out(deadline, request) from None
        raise
    finally:
        deadline.done()
    if not data and deadline.expired:
        raise _timed_out(deadline, request)
    return data


def _timed_out(deadline: _ReadDeadline, request: httpx.Request | None) -> httpx.ReadTimeout:
    return httpx.ReadTimeout(f"timed out after {deadline._timeout:g} s", request=request)  # noqa: SLF001


class Http11Transport(httpx.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 connections per origin (scheme, host, port), at most `max_idle` idle."""

    def __init__(self, *, max_idle: int = 64, ssl_context: ssl.SSLContext | None = None) -> None:
        self._max_idle = max_idle
        self._ssl = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}
        self._idle_count = 0

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()  # what httpx's own transport verifies with
        return self._ssl

    def _take(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            self._idle_count -= 1
            if connection.usable(now):
                return connection
            connection.close()
        return None

    def _release(self, connection: _Connection) -> None:
        if self._idle_count >= self._max_idle:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.setdefault(connection.origin, []).append(connection)
        self._idle_count += 1

    async def _connect(self, origin: Origin, request: httpx.Request | None, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        tls = self._ssl_context() if scheme == b"https" else None
        try:
            reader, writer = await _within(
                timeout, asyncio.open_connection(host, port, ssl=tls, server_hostname=host if tls else None,
                                                 limit=MAX_HEAD_BYTES),
                httpx.ConnectTimeout, request)
        except OSError as exc:  # refused, unreachable, a name that does not resolve, a bad certificate
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
        return _Connection(origin, reader, writer)

    async def exchange(self, method: bytes, origin: Origin, target: bytes, headers: list[tuple[bytes, bytes]],
                       body: bytes, *, connect_timeout: float | None, write_timeout: float | None,
                       read_timeout: float | None, request: httpx.Request | None = None) -> Answer:
        """One request on a pooled (or new) connection, as given: `headers` are sent as they are
        (Host and Content-Length included); `read_timeout` bounds each read. The answer's body
        is not yet read."""
        if origin[0] not in (b"http", b"https"):
            raise httpx.UnsupportedProtocol(
                f"Request URL has an unsupported protocol '{origin[0].decode()}://'.", request=request)
        connection = self._take(origin) or await self._connect(origin, request, connect_timeout)
        deadline = None if read_timeout is None else _ReadDeadline(connection, read_timeout)
        try:
            head = [method, b" ", target, b" HTTP/1.1\r\n"]
            for name, value in headers:
                head += [name, b": ", value, b"\r\n"]
            head.append(b"\r\n")
            await self._send(connection, b"".join(head) + body, write_timeout, request)
            version, status, raw = await self._head(connection, deadline, request)
            return Answer(status, raw, self._body(connection, method, request, status, raw, version, deadline),
                          version)
        except BaseException:
            if deadline is not None:
                deadline.cancel()
            connection.close()
            raise

    @staticmethod
    async def _send(connection: _Connection, data: bytes, timeout: float | None,
                    request: httpx.Request | None) -> None:
        writer = connection.writer
        try:
            writer.write(data)
            transport = writer.transport
            if transport.get_write_buffer_size() or transport.is_closing():  # not all sent: wait, or fail
                await _within(timeout, writer.drain(), httpx.WriteTimeout, request)
        except (ConnectionError, OSError) as exc:
            raise httpx.WriteError(str(exc) or type(exc).__name__, request=request) from exc

    @staticmethod
    async def _head(connection: _Connection, deadline: _ReadDeadline | None,
                    request: httpx.Request | None) -> tuple[bytes, int, list[tuple[bytes, bytes]]]:
        reader = connection.reader
        while True:
            try:
                work = reader.readuntil(b"\r\n\r\n")
                raw_head = await (work if deadline is None else _read_within(deadline, work, request))
            except asyncio.IncompleteReadError as exc:
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.",
                                                request=request) from exc
            except asyncio.LimitOverrunError as exc:
                raise httpx.RemoteProtocolError("The response's headers are too large.", request=request) from exc
            except (ConnectionError, OSError) as exc:
                raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
            version, status, headers = _head_fields(raw_head, request)
            if not 100 <= status < 200 or status == 101:
                return version, status, headers  # an interim answer (100 Continue) is followed by the real one

    def _body(self, connection: _Connection, method: bytes, request: httpx.Request | None, status: int,
              headers: list[tuple[bytes, bytes]], version: bytes, deadline: _ReadDeadline | None) -> _Body:
        values: dict[bytes, bytes] = {}
        for name, value in headers:
            key = name.lower()
            values[key] = values[key] + b"," + value if key in values else value
        keep = version == b"HTTP/1.1" and b"close" not in values.get(b"connection", b"").lower()
        chunked = b"chunked" in values.get(b"transfer-encoding", b"").lower()
        length: int | None = None
        if method == b"HEAD" or status in (204, 304):
            length = 0
        elif not chunked and b"content-length" in values:
            try:
                length = int(values[b"content-length"].split(b",")[0])
            except ValueError:
                raise httpx.RemoteProtocolError("malformed Content-Length", request=request) from None
        elif not chunked:
            keep = False  # read to the close
        return _Body(self, connection, request, length, chunked, keep, deadline)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """httpx's door: the request's parts, its per-phase timeouts, and the answer as httpx's Response."""
        url = request.url
        scheme = url.raw_scheme
        if scheme not in (b"http", b"https"):
            raise httpx.UnsupportedProtocol(f"Request URL has an unsupported protocol '{url.scheme}://'.",
                                            request=request)
        timeouts = request.extensions.get("timeout") or {}
        body = b"".join([chunk async for chunk in request.stream])
        headers = request.headers.raw
        if body and "content-length" not in request.headers and "transfer-encoding" not in request.headers:
            headers = [*headers, (b"Content-Length", str(len(body)).encode())]
        answer = await self.exchange(
            request.method.encode("ascii"), (scheme, url.host, url.port or (443 if scheme == b"https" else 80)),
            url.raw_path, headers, body, connect_timeout=timeouts.get("connect"),
            write_timeout=timeouts.get("write"), read_timeout=timeouts.get("read"), request=request)
        return httpx.Response(answer.status_code, headers=answer.headers.raw,
                              extensions={"http_version": answer.http_version}, stream=answer.stream)

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
        self._idle_count = 0
