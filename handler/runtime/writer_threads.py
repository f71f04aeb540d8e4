"""Calls run on long-lived threads, each waited for at most a given time.

The usage write after each response must not outlast the invocation's time,
so it runs on a thread the caller can stop waiting for. Starting a thread per
write cost a few percent of a streaming request's CPU (Thread.start and its
bootstrap); these threads stay. One does every write while writes end in time;
a write that outlives its wait keeps its thread busy, and the next call then
gets another thread rather than queueing behind a hung one (as a thread per
write would have), so one late DynamoDB call never makes the next write late.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable


class _Call:
    __slots__ = ("function", "done", "result", "error", "abandoned")

    def __init__(self, function: Callable[[], Any]) -> None:
        self.function = function
        # Held until the call has run: a bare lock, which the caller's timed acquire waits on in C
        # (an Event is a Condition and a lock of Python's, and a third lock per wait).
        self.done = threading.Lock()
        self.done.acquire()
        self.result: Any = None
        self.error: BaseException | None = None
        self.abandoned = False  # its caller stopped waiting: not started if not yet started

    def run(self) -> None:
        try:
            self.result = self.function()
        except BaseException as exc:  # handed to the caller, which decides (the thread lives on)
            self.error = exc
        self.done.release()


class WriterThreads:
    """Daemon threads named `name`: as many as calls under way, started only when none is idle."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._calls: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a call that no caller has claimed yet

    def call(self, function: Callable[[], Any], timeout: float) -> tuple[bool, Any]:
        """(True, its result) when `function` returned within `timeout` seconds, else (False, None)
        (it may still run, late). What it raised is raised here."""
        job = _Call(function)
        with self._lock:
            if self._idle:
                self._idle -= 1
            else:
                threading.Thread(target=self._serve, name=self._name, daemon=True).start()
        self._calls.put(job)
        if not job.done.acquire(timeout=max(0.0, timeout)):
            job.abandoned = True
            if not job.done.acquire(blocking=False):  # it may have ended just now
                return False, None
        if job.error is not None:
            raise job.error
        return True, job.result

    def _serve(self) -> None:
        while True:
            job = self._calls.get()
            if not job.abandoned:
                job.run()
            with self._lock:
                self._idle += 1
