"""A plain-HTTP forward proxy on loopback, standing in for the HTTP_PROXY an operator sets.

A client that uses a proxy for an `http://` URL sends it the request in absolute form
(`POST http://host:port/path HTTP/1.1`, RFC 9112 section 3.2.2: "A client MUST send a
request-target in absolute-form when making a request to a proxy"); the proxy makes the
request to the origin and relays the answer. This one relays it whole (Content-Length),
its Content-Encoding untouched, and records each request line it forwarded.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Hop-by-hop headers (RFC 9110 section 7.6.1) end at the proxy; the framing is the proxy's own.
_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "upgrade",
        "transfer-encoding", "content-length"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        """Silenced."""

    def do_GET(self):
        target = urlsplit(self.path)
        if not target.scheme:  # origin-form: a client that took this for the server itself
            self.send_error(400, "a proxy takes requests in absolute form")
            return
        self.server.forwarded.append(f"{self.command} {self.path}")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        upstream = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=30)
        try:
            upstream.request(self.command, target.path + (f"?{target.query}" if target.query else ""), body=body,
                             headers={k: v for k, v in self.headers.items() if k.lower() not in _HOP})
            answer = upstream.getresponse()
            data = answer.read()  # chunks joined; a gzip body stays gzip
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in _HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        finally:
            upstream.close()

    do_POST = do_GET


class ForwardProxy:
    """Started on a free loopback port; `forwarded` lists the request lines it relayed."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.forwarded = []
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def forwarded(self) -> list[str]:
        return list(self._server.forwarded)

    def __enter__(self) -> "ForwardProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
