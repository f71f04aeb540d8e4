"""A minimal HTTP/1.1 keep-alive client on asyncio streams.

httpx costs the client about as much CPU per request as a lean server does;
on a 2-core machine that CPU is taken from the server under test. This client
only writes a prebuilt request and frames the response (Content-Length or
chunked), so the load generator stays far below one core.
"""

from __future__ import annotations

import asyncio
import socket
import time


class ProtocolError(Exception):
    pass


def build_request(host: str, port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}",
             *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def request(self, raw: bytes) -> tuple[int, float, float, bytes]:
        """(status, seconds to the first body chunk, seconds to the end, body). Reconnects as needed.

        A response whose `server-timing` names an invocation's duration (the buffered Lambda
        target's API Gateway, scripts/benchmark/api_gateway.py) is timed by it instead: Mangum
        buffers, so its first byte comes with its last. One that names a time queued (the
        streaming target's adapter, scripts/benchmark/web_adapter.py: the wait for the last
        invocation's usage write) has it taken off both times."""
        if self._writer is None:
            await self._open()
        started = time.perf_counter()
        try:
            self._writer.write(raw)
            head = await self._reader.readuntil(b"\r\n\r\n")
            status, headers = _parse_head(head)
            first = time.perf_counter()
            if "chunked" in headers.get("transfer-encoding", ""):
                body, first = await self._chunked()
            elif "content-length" in headers:
                body = await self._reader.readexactly(int(headers["content-length"]))
            else:
                body = await self._reader.read()
                self.close()
            if headers.get("connection", "").lower() == "close":
                self.close()
        except BaseException:
            self.close()
            raise
        server_timing = headers.get("server-timing", "")
        invocation_s = timing_seconds(server_timing, "invocation")
        if invocation_s is not None:
            return status, invocation_s, invocation_s, body
        queued_s = timing_seconds(server_timing, "queued") or 0.0
        return status, first - started - queued_s, time.perf_counter() - started - queued_s, body

    async def _chunked(self) -> tuple[bytes, float]:
        parts, first = [], None
        while True:
            size = int((await self._reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await self._reader.readline()) not in (b"\r\n", b""):
                    pass
                break
            parts.append(await self._reader.readexactly(size + 2))
            if first is None:
                first = time.perf_counter()
        body = b"".join(part[:-2] for part in parts)
        return body, first if first is not None else time.perf_counter()


def timing_seconds(server_timing: str, metric_name: str) -> float | None:
    """The `<metric_name>;dur=MS` metric of a Server-Timing header, in seconds, or None."""
    for metric in server_timing.split(","):
        name, _, params = metric.strip().partition(";")
        if name == metric_name and params.startswith("dur="):
            return float(params[4:]) / 1000
    return None


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError):
        raise ProtocolError(f"bad status line {lines[0]!r}") from None
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return status, headers
