"""The orchestrator's end of scripts.benchmark.protocol: a worker process and its pipes.

Reads are bounded by a timeout, so a worker that hangs or dies ends the
benchmark with its log instead of hanging it.
"""

from __future__ import annotations

import json
import os
import select
import time
from pathlib import Path
from typing import Any

from .procs import Process


class WorkerError(RuntimeError):
    pass


class Worker:
    def __init__(self, process: Process) -> None:
        self.process = process
        self._buffer = b""

    @classmethod
    def start(cls, name: str, argv: list[str], *, env: dict[str, str], cwd: Path, log_dir: Path,
              timeout: float) -> Worker:
        worker = cls(Process(name, argv, env=env, cwd=cwd, log_dir=log_dir, pipes=True))
        worker.expect("ready", timeout)
        return worker

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.process.popen.stdin.write(json.dumps(message) + "\n")
            self.process.popen.stdin.flush()
        except BrokenPipeError:
            raise WorkerError(f"{self.process.name} is gone:\n{self.process.log_tail()}") from None

    def receive(self, timeout: float) -> dict[str, Any]:
        """The next line, read from the raw pipe (a buffered reader would hide lines from select)."""
        fd = self.process.popen.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(fd, 65536) if ready else b""
            if not chunk:
                state = "exited" if ready or not self.process.alive() else f"said nothing for {timeout:.0f} s"
                raise WorkerError(f"{self.process.name} {state}:\n{self.process.log_tail()}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        message = self.receive(timeout)
        if message.get("event") != event:
            raise WorkerError(f"{self.process.name}: expected {event!r}, got {message}")
        return message

    def stop(self) -> None:
        if self.process.alive():
            try:
                self.process.popen.stdin.close()
            except OSError:
                pass
        self.process.stop()
