"""Child processes: start, wait until they answer, stop, and read their cost from /proc.

CPU and peak memory are read from the kernel's accounting rather than from
inside each process, so a server we do not control (LiteLLM Proxy) is measured
exactly like ours. A server's cost includes its children (a CLI that forks a
worker), so every figure covers the whole process tree.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A loopback port nobody is listening on (for servers that cannot report the one they bound)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (which may hold spaces): field 3 is index 0."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def tree(pid: int) -> list[int]:
    """The process and all its live descendants (from each process's parent pid)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    pids, queue = [], [pid]
    while queue:
        current = queue.pop()
        pids.append(current)
        queue += children.get(current, [])
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process tree so far (10 ms resolution)."""
    total = 0
    for member in tree(pid):
        fields = _stat_fields(member)
        if fields:
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) summed over the process tree, in MiB."""
    total_kb = 0
    for member in tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


def _own_group_dying_with_parent() -> None:
    """In the child before exec: its own process group (stopped as one), and SIGTERM when the
    orchestrator dies, even by SIGKILL, so no server outlives a killed benchmark."""
    os.setsid()
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


class Process:
    """One child with its output in a log file; stopped by its own pid (and its group)."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], cwd: Path, log_dir: Path,
                 pipes: bool = False) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            argv, env=env, cwd=cwd, preexec_fn=_own_group_dying_with_parent,  # noqa: PLW1509 - no threads here
            stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipes else self._log, stderr=self._log,
            text=pipes, bufsize=1 if pipes else -1,
        )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_http(self, url: str, timeout: float) -> None:
        """Poll `url` until it answers 200: the server is up and its app initialised."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer {url} within {timeout:.0f} s:\n{self.log_tail()}")

    def first_line(self, timeout: float) -> str:
        """The first line the child writes to its log (a server announcing its URL)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            if "\n" in text:
                return text.split("\n", 1)[0].strip()
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} printed nothing within {timeout:.0f} s")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.pid)

    def stop(self, timeout: float = 5.0) -> None:
        if self.alive():
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(timeout)
        self._log.close()


@contextlib.contextmanager
def fake_upstream(root: Path) -> Iterator[str]:
    """tests/support/fake_upstream.py on a free port, answering: its URL, for the micro-benchmarks
    that call a provider (the full benchmark starts its own as a `Process`, with a log)."""
    port = free_port()
    fake = subprocess.Popen([sys.executable, "-m", "tests.support.fake_upstream", "--port", str(port)], cwd=root,
                            stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/health", timeout=5).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        fake.terminate()
        fake.wait(10)
