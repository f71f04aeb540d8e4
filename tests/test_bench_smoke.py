"""scripts/bench cannot rot: its quick mode runs end to end and its numbers are sane.

The benchmark is not a test (CI does not run it); this runs its smoke mode
as a subprocess, exactly as a person would, and checks the JSON it writes:
the direct, gateway and Lambda targets always; the floor and LiteLLM Proxy,
which run in the benchmark's own environment (.venv-litellm-proxy, installed
from its hashed lock on first use: registry access, minutes), in a slow test.
Every target must answer every load it serves, streams included, without one
error: a target that cannot stream fails here, not in a long run's table.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOADS = {"nonstream_c1", "nonstream_c16", "stream_c1"}
ONE_AT_A_TIME = ("lambda", "streaming")  # the deployed modes: one invocation per execution environment


def bench(out: Path, *args: str, timeout: float = 240) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GATEWAY_"))}
    done = subprocess.run([str(ROOT / "scripts" / "bench"), "--quick", *args, "--json", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"scripts/bench failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    assert "### non-streamed, c=1" in done.stdout  # the markdown report
    return json.loads(out.read_text())


# Enough requests a load that a server's CPU over the phase is whole clock ticks (10 ms, procs.py),
# not a remainder: at about 1.5 ms a request, quick mode's 8 could read 0 on a loaded machine.
SMOKE_REQUESTS = "40"


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    return bench(tmp_path_factory.mktemp("bench") / "bench.json", "--targets", "direct,gateway,lambda,streaming",
                 "--requests", SMOKE_REQUESTS)


def assert_every_load_served_without_errors(targets: dict) -> None:
    for name, target in targets.items():
        expected = LOADS - {"nonstream_c16"} if name in ONE_AT_A_TIME else LOADS
        assert set(target["scenarios"]) == expected, name
        for load, summary in target["scenarios"].items():
            assert summary["requests"] > 0 and summary["errors"] == 0, (name, load, summary["error_samples"])
            latency = summary["latency_ms"]
            assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] < 30_000, (name, load)
            assert 0 < summary["ttfb_ms"]["p50"] <= latency["p99"], (name, load)
            assert summary["throughput_rps"] > 0, (name, load)


def test_every_target_ran_every_load_it_serves_without_errors(results):
    targets = results["targets"]
    assert set(targets) == {"direct", "gateway", "lambda", "streaming"}
    assert_every_load_served_without_errors(targets)
    for name in ONE_AT_A_TIME:
        assert set(targets[name]["skipped"]) == {"nonstream_c16"}


@pytest.mark.slow
def test_the_floor_and_litellm_proxy_stream_from_a_clean_clone(tmp_path):
    """The floor once failed every request (`No module named 'soundfile'`) once the gateway's lock dropped it."""
    results = bench(tmp_path / "bench.json", "--targets", "direct,floor,proxy", "--cold-starts", "0",
                    timeout=1200)
    assert set(results["targets"]) == {"direct", "floor", "proxy"}
    assert_every_load_served_without_errors(results["targets"])


def test_servers_cpu_and_memory_are_measured(results):
    for name in ("gateway", *ONE_AT_A_TIME):
        target = results["targets"][name]
        assert 20 < target["peak_rss_mb"] < 4096, name
        cpu = target["scenarios"]["nonstream_c1"]["cpu_ms_per_request"]
        assert cpu["server"] > 0 and "upstream" in cpu and "moto" in cpu, name
    assert "client" in results["targets"]["gateway"]["scenarios"]["nonstream_c1"]["cpu_ms_per_request"]
    assert results["shared"]["fake upstream"] > 0


def test_the_lambda_target_measures_the_function_process_as_lambdas_python_runtime_runs_it(results):
    """Buffered mode's server CPU is the function process's alone: the runtime interface client
    running lambda_handler, its extension's thread beside it; the Runtime API and API Gateway's
    event building are Lambda's, in a process of their own (once they were counted as the function's)."""
    import sys

    argv = results["targets"]["lambda"]["server_argv"]
    assert argv[1:3] == ["-m", "awslambdaric"], f"the measured process is not the runtime client: {argv}"
    module, name = argv[-1].rsplit(".", 1)
    same = subprocess.run([sys.executable, "-c", f"import handler.lambda_function as h, {module} as m; "
                           f"print(m.{name} is h.lambda_handler)"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "AWS_DEFAULT_REGION": "us-east-1"}, check=False)
    assert same.stdout.strip() == "True", f"{argv[-1]} is not handler.lambda_function.lambda_handler: {same.stderr[-2000:]}"


