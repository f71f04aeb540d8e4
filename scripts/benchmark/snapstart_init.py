"""Init of the packaged artifact under Lambda's runtime interface client: on demand against SnapStart's.

`python -m scripts.benchmark.snapstart_init ARTIFACT_DIR [--samples N]` starts the
artifact built for this machine (`scripts/package --arch host --out ARTIFACT_DIR
--no-zip`, as tests/test_package.py's `host_artifact`)
the way Lambda's Python runtime does, `python -m awslambdaric
handler.lambda_function.lambda_handler`, against the stand-in Runtime API
(tests/support/lambda_runtime_api.py), and times each init: from the process's
start to the runtime's first `next`, or its `restore/next` under SnapStart (what
Lambda reports as Init Duration), with the CPU it used (what scales with Lambda's
CPU share; the wall time is the shared machine's) and its RSS then. Two init
types, alternating so the machine's drift hits both:

- on-demand (SnapStart off): what every cold start pays, at the function's CPU share;
- snap-start: the init Lambda runs once per published version to take the
  snapshot (litellm and the first call's modules imported); cold starts then pay
  a restore instead, which only AWS can measure.

Nothing here calls AWS: the secrets are read on the first request, not at init.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.lambda_runtime_api import RUNTIME_CLIENT_PACKAGES, LambdaRuntimeApi, runtime_client_argv

MODES = ("on-demand", "snap-start")


class _InitTimed(LambdaRuntimeApi):
    """The stand-in, noting when the runtime first asks for an event, or for its restore: its init is over."""

    init_done_at: float | None = None

    def _init_done(self) -> None:
        if self.init_done_at is None:
            self.init_done_at = time.monotonic()

    def runtime_next(self):
        self._init_done()
        return super().runtime_next()

    def restore_next(self) -> None:
        self._init_done()
        super().restore_next()


def _runtime_dir(base: Path) -> Path:
    """The runtime interface client beside the artifact, as Lambda ships it outside /var/task."""
    runtime = base / "runtime"
    runtime.mkdir()
    site = Path(importlib.util.find_spec("awslambdaric").origin).parents[1]
    for name in RUNTIME_CLIENT_PACKAGES:
        for path in site.glob(f"{name}*"):
            if not path.name.endswith(".dist-info"):
                (runtime / path.name).symlink_to(path)
    return runtime


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_s(pid: int) -> float:
    """User and system CPU the process has used (/proc/PID/stat's utime and stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def init_once(artifact: Path, runtime: Path, mode: str, timeout: float = 120.0) -> dict:
    with _InitTimed() as api, tempfile.TemporaryFile() as errors:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AWS_LAMBDA_RUNTIME_API": api.address,
               "AWS_LAMBDA_INITIALIZATION_TYPE": mode, "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "GATEWAY_KEYS_SECRET_ID": "gateway/keys", "GATEWAY_PROVIDERS_SECRET_ID": "gateway/providers",
               "GATEWAY_USAGE_TABLE": "gateway-usage", "PYTHONPATH": f"{artifact}{os.pathsep}{runtime}"}
        started = time.monotonic()
        # -S -B -P and the artifact's parent as cwd: nothing from this repository or its venv shadows it.
        process = subprocess.Popen(runtime_client_argv(sys.executable, "-S", "-B", "-P"), env=env,
                                   cwd=artifact.parent, stdout=subprocess.DEVNULL, stderr=errors)
        try:
            while api.init_done_at is None:
                if process.poll() is not None or time.monotonic() - started > timeout:
                    errors.seek(0)
                    raise RuntimeError(f"{mode} init did not finish: {errors.read()[-2000:]!r}")
                time.sleep(0.002)
            return {"init_s": api.init_done_at - started, "cpu_s": _cpu_s(process.pid), "rss_mb": _rss_mb(process.pid)}
        finally:
            process.kill()
            process.wait(10)


def measure(artifact: Path, samples: int, progress=print) -> dict:
    found: dict[str, list[dict]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as base:
        runtime = _runtime_dir(Path(base))
        for i in range(samples):
            for mode in (MODES if i % 2 == 0 else MODES[::-1]):
                found[mode].append(init_once(artifact, runtime, mode))
            progress(f"init {i + 1}/{samples}: " + ", ".join(
                f"{mode} {found[mode][-1]['init_s']:.2f} s ({found[mode][-1]['cpu_s']:.2f} s CPU) "
                f"{found[mode][-1]['rss_mb']:.0f} MB" for mode in MODES))
    return {mode: {"init_s_median": statistics.median(r["init_s"] for r in runs),
                   "cpu_s_median": statistics.median(r["cpu_s"] for r in runs),
                   "rss_mb_median": statistics.median(r["rss_mb"] for r in runs), "samples": len(runs)}
            for mode, runs in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact", type=Path, help="scripts/package's output directory for this machine")
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(measure(args.artifact.resolve(), args.samples, progress=lambda m: print(m, file=sys.stderr))))


if __name__ == "__main__":
    main()
