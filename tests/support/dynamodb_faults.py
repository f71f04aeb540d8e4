"""A loopback DynamoDB endpoint that answers what a failing DynamoDB answers, and records each call.

moto cannot be made to throttle or fail; this server answers every request
with the next scripted answer, in DynamoDB's JSON-1.0 wire format: HTTP 400
with `{"__type": "com.amazonaws.dynamodb.v20120810#<Code>", "message": ...}`,
as "Error handling with DynamoDB" shows a low-level error response
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html),
or a 5xx whose body is not JSON (a load balancer's page). Connections are kept
alive (HTTP/1.1), as DynamoDB's are, and each call notes which one it came on.
Given `signers` (access key id -> secret key and session token), a call must be
SigV4-signed by one of them for dynamodb in `region`, or it is refused as
DynamoDB refuses it: 400 InvalidSignatureException ("The request signature we
calculated does not match the signature you provided...", the developer guide's
"Error handling" table lists it as a 400), or 400 UnrecognizedClientException ("The
security token included in the request is invalid.") for an access key or session
token it does not know.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.fake_bedrock import signature_problem

JSON_1_0 = "application/x-amz-json-1.0"


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = JSON_1_0
    hang_up: bool = False  # close the connection after answering, without saying so (an idle timeout)
    # False: close the connection on the request without answering it, as a server's idle close
    # crosses a request on its way (RFC 9112, section 9.3.1: a connection can close at any time).
    answered: bool = True


def error(code: str, message: str, status: int = 400) -> Answer:
    body = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}
    return Answer(status, json.dumps(body).encode())


# DynamoDB's words for these codes (the developer guide's "Error messages and codes" table).
THROTTLED = error("ThrottlingException", "Rate of requests exceeds the allowed throughput.")
UNAVAILABLE = Answer(503, b"<html><body><b>Http/1.1 Service Unavailable</b></body></html>", "text/html")
WRITTEN = Answer(200, b"{}")
WRITTEN_THEN_HANG_UP = Answer(200, b"{}", hang_up=True)
CLOSED_UNANSWERED = Answer(0, b"", answered=False)


@dataclass
class Call:
    connection: int
    headers: dict[str, str]
    body: dict
    raw: bytes = b""  # the body's bytes as they came


@dataclass
class FaultyDynamoDB:
    """Answers each call with `script`'s next answer (its last one, once the script is used up)."""

    script: list[Answer]
    keep_calls: bool = True  # False: a long-running endpoint (the ledger_write benchmark's) keeps none
    signers: dict[str, tuple[str, str | None]] | None = None  # access key id -> (secret key, session token)
    region: str = "us-east-1"
    calls: list[Call] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why each refused call was refused
    url: str = ""

    def __enter__(self) -> "FaultyDynamoDB":
        fake = self
        numbers = itertools.count()

        class Handler(BaseHTTPRequestHandler):  # one instance a connection
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # the answer's head and body are two writes

            def setup(self) -> None:
                super().setup()
                self.number = next(numbers)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                body = json.loads(raw)
                headers = {k.lower(): v for k, v in self.headers.items()}
                index = len(fake.calls)
                if fake.keep_calls:
                    fake.calls.append(Call(self.number, headers, body, raw))
                answer = fake.refusal(self.path, headers, raw) or fake.script[min(index, len(fake.script) - 1)]
                if not answer.answered:
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                self.send_header("x-amzn-RequestId", f"FAKE{index:04d}")
                self.end_headers()
                self.wfile.write(answer.body)
                self.wfile.flush()
                if answer.hang_up:
                    self.close_connection = True

            def log_message(self, *_) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def __exit__(self, *_) -> None:
        self._server.shutdown()
        self._server.server_close()

    def refusal(self, path: str, headers: dict[str, str], body: bytes) -> Answer | None:
        """DynamoDB's answer to a request not signed by one of `signers` (None: it is, or none are set)."""
        if self.signers is None:
            return None
        credential = headers.get("authorization", "").partition("Credential=")[2]
        known = self.signers.get(credential.partition("/")[0])
        if known is None or headers.get("x-amz-security-token") != known[1]:
            self.refused.append(f"unknown access key or token: {credential[:40]!r}")
            return error("UnrecognizedClientException", "The security token included in the request is invalid.")
        problem = signature_problem("POST", f"http://{headers['host']}{path}", headers, body,
                                    access_key_id=credential.partition("/")[0], secret_key=known[0],
                                    region=self.region, service="dynamodb")
        if problem is None:
            return None
        self.refused.append(problem)
        return error("InvalidSignatureException", problem, status=400)

    @property
    def connections(self) -> int:
        return len({call.connection for call in self.calls})
