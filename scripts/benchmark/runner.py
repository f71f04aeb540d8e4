"""Measured runs: one target, one scenario, one round; and the AWS-calls check.

CPU counters of every process involved are read after the warm-up and after
the last measured response, so each figure covers exactly the measured
requests. Rounds visit the targets round-robin, starting one further along
each round, so slow drift of the machine hits every target alike.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

from .awscalls import per_request
from .procs import Process
from .targets import Target
from .worker import Worker


@dataclass(frozen=True)
class Scenario:
    name: str
    stream: bool
    concurrency: int

    @property
    def label(self) -> str:
        return f"{'streamed' if self.stream else 'non-streamed'}, c={self.concurrency}"


SCENARIOS = (Scenario("nonstream_c1", False, 1), Scenario("nonstream_c16", False, 16),
             Scenario("stream_c1", True, 1))


@dataclass
class Run:
    target: str
    scenario: str
    round: int
    latency_ms: list[float]
    ttfb_ms: list[float]
    errors: int
    error_samples: list[str]
    wall_s: float
    cpu_s: dict[str, float] = field(default_factory=dict)  # server, upstream, moto, client
    aws_calls: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


def _settled_counts(url: str, quiet: float = 0.2, timeout: float = 5.0) -> dict[str, int]:
    """The AWS-call counters once they stopped moving: metering runs after the response is sent."""
    deadline = time.monotonic() + timeout
    last, since = _get_json(url), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = _get_json(url)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


SETTLE_TIMEOUT_S = 180.0  # above the adapter's own wait (web_adapter.LAST_INVOCATION_WAIT_S)


def _wait_settled(target: Target) -> None:
    """For a target whose usage writes trail its responses (streaming: the extension works
    through them after the last response), until the last one is written."""
    if target.settled_url:
        with urllib.request.urlopen(target.settled_url, timeout=SETTLE_TIMEOUT_S) as answer:
            answer.read()


class Bench:
    def __init__(self, loadgen: Worker, upstream: Process, moto: Process | None, upstream_url: str) -> None:
        self.loadgen = loadgen
        self.upstream = upstream
        self.moto = moto
        self.upstream_url = upstream_url

    def _cpu(self, target: Target) -> dict[str, float]:
        cpu = {"upstream": self.upstream.cpu_seconds()}
        if target.server is not None:
            cpu["server"] = target.server.cpu_seconds()
        if self.moto is not None and target.name in ("gateway", "lambda", "streaming"):
            cpu["moto"] = self.moto.cpu_seconds()
        cpu["client"] = self.loadgen.process.cpu_seconds()
        return cpu

    def measure(self, target: Target, scenario: Scenario, *, requests: int, warmup: int, round_: int = 0,
                headers: dict[str, str] | None = None, count_aws: bool = False) -> Run:
        driver = self.loadgen
        driver.send({
            "cmd": "run", "host": "127.0.0.1", "port": target.port, "path": target.path_for(scenario.stream),
            "headers": headers or target.headers_for(scenario.stream), "body": target.body(scenario.stream),
            "expect": target.expect(scenario.stream), "concurrency": scenario.concurrency,
            "requests": requests, "warmup": warmup,
        })
        driver.expect("warmed", timeout=120 + warmup * 2)
        _wait_settled(target)
        counts_before = _settled_counts(target.aws_calls_url) if count_aws and target.aws_calls_url else None
        before = self._cpu(target)
        driver.send({"cmd": "go"})
        done = driver.expect("done", timeout=120 + requests * 2)
        _wait_settled(target)  # the writes that trail the responses are the run's CPU too
        after = self._cpu(target)
        run = Run(target.name, scenario.name, round_, done["latency_ms"], done["ttfb_ms"], done["errors"],
                  done["error_samples"], done["wall_s"], {k: after[k] - before[k] for k in after})
        if count_aws:
            ok = len(run.latency_ms)
            if counts_before is not None:
                run.aws_calls = per_request(counts_before, _settled_counts(target.aws_calls_url), ok)
            elif "aws_calls" in done:
                run.aws_calls = per_request({}, done["aws_calls"], ok)
        self._forget_upstream_requests()
        return run

    def _forget_upstream_requests(self) -> None:
        """The fake records every request; clearing between runs keeps its memory flat."""
        request = urllib.request.Request(self.upstream_url + "/_fake/clear", data=b"{}", method="POST",
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=10):
            pass


def rotated(items: list[Any], by: int) -> list[Any]:
    by %= max(1, len(items))
    return items[by:] + items[:by]


def run_rounds(bench: Bench, targets: list[Target], *, rounds: int, requests: int, warmup: int,
               progress=print) -> list[Run]:
    runs = []
    for round_ in range(rounds):
        for scenario in SCENARIOS:
            for target in rotated(targets, round_):
                if scenario.concurrency > target.max_concurrency:
                    continue
                run = bench.measure(target, scenario, requests=requests, warmup=warmup, round_=round_)
                runs.append(run)
                ok = len(run.latency_ms)
                progress(f"round {round_ + 1}/{rounds} {scenario.name:<14} {target.name:<8} "
                         f"{ok / run.wall_s if run.wall_s else 0:7.1f} req/s  errors {run.errors}")
    return runs


AWS_CHECKS = (
    ("no_limits", False, "key"),
    ("no_limits_stream", True, "key"),
    ("with_limits", False, "limited_key"),
)


def check_aws_calls(bench: Bench, target: Target, keys: dict[str, str], *, requests: int) -> dict[str, Any]:
    """DynamoDB and Secrets Manager calls per request, per kind of key, on a warm process."""
    found = {}
    for name, stream, key in AWS_CHECKS:
        scenario = Scenario(name, stream, 1)
        headers = {**target.headers, "authorization": f"Bearer {keys[key]}"}
        run = bench.measure(target, scenario, requests=requests, warmup=3, headers=headers, count_aws=True)
        found[name] = {**(run.aws_calls or {}), "errors": run.errors, "error_samples": run.error_samples}
    return found
