"""One upstream answer as the direct routes read it: status, raw headers, and a body.

httpx's Response parses every header into its Headers model and runs each chunk through a
decoder and a chunker, even when nothing is encoded; the direct routes read a status, two
or three headers, and the body's bytes. An Answer is those, read
the way httpx's Response reads them (`status_code`, `headers.get`, `aiter_bytes`, `aread`,
`aclose`), so the code that reads either needs no second path. The body is decoded only
when the answer says it is encoded (httpx asks for gzip and deflate by default, and a
provider or a proxy in front of it may compress): then httpx's own Response decodes it.
"""

from __future__ import annotations

from typing import AsyncIterator

import httpx


def _text(value: bytes) -> str:
    """A header's value as httpx's Headers give it: ASCII, else UTF-8, else Latin-1."""
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("iso-8859-1")


class RawHeaders:
    """An answer's headers as received, in order; looked up by name, whatever its case."""

    __slots__ = ("raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw = raw

    def get(self, name: str, default: str | None = None) -> str | None:
        """The header's values joined by ", " (httpx's Headers.get), or `default`."""
        key = name.lower().encode("ascii")
        found = [value for field, value in self.raw if field.lower() == key]
        if not found:
            return default
        return ", ".join(_text(value) for value in found)


class Answer:
    """Status, headers and the unread body (an httpx.AsyncByteStream) of one answer."""

    __slots__ = ("status_code", "headers", "stream", "http_version", "_closed")

    def __init__(self, status_code: int, raw_headers: list[tuple[bytes, bytes]], stream: httpx.AsyncByteStream,
                 http_version: bytes = b"HTTP/1.1") -> None:
        self.status_code = status_code
        self.headers = RawHeaders(raw_headers)
        self.stream = stream
        self.http_version = http_version
        self._closed = False

    def _encoded(self) -> bool:
        encoding = self.headers.get("content-encoding")
        return bool(encoding) and any(part.strip().lower() not in ("", "identity") for part in encoding.split(","))

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body's bytes, decoded; the answer is closed at its end (its connection goes back
        to the pool then), as httpx's Response does."""
        if self._encoded():
            decoded = httpx.Response(self.status_code, headers=self.headers.raw, stream=self.stream)
            async for chunk in decoded.aiter_bytes():
                yield chunk
            self._closed = True
            return
        async for chunk in self.stream:
            if chunk:
                yield chunk
        await self.aclose()

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body's bytes as received, encoded or not (Bedrock's binary event stream)."""
        async for chunk in self.stream:
            if chunk:
                yield chunk
        await self.aclose()

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self.stream.aclose()
