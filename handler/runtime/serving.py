"""uvicorn's HTTP/1.1 protocols with a deadline for reading each request.

uvicorn times out idle keep-alive connections but nothing else: a client that
sends its headers (or its body) a byte at a time holds a connection, and the
memory behind it, for as long as it likes (five such connections were still
open after 45 s). Each request here must arrive whole within
`GATEWAY_REQUEST_READ_TIMEOUT` seconds of its first byte (of the connection,
for the first one), or the connection is closed.

Both of uvicorn's parsers get the deadline: httptools (compiled llhttp, a
fraction of h11's CPU per request) and h11 (pure Python). `GuardedHTTPProtocol`
is the httptools one when httptools is installed (it is a runtime dependency),
else the h11 one. Used wherever uvicorn serves the app:
`--http handler.runtime.serving:GuardedHTTPProtocol`.
"""

from __future__ import annotations

import asyncio
import importlib.util

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..config import Settings


class ReadDeadline:
    """The timer half: armed when a request starts arriving, disarmed when it is whole."""

    read_timeout: float = Settings.from_env().request_read_timeout
    _read_timer: asyncio.TimerHandle | None = None
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def _arm(self) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _still_reading(self) -> bool:
        return True

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self._still_reading() and not self.transport.is_closing():
            self.logger.warning("closing a connection whose request took over %.0f s to arrive",  # type: ignore[attr-defined]
                                self.read_timeout)
            self.transport.close()


class GuardedH11Protocol(ReadDeadline, H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._read_timer = None
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._read_timer is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)
        if not self._still_reading():
            self._disarm()  # the whole request is in (or the connection is done with)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _still_reading(self) -> bool:
        return self.conn.their_state in (h11.IDLE, h11.SEND_BODY)


GuardedHTTPProtocol: type[asyncio.Protocol] = GuardedH11Protocol

if importlib.util.find_spec("httptools") is not None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpToolsProtocol(ReadDeadline, HttpToolsProtocol):
        """llhttp calls `on_message_begin` at a request's first byte and `on_message_complete`
        once its body is whole: the deadline runs between the two (from the connection's start
        for the first request), pipelined requests included."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self._read_timer = None
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            if self._read_timer is None:
                self._arm()
            super().on_message_begin()

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    GuardedHTTPProtocol = GuardedHttpToolsProtocol