def test_metering_costs_at_most_one_dynamodb_write_per_request_and_one_reservation_with_limits(results):
    for name in ("gateway", *ONE_AT_A_TIME):
        checks = results["aws_calls"][name]
        for check in checks.values():
            assert check["errors"] == 0 and check["requests"] > 0, (name, check)
            assert 0 < check["operations"].get("dynamodb.TransactWriteItems", 0) <= check["requests"], (name, check)
        limited = checks["with_limits"]
        # One reservation per request; a new minute's first request opens the rpm window with a second.
        assert limited["operations"].get("dynamodb.UpdateItem") in (limited["requests"], limited["requests"] + 1)
        assert limited["secretsmanager"] == 0, (name, limited)
    for name in ONE_AT_A_TIME:
        checks = results["aws_calls"][name]
        # An invocation ends only once its write is done, so writes never overlap there.
        assert checks["no_limits"]["dynamodb"] == 1 and checks["no_limits_stream"]["dynamodb"] == 1, name


def test_added_latency_cold_start_and_goals_are_reported(results):
    for name in ("gateway", *ONE_AT_A_TIME):
        assert results["added"][name]["nonstream_c1_p50_ms"] is not None, name
    for name in ONE_AT_A_TIME:
        # A few ms on loopback: Nagle's algorithm in the stand-in Runtime API once held each event's
        # body for the runtime client's delayed ACK, 40 ms an invocation that Lambda does not add.
        assert results["added"][name]["nonstream_c1_p50_ms"] < 30, (name, results["added"][name])
    cold = results["cold_start"]
    assert cold["gateway"]["all_ok"] and cold["litellm"]["all_ok"]
    assert cold["gateway"]["median"]["import_s"] > 0 and cold["ratio_import"] > 0
    assert any("DynamoDB" in goal["goal"] for goal in results["goals"])
    # Without LiteLLM Proxy the ratio goals are unmeasured, but the deployed modes are what they ask of.
    assert [g["goal"] for g in results["goals"] if "Lambda" in g["goal"] and "LiteLLM" in g["goal"]] == [
        f"gateway, Lambda {mode} mode: {what} <= 0.5x LiteLLM Proxy's"
        for mode in ("buffered", "streaming") for what in ("added p50 at c=1", "streamed TTFB p50 at c=1")]
    assert results["meta"]["machine"]["nproc"] >= 1 and results["meta"]["versions"]["litellm"] != "-"


@pytest.mark.parametrize("model", ["bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0", "bedrock/amazon.nova-lite-v1:0"])
def test_bedrock_models_run_against_the_fake_bedrock_signed_with_the_benchmarks_credentials(tmp_path, model):
    """The fake refuses an unsigned or wrongly signed request (403): every target, the direct
    calls' pre-signed InvokeModel / Converse included, must get answers from it."""
    results = bench(tmp_path / "bench.json", "--model", model, "--targets", "direct,gateway,lambda,streaming")
    assert results["meta"]["model"] == model
    assert set(results["targets"]) == {"direct", "gateway", "lambda", "streaming"}
    assert_every_load_served_without_errors(results["targets"])
    assert "cold_start" not in results  # the cold-start probe's bare litellm cannot call Bedrock


def test_the_floor_is_refused_on_bedrock_with_a_reason(tmp_path):
    done = subprocess.run([str(ROOT / "scripts" / "bench"), "--quick", "--model", "bedrock/amazon.nova-lite-v1:0",
                           "--targets", "direct,floor"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 2 and "floor cannot call Bedrock" in done.stderr, done.stderr[-2000:]


def uvicorn_options(argv: list[str]) -> list[tuple[str, ...]]:
    """uvicorn's options in a command line (after `-m uvicorn APP`), port aside, in a stable order."""
    tokens = argv[argv.index("uvicorn") + 2:]
    groups: list[list[str]] = []
    for token in tokens:
        if token.startswith("--"):
            groups.append([token])
        else:
            groups[-1].append(token)
    return sorted(tuple(group) for group in groups if group[0] != "--port")


def test_the_streaming_target_runs_uvicorn_with_the_options_run_sh_deploys():
    """What the benchmark measures is what the Lambda Web Adapter starts: an access line per
    request, or another HTTP protocol, would be CPU the deployment does not spend (or hides)."""
    import shlex

    from scripts._package import RUN_SCRIPT
    from scripts.benchmark.targets import streaming_function_argv

    (command,) = [line for line in RUN_SCRIPT.replace("\\\n", " ").splitlines() if " uvicorn " in line]
    deployed = shlex.split(command)
    measured = streaming_function_argv(8080)
    assert uvicorn_options(measured) == uvicorn_options(deployed), \
        f"the benchmark's streaming target and run.sh start uvicorn differently:\n{measured}\n{deployed}"
    assert "--no-access-log" in measured and ("--lifespan", "off") in uvicorn_options(measured)
