"""A local stand-in for Lambda's Runtime API and Extensions API (the part of the
runtime interface emulator that decides when an invocation is over).

    GET  /2018-06-01/runtime/invocation/next            the runtime waits for an event
    GET  /2018-06-01/runtime/restore/next               SnapStart's init is over (the snapshot); answered as restored
    POST /2018-06-01/runtime/invocation/{id}/response   its answer
    POST /2018-06-01/runtime/invocation/{id}/error      its failure
    POST /2018-06-01/runtime/init/error                 a failed init
    POST /2020-01-01/extension/register                 during init only (before the runtime's first next)
    GET  /2020-01-01/extension/event/next               an extension waits for an event

As Lambda does: an invocation goes out (to the runtime and, as INVOKE, to every
registered extension) only once the runtime and every extension are waiting
for it, and it is over once the runtime has answered *and* every extension has
asked for its next event. Each call is time-stamped (time.monotonic, this
process), so a test can order the response, the extension's next call and
whatever else it watches.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

HANDLER = "handler.lambda_function.lambda_handler"
RUNTIME_CLIENT_PACKAGES = ("awslambdaric", "runtime_client", "simplejson", "snapshot_restore_py")
RUNTIME = "/2018-06-01/runtime"
EXTENSION = "/2020-01-01/extension"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:edenai-gateway"


@dataclass
class Invocation:
    request_id: str
    event: Any
    deadline_ms: int
    response: Any = None
    error: Any = None
    answered_at: float | None = None  # the runtime posted /response or /error
    extension_next_at: dict[str, float] = field(default_factory=dict)  # an extension asked for the next event
    completed_at: float | None = None
    _to_runtime: bool = False
    _to_extensions: set[str] = field(default_factory=set)


class LambdaRuntimeApi:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.extensions: dict[str, str] = {}  # identifier -> name
        self.init_errors: list[Any] = []
        self.refused_registrations: list[str] = []
        self._init_over = False
        self._runtime_waiting = False
        self._extensions_waiting: set[str] = set()
        self.current: Invocation | None = None
        self.invocations: list[Invocation] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.api = self  # type: ignore[attr-defined]
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "LambdaRuntimeApi":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------ the test's side

    def invoke(self, event: Any, *, timeout_s: float = 30.0, wait: float = 60.0) -> Invocation:
        """Start an invocation once the runtime and every extension wait for it; return it once
        the runtime has answered (it may not be over yet: see `completed`)."""
        invocation = self.begin(event, timeout_s=timeout_s, wait=wait)
        with self._cond:
            answered = self._cond.wait_for(lambda: invocation.answered_at is not None, timeout=wait)
        assert answered, "the runtime never answered the invocation"
        return invocation

    def begin(self, event: Any, *, timeout_s: float = 30.0, wait: float = 60.0,
              runtime_in_process: bool = False) -> Invocation:
        """Start an invocation as soon as Lambda would. With `runtime_in_process` the caller plays
        the runtime itself (no /next: it holds the event and answers with `answer`), as the
        benchmark does to time the handler without the runtime client's HTTP round trips."""
        with self._cond:
            ready = self._cond.wait_for(lambda: (runtime_in_process or self._runtime_waiting) and (
                set(self.extensions) <= self._extensions_waiting), timeout=wait)
            assert ready, "the runtime or an extension never asked for the next event"
            invocation = Invocation(str(uuid.uuid4()), event, int((time.time() + timeout_s) * 1000),
                                    _to_runtime=runtime_in_process)
            self.current = invocation
            if not runtime_in_process:  # the benchmark's thousands are not kept
                self.invocations.append(invocation)
            self._runtime_waiting = False
            self._extensions_waiting.clear()
            self._cond.notify_all()
            return invocation

    def completed(self, invocation: Invocation, wait: float = 60.0) -> Invocation:
        with self._cond:
            assert self._cond.wait_for(lambda: invocation.completed_at is not None, timeout=wait), \
                "the invocation never ended: an extension did not ask for its next event"
        return invocation

    # ------------------------------------------------------------------ the API's side

    def _complete_if_over(self, invocation: Invocation) -> None:
        if invocation.completed_at is None and invocation.answered_at is not None \
                and set(self.extensions) <= set(invocation.extension_next_at):
            invocation.completed_at = max([invocation.answered_at, *invocation.extension_next_at.values()])

    def runtime_next(self) -> Invocation:
        with self._cond:
            self._init_over = True  # no registration after the runtime's first next
            self._runtime_waiting = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: self.current is not None and not self.current._to_runtime)
            self.current._to_runtime = True
            return self.current

    def answer(self, request_id: str, *, response: Any = None, error: Any = None) -> bool:
        with self._cond:
            invocation = self.current
            if invocation is None or invocation.request_id != request_id or invocation.answered_at is not None:
                return False
            invocation.response, invocation.error = response, error
            invocation.answered_at = time.monotonic()
            self._complete_if_over(invocation)
            self._cond.notify_all()
            return True

    def restore_next(self) -> None:
        """A snap-start init is over: Lambda snapshots here, and answers once a restore resumes it."""
        with self._cond:
            self._init_over = True
            self._cond.notify_all()

    def register(self, name: str) -> str | None:
        with self._cond:
            if self._init_over:
                self.refused_registrations.append(name)
                return None
            identifier = str(uuid.uuid4())
            self.extensions[identifier] = name
            return identifier

    def extension_next(self, identifier: str) -> Invocation:
        with self._cond:
            finished = self.current
            if finished is not None and identifier in finished._to_extensions:
                finished.extension_next_at.setdefault(identifier, time.monotonic())
                self._complete_if_over(finished)
            self._extensions_waiting.add(identifier)
            self._cond.notify_all()
            self._cond.wait_for(lambda: self.current is not None and identifier not in self.current._to_extensions)
            self.current._to_extensions.add(identifier)
            return self.current


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm the body waits for the client's
    # delayed ACK of the headers (40 ms on Linux), a wait Lambda's Runtime API does not make.
    disable_nagle_algorithm = True

    def log_message(self, *args) -> None:
        pass

    @property
    def api(self) -> LambdaRuntimeApi:
        return self.server.api  # type: ignore[attr-defined]

    def _body(self) -> Any:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw.decode(errors="replace")

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        if self.path == f"{RUNTIME}/invocation/next":
            invocation = self.api.runtime_next()
            self._send(200, invocation.event, {
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
            })
        elif self.path == f"{RUNTIME}/restore/next":
            self.api.restore_next()
            self._send(200, {})
        elif self.path == f"{EXTENSION}/event/next":
            identifier = self.headers.get("Lambda-Extension-Identifier", "")
            if identifier not in self.api.extensions:
                self._send(403, {"errorMessage": "unknown extension", "errorType": "Extension.UnknownExtension"})
                return
            invocation = self.api.extension_next(identifier)
            self._send(200, {"eventType": "INVOKE", "deadlineMs": invocation.deadline_ms,
                             "requestId": invocation.request_id, "invokedFunctionArn": FUNCTION_ARN,
                             "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-0-0;Sampled=0"}})
        else:
            self._send(404, {"errorMessage": f"no route GET {self.path}"})

    def do_POST(self) -> None:
        body = self._body()
        parts = self.path.split("/")
        if self.path == f"{EXTENSION}/register":
            name = self.headers.get("Lambda-Extension-Name", "")
            identifier = self.api.register(name) if name else None
            if identifier is None:
                self._send(403, {"errorMessage": "registration is only possible during init",
                                 "errorType": "Extension.InvalidRegistration"})
                return
            self._send(200, {"functionName": "edenai-gateway", "functionVersion": "$LATEST",
                             "handler": "handler.lambda_function.lambda_handler"},
                       {"Lambda-Extension-Identifier": identifier})
        elif self.path == f"{RUNTIME}/init/error":
            self.api.init_errors.append(body)
            self._send(202, {"status": "OK"})
        elif self.path.startswith(f"{RUNTIME}/invocation/") and parts[-1] in ("response", "error"):
            request_id = parts[-2]
            kind = {"response": "response", "error": "error"}[parts[-1]]
            if not self.api.answer(request_id, **{kind: body}):
                self._send(400, {"errorMessage": "no such invocation, or already answered"})
                return
            self._send(202, {"status": "OK"})
        else:
            self._send(404, {"errorMessage": f"no route POST {self.path}"})


@contextmanager
def function_process(argv: list[str], env: dict[str, str], cwd: Path) -> Iterator[list[str]]:
    """The runtime client in its own process, as Lambda starts it; its output lines, for failures."""
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
    reader.start()
    try:
        yield output
    finally:
        process.kill()
        process.wait(10)
        reader.join(5)


def runtime_client_argv(python: str, *flags: str, handler: str = HANDLER) -> list[str]:
    """How Lambda's Python runtime starts a function: the runtime interface client with the handler."""
    return [python, *flags, "-m", "awslambdaric", handler]
