"""Where the gateway's CPU goes under a non-streamed load (c=16, or c=1), sampled with py-spy.

py-spy attaches to the running gateway process from outside (nothing in the
product changes) while the load generator drives it, and writes the collapsed
stacks (a format speedscope and flamegraph.pl read). It samples only the
thread holding the GIL (--gil), whichever it is (event loop or the threads
boto3 runs in): without it, threads blocked on a socket read or an idle pool
queue count as busy and bury the real costs. The summary ranks functions by
self and inclusive samples and splits the time by library.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .runner import SCENARIOS, Bench
from .targets import Target

_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>.*?)(:\d+)?\)$")
_STDLIB = re.compile(r"^.*/lib/python3\.\d+/")
ROOT = str(Path(__file__).resolve().parents[2]) + "/"


def _short(path: str) -> str:
    if "/site-packages/" in path:
        return path.split("/site-packages/", 1)[1]
    if path.startswith(ROOT):
        return path[len(ROOT):]
    return _STDLIB.sub("", path)
COMPONENTS = (  # first match on the frame's file wins
    ("gateway (handler/)", ("handler/",)),
    ("litellm", ("litellm/",)),
    ("HTTP client (httpx, httpcore, aiohttp)", ("httpx/", "httpcore/", "aiohttp/", "h2/", "anyio/")),
    ("boto3 / botocore / urllib3", ("botocore/", "boto3/", "urllib3/", "s3transfer/")),
    ("starlette / fastapi", ("starlette/", "fastapi/")),
    ("uvicorn / h11", ("uvicorn/", "h11/")),
    ("pydantic", ("pydantic/", "pydantic_core/")),
    ("asyncio event loop", ("asyncio/", "selectors.py")),
    ("threads (to_thread, pool)", ("threading.py", "concurrent/")),
    ("json", ("json/", "orjson")),
    ("logging", ("logging/",)),
    ("stdlib networking (socket, http.client, email)", ("socket.py", "http/client.py", "email/", "ssl.py")),
)


AREAS = (  # what a request pays for, inclusive: a sample counts for every area a frame of its stack names
    ("upstream call (httpx models, providers/http11.py)", ("post (handler/providers/anthropic_api.py)",)),
    ("ledger write (boto3, worker thread)", ("Ledger.record_batch (handler/metering/ledger.py)",)),
    ("log line and metrics (Powertools)", ("Telemetry._emit (handler/observe/telemetry.py)",)),
    ("uvicorn/h11 reading requests", ("H11Protocol.data_received (uvicorn/",)),
    ("uvicorn/h11 writing responses", ("RequestResponseCycle.send (uvicorn/",)),
    ("body: parse, bounds, schema, content checks", ("_parsed_and_bounded (handler/app.py)", "_judged (handler/app.py)")),
    ("planning and the call's body", ("Gateway._prepare (handler/pipeline/gateway.py)",)),
    ("key lookup", ("KeyStore.authenticate (handler/keys/store.py)",)),
    ("JSON response", ("JSONResponse.__init__ (starlette/responses.py)",)),
)


def frame_name(frame: str) -> str:
    """`func (package/module.py)`: no line number, so a function's lines add up, and the path
    from the package down (py-spy's --full-filenames), so the library is visible."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    return f"{match['function']} ({_short(match['path'])})"


def component(frame: str) -> str:
    for name, markers in COMPONENTS:
        if any(marker in frame for marker in markers):
            return name
    return "other"


def read_collapsed(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append(([frame_name(f) for f in stack.split(";")], int(count)))
    return stacks


_RUNNERS = ("Handle._run (asyncio/events.py)", "_WorkItem.run (concurrent/futures/thread.py)")


def activity(frames: list[str]) -> str:
    """What the event loop (or a pool thread) was running: the callback or task under its runner,
    e.g. the request's ASGI cycle, a background logging task, a to_thread call."""
    for index in range(len(frames) - 1, -1, -1):
        if frames[index] in _RUNNERS and index + 1 < len(frames):
            where = "thread" if "thread.py" in frames[index] else "loop"
            return f"[{where}] {frames[index + 1]}"
    return f"[other] {component(frames[-1])}"


def analyse(stacks: list[tuple[list[str], int]], top: int = 20) -> dict[str, Any]:
    total = sum(count for _, count in stacks)
    own, inclusive, parts, ours, runs = Counter(), Counter(), Counter(), Counter(), Counter()
    areas = Counter()
    for frames, count in stacks:
        for area, markers in AREAS:
            if any(marker in frame for frame in frames for marker in markers):
                areas[area] += count
        own[frames[-1]] += count
        parts[component(frames[-1])] += count
        runs[activity(frames)] += count
        for frame in set(frames):
            inclusive[frame] += count
            if "handler/" in frame:
                ours[frame] += count

    def share(counter: Counter, n: int) -> list[dict[str, Any]]:
        return [{"frame": frame, "samples": count, "percent": 100 * count / total}
                for frame, count in counter.most_common(n)]

    return {"samples": total, "self": share(own, top), "inclusive": share(inclusive, top),
            "handler_inclusive": share(ours, top), "components": share(parts, len(COMPONENTS) + 1),
            "activities": share(runs, top), "areas": share(areas, len(AREAS))}


def profile_gateway(bench: Bench, target: Target, *, py_spy: str, out_dir: Path, requests: int,
                    rate: int = 200, load: str = "nonstream_c16") -> dict[str, Any]:
    scenario = next(s for s in SCENARIOS if s.name == load)
    collapsed = out_dir / f"gateway-{load.replace('_', '-')}.collapsed.txt"
    log = (out_dir / "py-spy.log").open("wb")
    recorder = subprocess.Popen([py_spy, "record", "--pid", str(target.server.pid), "--rate", str(rate), "--gil",
                                 "--full-filenames", "--format", "raw", "--output", str(collapsed)], stdout=log, stderr=log)
    try:
        time.sleep(1.0)  # attached before the first measured request
        if recorder.poll() is not None:
            raise RuntimeError(f"py-spy exited with {recorder.returncode}: see {out_dir / 'py-spy.log'}")
        run = bench.measure(target, scenario, requests=requests, warmup=32)
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        recorder.wait(60)
        log.close()
    summary = analyse(read_collapsed(collapsed))
    ok = len(run.latency_ms)
    summary.update(collapsed_stacks=str(collapsed), rate_hz=rate, requests=ok, load=scenario.label, errors=run.errors,
                   throughput_rps=ok / run.wall_s if run.wall_s else None,
                   server_cpu_ms_per_request=1000 * run.cpu_s.get("server", 0) / ok if ok else None)
    return summary
