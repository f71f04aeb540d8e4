"""scripts/bench: the gateway side by side with LiteLLM Proxy, the bare-litellm floor and direct calls.

Starts every target in its own process on loopback against one fake upstream
(its own process too), runs the loads in interleaved rounds, checks the AWS
calls per request and the cold start, and prints markdown (stdout) and JSON
(--json). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import aws_stack, coldstart, idle_tax
from .compare import comparisons
from .procs import Process
from .report import markdown
from .runner import SCENARIOS, Bench, check_aws_calls, run_rounds
from .stats import summarize
from .targets import ALL, DEPLOYED, LABELS, STARTERS, Context, Target, package_version
from .worker import Worker

ROOT = Path(__file__).resolve().parents[2]
OFFLINE_LITELLM = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
                   "LITELLM_OFFLINE_MODE": "true"}
MODELS = ("anthropic/claude-sonnet-4-5", "openai/gpt-4o-mini", aws_stack.BEDROCK_CLAUDE, aws_stack.BEDROCK_NOVA)
NOT_ON_BEDROCK = ("floor",)  # the floor calls litellm with an api_key and an api_base only
PACKAGES = ("litellm", "fastapi", "starlette", "uvicorn", "mangum", "boto3", "moto", "pydantic")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="rounds over every target and load (default 5; quick 1)")
    parser.add_argument("--requests", type=int,
                        help="measured requests per target, load and round (default 200; quick 8)")
    parser.add_argument("--warmup", type=int,
                        help="unmeasured requests before each run (default requests/10, at least 5)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: a few requests per load, one cold start, no LiteLLM Proxy unless named")
    parser.add_argument("--targets", help=f"comma list of {','.join(ALL)} (direct is always measured)")
    parser.add_argument("--model", choices=MODELS, default=MODELS[0])
    parser.add_argument("--json", type=Path, help="write the results document here")
    parser.add_argument("--cold-starts", type=int, help="fresh processes per kind (default 5; quick 1; 0 skips)")
    parser.add_argument("--aws-requests", type=int, help="requests per AWS-calls check (default 20; quick 5)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="also sample the gateway with py-spy under the c=16 load; output in DIR")
    parser.add_argument("--py-spy", default=shutil.which("py-spy"), help="py-spy executable (default: on PATH)")
    parser.add_argument("--profile-requests", type=int, default=3000)
    parser.add_argument("--profile-load", choices=("nonstream_c16", "nonstream_c1"), default="nonstream_c16",
                        help="the load sampled by --profile (default nonstream_c16)")
    parser.add_argument("--profile-target", choices=("gateway", "streaming", "lambda"), default="gateway",
                        help="the target sampled by --profile: uvicorn with the deferred write, or the deployed "
                             "streaming or buffered mode's function process (default gateway)")
    parser.add_argument("--log-dir", type=Path, help="keep every process's log here (default: a temp dir)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.rounds = args.rounds or (1 if quick else 5)
    args.requests = args.requests or (8 if quick else 200)
    args.warmup = args.warmup if args.warmup is not None else max(5, args.requests // 10)
    args.cold_starts = args.cold_starts if args.cold_starts is not None else (1 if quick else 5)
    args.aws_requests = args.aws_requests or (5 if quick else 20)
    bedrock = args.model.startswith("bedrock/")
    default = [t for t in ALL if t != "proxy"] if quick else list(ALL)
    default = [t for t in default if not (bedrock and t in NOT_ON_BEDROCK)]
    names = [t.strip() for t in args.targets.split(",") if t.strip()] if args.targets else default
    unknown = set(names) - set(ALL)
    if unknown:
        parser.error(f"unknown target(s) {', '.join(sorted(unknown))}; choose from {', '.join(ALL)}")
    if bedrock and set(names) & set(NOT_ON_BEDROCK):
        parser.error(f"{', '.join(NOT_ON_BEDROCK)} cannot call Bedrock; leave it out of --targets")
    if bedrock:
        args.cold_starts = 0  # the probe's bare litellm is set up for an api_key and an api_base only
    args.target_names = ["direct", *(t for t in ALL if t in names and t != "direct")]
    if args.profile and args.profile_target not in args.target_names:
        parser.error(f"--profile samples {args.profile_target}: include it in --targets")
    if args.profile and not args.py_spy:
        parser.error("--profile needs py-spy (pip install py-spy in a tool venv, then --py-spy PATH)")
    return args


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _git() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=False).stdout.strip()
        return head + (" (uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def meta(args: argparse.Namespace, targets: list[Target]) -> dict[str, Any]:
    proxy = next((t for t in targets if t.name == "proxy"), None)
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": os.environ.get("BENCH_COMMAND") or "python -m scripts.benchmark " + shlex.join(sys.argv[1:]),
        "machine": {"nproc": os.cpu_count(), "cpu": _cpu_model(), "kernel": platform.release()},
        "python": platform.python_version(),
        "versions": {name: package_version(name) for name in PACKAGES},
        "proxy_litellm": proxy.extra["litellm"] if proxy else None,
        "git": _git(),
        "rounds": args.rounds, "requests": args.requests, "warmup": args.warmup, "model": args.model,
    }


def start_upstream(stack: ExitStack, log_dir: Path, env: dict[str, str], model: str) -> tuple[Process, str]:
    """The fake provider in its own process (TCP_NODELAY, big backlog), so its CPU is its own:
    Anthropic's and OpenAI's, or Bedrock's (checking SigV4 against the benchmark's credentials)."""
    module = ("scripts.benchmark.fake_bedrock_server" if model.startswith("bedrock/")
              else "tests.support.fake_upstream")
    fake = Process("fake-upstream", [sys.executable, "-m", module, "--port", "0"],
                   env=env, cwd=ROOT, log_dir=log_dir)
    stack.callback(fake.stop)
    url = fake.first_line(timeout=30)
    fake.wait_http(url + "/health", timeout=30)
    return fake, url


def run(args: argparse.Namespace, stack: ExitStack, log_dir: Path) -> dict[str, Any]:
    env = {**os.environ, **OFFLINE_LITELLM, "PYTHONUNBUFFERED": "1"}
    bedrock = args.model.startswith("bedrock/")
    if bedrock:
        env.update(aws_stack.CREDENTIALS, AWS_DEFAULT_REGION=aws_stack.REGION)
    fake, upstream_url = start_upstream(stack, log_dir, env, args.model)
    progress(f"fake {'Bedrock' if bedrock else 'upstream'} at {upstream_url}")
    aws = None
    if {"gateway", "lambda", "streaming"} & set(args.target_names):
        aws = aws_stack.start(ROOT, log_dir, upstream_url, bedrock_url=upstream_url if bedrock else None)
        stack.callback(aws.moto.stop)
        env.update(aws.env)
        progress(f"moto at {aws.env['AWS_ENDPOINT_URL']}, secrets, table and keys created")
    ctx = Context(ROOT, log_dir, env, upstream_url, args.model, aws)
    targets: list[Target] = []
    for name in args.target_names:
        progress(f"starting {LABELS[name]}")
        target = STARTERS[name](ctx)
        stack.callback(target.stop)
        targets.append(target)
        progress(f"{name} ready ({target.software})")
    loadgen = Worker.start("loadgen", [sys.executable, "-m", "scripts.benchmark.loadgen"], env=env, cwd=ROOT,
                           log_dir=log_dir, timeout=30)
    stack.callback(loadgen.stop)
    bench = Bench(loadgen, fake, aws.moto if aws else None, upstream_url)

    runs = run_rounds(bench, targets, rounds=args.rounds, requests=args.requests, warmup=args.warmup,
                      progress=progress)
    doc: dict[str, Any] = {"meta": meta(args, targets), "targets": {}}
    if set(DEPLOYED) & set(args.target_names):
        progress("measuring the machine's idle tax")
        doc["meta"]["machine"]["idle_tax"] = idle_tax.measure_in_subprocess()
    for target in targets:
        scenarios = {s.name: summarize(r for r in runs if r.target == target.name and r.scenario == s.name)
                     for s in SCENARIOS if s.concurrency <= target.max_concurrency}
        skipped = {s.name: "one request per Lambda execution environment: concurrency is more environments"
                   for s in SCENARIOS if s.concurrency > target.max_concurrency}
        doc["targets"][target.name] = {"label": target.label, "software": target.software,
                                       "ready_s": target.ready_s, "scenarios": scenarios, "skipped": skipped}

    if aws is not None:
        keys = {"key": aws.key, "limited_key": aws.limited_key}
        doc["aws_calls"] = {}
        for target in targets:
            if target.name in ("gateway", "lambda", "streaming"):
                progress(f"counting AWS calls per request: {target.name}")
                doc["aws_calls"][target.name] = check_aws_calls(bench, target, keys, requests=args.aws_requests)
        if args.cold_starts:
            doc["cold_start"] = coldstart.measure(args.cold_starts, args.model, {**env, "BENCH_KEY": aws.key,
                                                  "BENCH_UPSTREAM_URL": upstream_url}, ROOT, progress)
    if args.profile:
        from .profile import profile_gateway

        args.profile.mkdir(parents=True, exist_ok=True)
        progress(f"profiling {args.profile_target} with py-spy ({args.profile_requests} requests, {args.profile_load})")
        gateway = next(t for t in targets if t.name == args.profile_target)
        doc["profile"] = profile_gateway(bench, gateway, py_spy=args.py_spy, out_dir=args.profile,
                                         requests=args.profile_requests, load=args.profile_load)

    for target in targets:  # VmHWM: the peak over the whole run, start-up and load included
        doc["targets"][target.name]["peak_rss_mb"] = target.server.peak_rss_mb() if target.server else None
        doc["targets"][target.name]["server_argv"] = list(target.server.popen.args) if target.server else None
    doc["shared"] = {"fake upstream": fake.peak_rss_mb(), "load generator": loadgen.process.peak_rss_mb()}
    if aws is not None:
        doc["shared"]["moto"] = aws.moto.peak_rss_mb()
    comparisons(doc)
    return doc


def _stop_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds the ExitStack: every child is stopped


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGINT, _stop_on_signal)  # also when started in the background (SIGINT ignored)
    with ExitStack() as stack:
        if args.log_dir:
            args.log_dir.mkdir(parents=True, exist_ok=True)
            log_dir = args.log_dir
        else:
            log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        doc = run(args, stack, log_dir)
    text = markdown(doc)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
        progress(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
