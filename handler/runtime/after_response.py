"""Usage writes after the response: an internal Lambda extension holds the invocation open.

Lambda ends an invocation once the runtime has posted the response *and* every
registered extension has asked for its next event. An internal extension is a
thread of the function's own process, registered through the Extensions API
during init (before the runtime's first `next`). Here it takes the ledger
entries of each invocation once the response is out and writes them before it
asks for the next event: the caller does not wait for DynamoDB, and the
environment is not frozen before the write.

The write gets the invocation's remaining time, less SPILL_RESERVE_S for the
fallback queue: when DynamoDB is not done by then, the entries go to the queue
(`GATEWAY_LEDGER_QUEUE_URL`), and the extension moves on. A write that lands
after all is harmless: a ledger write is conditioned on the record's absence,
so replaying the queued copy finds it there and counts it once.

The extension's thread makes the write itself: handing it to a writer thread
and waiting for it cost two thread wakes an invocation. A guard thread
(writer_threads.Guard), asleep meanwhile, keeps the time bound: once a write
outlives it, the guard queues the entries, ends the invocation and serves
the next ones, so a hung DynamoDB call never makes the next write late; the
thread left in that call ends when it returns.

Outside Lambda (no `AWS_LAMBDA_RUNTIME_API`, or registration refused) the
entries are written before the handler returns, with the same time bound.

In streaming mode a request can end before it reaches the app (the Lambda Web
Adapter or uvicorn refuses it: a malformed request is uvicorn's 400), and then
nothing hands over. So each forwarded request says it has begun, and the
extension waits for that at most ARRIVAL_WINDOW_S after the invocation's event:
a request that never began has no usage, and the invocation ends then instead
of 2 s before its deadline. The window bounds only the arrival (the adapter
forwards the event on loopback as it gets it), never a request under way.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..blocking_http import Connection, Pool
from ..metering.items import MAX_BATCH, LedgerEntry
from ..metering.ledger import Ledger
from ..observe.telemetry import LAMBDA_CONTEXT_HEADER  # the Lambda Web Adapter's copy of the invocation's context
from .writer_threads import Guard, WriterThreads

log = logging.getLogger(__name__)

EXTENSION_NAME = "edenai-gateway-ledger"
EXTENSIONS_API = "2020-01-01"
# Kept back from the invocation's deadline: one SQS send for the entries DynamoDB did not take in time.
SPILL_RESERVE_S = 2.0
# Kept back from the invocation's deadline for a response to end and its usage to be written
# (or queued): the gateway ends every request and stream this long before the function must stop.
LEDGER_WRITE_MARGIN_S = SPILL_RESERVE_S + 0.5
# Streaming mode: how long after an invocation's event its request may take to reach the app
# before the extension takes it as refused on the way (adapter or uvicorn) and moves on.
ARRIVAL_WINDOW_S = 5.0
# The threads the writes made before the handler returns run on (no extension), and those of
# entries the extension does not write itself: one, kept, unless a write outlives its time.
WRITERS = WriterThreads("ledger-write")


class Outbox:
    """Stands in for the group commit while a response is under way: entries wait here."""

    def __init__(self) -> None:
        self._entries: list[LedgerEntry] = []

    async def record(self, entry: LedgerEntry) -> str:
        self._entries.append(entry)
        return "deferred"

    def take(self) -> list[LedgerEntry]:
        entries, self._entries = self._entries, []
        return entries

    @property
    def backlog(self) -> int:
        return len(self._entries)

    async def close(self) -> None:
        """Shutdown (Gateway.drain): nothing to do, each invocation hands its entries over as
        its response ends, also when cut short."""


def settle(ledger: Ledger, entries: list[LedgerEntry], deadline: float, *,
           reserve: float = SPILL_RESERVE_S, clock: Callable[[], float] = time.time) -> list[str]:
    """Write entries, or queue them once `deadline - reserve` (epoch seconds) comes first.

    The DynamoDB write runs on a writer thread (WRITERS), so a slow or hanging
    call cannot take the time the queue needs."""
    outcomes: list[str] = []
    for start in range(0, len(entries), MAX_BATCH):
        batch = entries[start:start + MAX_BATCH]
        try:
            done, written = WRITERS.call(lambda b=batch: ledger.record_batch(b), deadline - reserve - clock())
        except Exception as exc:  # noqa: BLE001 - whatever the write raised, the entries are kept
            done, written = False, exc
        if done:
            outcomes += written
        else:
            failure = written or TimeoutError("the invocation's time ran out before DynamoDB answered")
            outcomes += ledger.spill_all(batch, failure)
    return outcomes


class _TakenOver(Exception):
    """The extension's thread stops: its write ran late and the guard thread serves on."""


@dataclass(frozen=True)
class Handover:
    request_id: str | None
    entries: list[LedgerEntry]


