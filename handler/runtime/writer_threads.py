"""Calls run on long-lived threads, each waited for at most a given time.

The usage write after each response must not outlast the invocation's time,
so it runs on a thread the caller can stop waiting for. Starting a thread per
write cost a few percent of a streaming request's CPU (Thread.start and its
bootstrap); these threads stay. One does every write while writes end in time;
a write that outlives its wait keeps its thread busy, and the next call then
gets another thread rather than queueing behind a hung one (as a thread per
write would have), so one late DynamoDB call never makes the next write late.

`Guard` bounds a call without that hop: the call runs on its caller's thread
(the extension's, which then has no writer thread to wake and wait for), and
a guard thread, asleep meanwhile, takes the caller's duties over once the call
outlives its bound. The caller's thread then ends when its call does.
"""

from __future__ import annotations

import queue
import threading
import time
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


class _Watched:
    __slots__ = ("bound", "on_late", "taken")

    def __init__(self, bound: float, on_late: Callable[[], None]) -> None:
        self.bound = bound
        self.on_late = on_late
        self.taken = False  # the guard gave the caller's duties to on_late: the caller's result is moot


class Guard:
    """Calls on the caller's thread, each bounded by one kept guard thread named `name`; one
    call at a time (the extension's thread makes them in turn).

    The guard sleeps until the bound of the call under way, or, with none, about as long as
    the last call had (at least `idle_wake_s`): a later call's bound is then seldom sooner, and
    only a sooner one wakes it. So while calls end in time it hardly wakes, also in a Lambda
    environment frozen between invocations (a timer that expired while frozen fires at the
    thaw). A call still running at its bound is the caller's no more: the guard runs its
    `on_late` (which takes the caller's duties on; a new guard is started first), and the
    caller learns, once its call ends, that its result is not wanted."""

    def __init__(self, name: str, *, clock: Callable[[], float] = time.time, idle_wake_s: float = 1.0) -> None:
        self._name = name
        self._clock = clock
        self._idle_wake_s = idle_wake_s
        self._span = idle_wake_s  # the last call's time from its start to its bound
        self._cond = threading.Condition(threading.Lock())
        self._watched: _Watched | None = None
        self._wakes_at = 0.0  # the guard's next wake (clock's seconds); 0 before it first sleeps
        self._started = False

    def call(self, function: Callable[[], Any], bound: float, on_late: Callable[[], None]) -> tuple[bool, Any]:
        """(True, what `function` returned) when it returned before `bound` (clock's seconds), else
        (False, None): the guard has run, or runs, `on_late` on its thread. What it raised in time
        is raised here."""
        watched = _Watched(bound, on_late)
        with self._cond:
            if not self._started:
                self._start()
            self._watched = watched
            self._span = bound - self._clock()
            if bound < self._wakes_at:
                self._cond.notify()
        try:
            result = function()
        except BaseException:
            with self._cond:
                if watched.taken:
                    return False, None
                self._watched = None
            raise
        with self._cond:
            if watched.taken:
                return False, None
            self._watched = None
        return True, result

    def _start(self) -> None:
        self._started, self._wakes_at = True, 0.0
        threading.Thread(target=self._watch, name=self._name, daemon=True).start()

    def _watch(self) -> None:
        with self._cond:
            while True:
                now, watched = self._clock(), self._watched
                if watched is not None and now >= watched.bound:
                    break
                self._wakes_at = watched.bound if watched is not None \
                    else now + max(self._span, self._idle_wake_s)
                self._cond.wait(self._wakes_at - now)
            watched.taken = True
            self._watched = None
            self._start()  # the next calls' guard: this thread now does the late call's caller's duties
        watched.on_late()
