"""The extension writes each invocation's usage on its own thread, bounded by a guard thread.

Each hop between threads is a wake and a hand-over of the GIL, which cost most
after an idle (README.md, "CPU per request"): the extension no longer
hands each write to a writer thread and waits for it. The invocation's time
bound is kept all the same: a write still under way at its bound (the
deadline less SPILL_RESERVE_S) leaves its entries to the guard, which queues
them, ends the invocation, and serves the next ones; the next write is on
time. The Extensions API here is the test's: a list of INVOKE events, each
`next` time-stamped (the moment the invocation before it ends).
"""

from __future__ import annotations

import threading
import time

from handler.runtime.after_response import AfterResponse
from handler.runtime.writer_threads import Guard


class Invocations:
    """The Extensions API's side: these INVOKE events in turn, then gone."""

    def __init__(self, *deadlines_s: tuple[str, float]) -> None:
        self._events = [{"eventType": "INVOKE", "requestId": rid, "deadlineMs": (time.time() + s) * 1000}
                        for rid, s in deadlines_s]
        self.asked: list[float] = []  # when the extension asked for each next event
        self.gone = threading.Event()

    def next_event(self) -> dict:
        self.asked.append(time.monotonic())
        if self._events:
            return self._events.pop(0)
        self.gone.set()
        raise OSError("no more invocations in this test")


class Ledger:
    """Writes kept with the thread that made them; the first write hangs while `hang` is unset."""

    def __init__(self, *, first_hangs: bool = False) -> None:
        self.hang = threading.Event()
        self._first_hangs = first_hangs
        self.written: list[tuple[str, str, float]] = []  # (entry, thread, when)
        self.queued: list[tuple[str, float]] = []
        self.late_done = threading.Event()

    def record_batch(self, batch: list) -> list[str]:
        if self._first_hangs:
            self._first_hangs = False
            self.hang.wait(30)  # DynamoDB hangs
            self.late_done.set()
            return ["written"] * len(batch)
        self.written += [(entry, threading.current_thread().name, time.monotonic()) for entry in batch]
        return ["written"] * len(batch)

    def spill_all(self, batch: list, failure: BaseException) -> list[str]:
        self.queued += [(entry, time.monotonic()) for entry in batch]
        return ["queued"] * len(batch)


def test_the_extension_writes_each_invocations_usage_on_its_own_thread():
    invocations = Invocations(("r1", 60), ("r2", 60), ("r3", 60))
    ledger = Ledger()
    after = AfterResponse(ledger, invocations)
    for rid in ("r1", "r2", "r3"):
        after.hand_over(rid, [f"{rid}-entry"], remaining_s=60)
    assert invocations.gone.wait(10), "the extension never asked past the three invocations"
    assert [(entry, thread) for entry, thread, _ in ledger.written] == [
        ("r1-entry", "ledger-extension"), ("r2-entry", "ledger-extension"), ("r3-entry", "ledger-extension")], \
        "each write woke another thread and waited for it"
    assert ledger.queued == []
    assert all(when <= asked for (_, _, when), asked in zip(ledger.written, invocations.asked[1:])), \
        "an invocation ended before its usage was written"


def test_a_write_hung_past_its_bound_is_queued_and_the_next_invocations_write_is_on_time():
    # r1 leaves its write 0.5 s (the deadline less the 2 s reserve); DynamoDB hangs on it for longer.
    invocations = Invocations(("r1", 2.5), ("r2", 60), ("r3", 60))
    ledger = Ledger(first_hangs=True)
    after = AfterResponse(ledger, invocations)
    started = time.monotonic()
    for rid in ("r1", "r2", "r3"):
        after.hand_over(rid, [f"{rid}-entry"], remaining_s=60)
    try:
        assert invocations.gone.wait(10), "the invocations never ended: the hung write held the extension"
        ended = time.monotonic() - started
        assert not ledger.late_done.is_set(), "the hung write was not under way any more: nothing tested"
    finally:
        ledger.hang.set()
    assert ended < 5, f"the invocations ended {ended:.1f} s after the first, past the hung write's bound"
    assert [entry for entry, _ in ledger.queued] == ["r1-entry"], "the hung write's entries were not queued"
    queued_at = ledger.queued[0][1]
    assert queued_at - started >= 0.4, "the write was given up before its bound"
    assert queued_at <= invocations.asked[1], "r1 ended before its entries were queued"
    assert [entry for entry, _, _ in ledger.written] == ["r2-entry", "r3-entry"], \
        "the next invocations' usage was not written in their own time"
    assert ledger.late_done.wait(5)
    time.sleep(0.1)
    assert len(invocations.asked) == 4, "the late write's thread asked for an event the guard had asked for"


def test_a_guarded_call_in_time_returns_what_it_returned_or_raises_what_it_raised():
    guard = Guard("test-guard")
    late: list[bool] = []
    assert guard.call(lambda: 42, time.time() + 30, lambda: late.append(True)) == (True, 42)

    def fails():
        raise ValueError("refused")

    try:
        guard.call(fails, time.time() + 30, lambda: late.append(True))
    except ValueError as exc:
        assert str(exc) == "refused"
    else:
        raise AssertionError("what the call raised in time was not raised")
    time.sleep(0.1)
    assert late == [], "a call that ended in time was taken over"


def test_a_bound_sooner_than_the_guards_idle_wake_is_kept():
    """The guard sleeps up to its idle wake between calls; a call whose bound is sooner wakes it."""
    guard = Guard("test-guard", idle_wake_s=30)
    assert guard.call(lambda: None, time.time() + 30, lambda: None) == (True, None)  # the guard asleep now
    release, taken_over = threading.Event(), threading.Event()
    outcome: list = []
    caller = threading.Thread(target=lambda: outcome.append(
        guard.call(lambda: release.wait(30), time.time() + 0.2, taken_over.set)))
    started = time.monotonic()
    caller.start()
    try:
        assert taken_over.wait(5), "the late call was not taken over by its bound"
        assert time.monotonic() - started < 5
        assert outcome == [], "the caller went on before its call ended"
    finally:
        release.set()
        caller.join(5)
    assert outcome == [(False, None)], "the caller of a call taken over was given its result"
