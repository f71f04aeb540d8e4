"""Deterministic interleavings of gateway-admin commands, by KeysAdmin's checkpoints (no sleeps, no timing).

A command run through `Held` stops at one of its own checkpoints until the
test lets it go on; `at` makes a checkpoint that runs an action when another
command (a reshard) reaches a given step of a given secret.
"""

from __future__ import annotations

import threading

from handler.keys.admin import Checkpoint


class Held:
    """An admin command run in a thread and held at its checkpoint `step` until `finish()`."""

    def __init__(self, step: str) -> None:
        self.step, self.reached, self.go = step, threading.Event(), threading.Event()
        self.result, self.error = None, None

    def checkpoint(self, step: str, detail: str) -> None:
        if step == self.step and not self.reached.is_set():
            self.reached.set()
            assert self.go.wait(60), "the test never let the held command go on"

    def start(self, command, *args, **options) -> "Held":
        def run() -> None:
            try:
                self.result = command(*args, **options)
            except Exception as exc:  # handed to the test by finish()
                self.error = exc
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert self.reached.wait(60), f"the command never reached its {self.step!r} checkpoint"
        return self

    def finish(self):
        self.go.set()
        self.thread.join(60)
        if self.error is not None:
            raise self.error
        return self.result


def at(step: str, secret_id: str, action) -> Checkpoint:
    """A reshard checkpoint that runs `action` once, when the reshard reaches `step` of `secret_id`."""
    done = []

    def checkpoint(reached: str, detail: str) -> None:
        if (reached, detail) == (step, secret_id) and not done:
            done.append(True)
            action()
    return checkpoint
