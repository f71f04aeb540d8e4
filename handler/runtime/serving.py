"""uvicorn's HTTP/1.1 protocol with a deadline for reading each request.

uvicorn times out idle keep-alive connections but nothing else: a client that
sends its headers (or its body) a byte at a time holds a connection, and the
memory behind it, for as long as it likes (five such connections were still
open after 45 s). Each request here must arrive whole within
`GATEWAY_REQUEST_READ_TIMEOUT` seconds of its first byte (of the connection,
for the first one), or the connection is closed. Used wherever uvicorn serves
the app: `--http handler.runtime.serving:GuardedH11Protocol`.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..config import Settings


class GuardedH11Protocol(H11Protocol):
    read_timeout: float = Settings.from_env().request_read_timeout

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._read_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._read_timer is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE and self.conn.their_state is not h11.SEND_BODY:
            self._disarm()  # the whole request is in (or the connection is done with)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self.logger.warning("closing a connection whose request took over %.0f s to arrive", self.read_timeout)
            self.transport.close()
