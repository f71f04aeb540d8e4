"""Cold start: the handler against a bare `import litellm`, median of fresh processes.

Each sample is a new interpreter (scripts.benchmark.coldstart_probe), the two
kinds alternating so the machine's drift hits both. Import time is what a
Lambda init pays; the first request adds secret reads, litellm's first-call
setup and the ledger write. The goal the issue sets is at most 1.1x.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MODES = ("litellm", "gateway")


def _probe(mode: str, model: str, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "scripts.benchmark.coldstart_probe", mode, model],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=180, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"cold-start probe {mode} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    sample = json.loads(done.stdout.strip().splitlines()[-1])
    sample["process_s"] = time.perf_counter() - started
    return sample


def measure(samples: int, model: str, env: dict[str, str], cwd: Path, progress=print) -> dict[str, Any]:
    found: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for i in range(samples):
        for mode in (MODES if i % 2 == 0 else MODES[::-1]):
            found[mode].append(_probe(mode, model, env, cwd))
        progress(f"cold start {i + 1}/{samples}: "
                 + ", ".join(f"{m} import {found[m][-1]['import_s']:.2f} s" for m in MODES))
    result: dict[str, Any] = {"samples": samples}
    for mode, runs in found.items():
        median = {name: statistics.median(run[name] for run in runs)
                  for name in ("import_s", "first_request_s", "process_s", "peak_rss_mb")}
        median["import_and_first_request_s"] = statistics.median(
            run["import_s"] + run["first_request_s"] for run in runs)
        result[mode] = {"median": median, "all_ok": all(run["ok"] for run in runs), "runs": runs}
    mine, floor = result["gateway"]["median"], result["litellm"]["median"]
    result["ratio_import"] = mine["import_s"] / floor["import_s"]
    result["ratio_import_and_first_request"] = (mine["import_and_first_request_s"]
                                                / floor["import_and_first_request_s"])
    return result