class Extension:
    """The Extensions API client: register (during init), then one `next` per invocation.

    Its calls share one kept-alive connection (the extension's thread makes them one at a
    time), in a `Pool`: a connection the API closed is replaced, and a call its close crossed
    is made once more (register and `next` are each one step of the extension's own sequence)."""

    def __init__(self, api: str, *, name: str = EXTENSION_NAME, timeout: float | None = None) -> None:
        host, _, port = api.rpartition(":")
        host, port = (host, int(port)) if host and port.isdigit() else (api, 80)
        self._prefix = f"/{EXTENSIONS_API}/extension"
        self._name = name
        self._connections = Pool(lambda: Connection.connect(host, port, timeout=timeout))
        self.id: str | None = None

    def _call(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[dict, Any]:
        answer = self._connections.exchange(method, self._prefix + path, headers, body)
        if answer.status >= 300:
            raise ExtensionsApiError(f"{method} {path}: HTTP {answer.status} {answer.body[:200]!r}")
        return answer.headers, json.loads(answer.body or b"{}")

    def register(self) -> None:
        headers, _ = self._call("POST", "/register", json.dumps({"events": ["INVOKE"]}).encode(),
                                {"Lambda-Extension-Name": self._name, "Content-Type": "application/json"})
        self.id = headers.get("lambda-extension-identifier")
        if not self.id:  # no `next` can name this extension: as good as refused
            raise ExtensionsApiError("register answered without a Lambda-Extension-Identifier")

    def next_event(self) -> dict:
        """Blocks until the next invocation; calling it says this one's work is done."""
        _, event = self._call("GET", "/event/next", b"", {"Lambda-Extension-Identifier": self.id})
        return event


class ExtensionsApiError(OSError):
    """The Extensions API refused a call: an OSError, as the failures to reach it are."""


class AfterResponse:
    """Where an invocation's ledger entries go once its response is out."""

    def __init__(self, ledger: Ledger, extension: Extension | None = None, *,
                 reserve: float = SPILL_RESERVE_S, clock: Callable[[], float] = time.time,
                 on_settled: Callable[[], None] = lambda: None, arrival_window: float | None = None) -> None:
        self._ledger = ledger
        self._extension = extension
        # Called once an invocation's entries are written or queued (the request lines
        # that waited for them are out by then: telemetry.Telemetry.flush).
        self._on_settled = on_settled
        self._reserve = reserve
        self._clock = clock
        self._handovers: queue.SimpleQueue[Handover] = queue.SimpleQueue()
        # None: every invocation hands over (the buffered handler). Otherwise (streaming mode)
        # an invocation whose request has not begun within the window has nothing to hand over.
        self._arrival_window = arrival_window
        self._arrivals = threading.Condition()
        self._begun: set[str | None] = set()
        self._settled_ahead: set[str | None] = set()  # handovers written before their invocation's turn
        # Bounds the extension's own writes (the guard thread takes over from a write that runs late).
        self._guard = Guard("ledger-guard", clock=clock)
        if extension is not None:
            threading.Thread(target=self._serve, name="ledger-extension", daemon=True).start()

    @classmethod
    def start(cls, ledger: Ledger, runtime_api: str | None, **options) -> "AfterResponse":
        """With the extension registered when the Runtime API is there (call during init only)."""
        if not runtime_api:
            return cls(ledger, **options)
        extension = Extension(runtime_api)
        try:
            extension.register()
        except OSError as exc:  # unreachable or refused: no extension, the write stays before the return
            log.error("ledger extension not registered (%s): usage is written before each response", exc)
            return cls(ledger, **options)
        return cls(ledger, extension, **options)

    @property
    def deferred(self) -> bool:
        """True when the write happens after the response (an extension holds the invocation)."""
        return self._extension is not None

    def begin(self, request_id: str | None) -> None:
        """This invocation's request has reached the app: its hand-over will come."""
        with self._arrivals:
            self._begun.add(request_id)
            self._arrivals.notify_all()

    def hand_over(self, request_id: str | None, entries: list[LedgerEntry], remaining_s: float) -> None:
        """This invocation's entries (maybe none): to the extension, or written here within remaining_s."""
        if self._extension is not None:
            self._handovers.put(Handover(request_id, entries))
        else:
            if entries:
                settle(self._ledger, entries, self._clock() + remaining_s, reserve=self._reserve, clock=self._clock)
            self._on_settled()

    def _serve(self) -> None:
        assert self._extension is not None
        while True:
            try:
                event = self._extension.next_event()
            except OSError as exc:
                log.critical("ledger extension lost the Extensions API (%s); "
                             "invocations may now end before their usage is written", exc)
                return
            if event.get("eventType") != "INVOKE":
                continue
            request_id, deadline = event.get("requestId"), event.get("deadlineMs", 0) / 1000
            try:
                if self._arrived(request_id, deadline):
                    self._settle_invocation(request_id, deadline)
            except _TakenOver:  # the guard ends this invocation, and serves the next ones
                return
            self._end_invocation(request_id)

    def _end_invocation(self, request_id: str | None) -> None:
        with self._arrivals:
            # This invocation's mark only: where invocations overlap (a stand-in runtime, or a
            # request forwarded before this `next`), the next one's may already be here.
            self._begun.discard(request_id)
        self._on_settled()

    def _arrived(self, request_id: str | None, deadline: float) -> bool:
        """Whether the invocation's request reached the app (always, without an arrival window)."""
        if self._arrival_window is None:
            return True
        wait = min(self._arrival_window, max(0.0, deadline - self._reserve - self._clock()))
        with self._arrivals:
            if self._arrivals.wait_for(lambda: request_id in self._begun, timeout=wait):
                return True
        log.warning("invocation %s never reached the app (the adapter or uvicorn refused its request): "
                    "nothing to write", request_id)
        return False

    def _settle_invocation(self, request_id: str | None, deadline: float) -> None:
        """Wait for the invocation's handover (entries handed over late by an earlier one are
        written on the way), write it, and return: the caller then asks for the next event.

        Where invocations overlap (the benchmark's stand-in runtime), a later invocation's
        handover can come before an earlier one's (the earlier response's stream still drains)
        and be written while waiting for the earlier: its own turn then has nothing to wait for."""
        if request_id in self._settled_ahead:
            self._settled_ahead.discard(request_id)
            return
        while True:
            try:
                handover = self._handovers.get(timeout=max(0.0, deadline - self._reserve - self._clock()))
            except queue.Empty:
                log.error("invocation %s handed no usage over before its deadline", request_id)
                return
            own = handover.request_id in (request_id, None)
            if own and 0 < len(handover.entries) <= MAX_BATCH:
                self._write_here(handover.entries, deadline - self._reserve, request_id)
            elif handover.entries:
                settle(self._ledger, handover.entries, deadline, reserve=self._reserve, clock=self._clock)
            if own:
                return
            self._settled_ahead.add(handover.request_id)

    def _write_here(self, batch: list[LedgerEntry], bound: float, request_id: str | None) -> None:
        """One batch written on this thread (no writer thread to wake and wait for), bounded by
        the guard: a write still under way at `bound` leaves the entries to the guard, which
        queues them, ends the invocation and serves the next ones; this thread then stops."""
        if bound <= self._clock():  # no time left for DynamoDB
            self._ledger.spill_all(batch, TimeoutError("the invocation's time ran out before the write"))
            return

        def take_over() -> None:
            self._ledger.spill_all(batch, TimeoutError("the invocation's time ran out before DynamoDB answered"))
            self._end_invocation(request_id)
            self._serve()

        try:
            done, _ = self._guard.call(lambda: self._ledger.record_batch(batch), bound, take_over)
        except Exception as exc:  # noqa: BLE001 - whatever the write raised, the entries are kept
            self._ledger.spill_all(batch, exc)
            return
        if not done:
            raise _TakenOver


def _lambda_context(scope) -> dict | None:
    for name, value in scope.get("headers") or ():
        if name == LAMBDA_CONTEXT_HEADER:
            try:
                context = json.loads(value)
            except ValueError:
                return None
            return context if isinstance(context, dict) else None
    return None


def streaming(inner, gateway, ledger: Ledger, runtime_api: str | None, **options):
    """Streaming mode (uvicorn behind the Lambda Web Adapter): the same, per forwarded invocation.

    The adapter calls the Runtime API itself and forwards each invocation as
    one HTTP request carrying `x-amzn-lambda-context`; it checks readiness
    before its first `next`, so registering here, while uvicorn loads the app,
    is still init. Without the extension the app is returned as it is, and
    GATEWAY_METER_BEFORE_RESPONSE_END keeps the write inside the response."""
    after = AfterResponse.start(ledger, runtime_api, arrival_window=ARRIVAL_WINDOW_S, **options)
    if not after.deferred:
        return inner
    outbox = Outbox()
    gateway.write_ledger_with(outbox)

    async def app(scope, receive, send):
        context = _lambda_context(scope) if scope["type"] == "http" else None
        if context is None:  # the adapter's readiness checks and hooks: not invocations
            await inner(scope, receive, send)
            return
        after.begin(context.get("request_id"))
        try:
            await inner(scope, receive, send)
        finally:
            await gateway.drain()  # a stream's reader outlives a client that left
            deadline_ms = context.get("deadline") or 0
            after.hand_over(context.get("request_id"), outbox.take(), max(0.0, deadline_ms / 1000 - time.time()))

    return app
