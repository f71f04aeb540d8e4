"""From runs to figures: pooled percentiles, throughput, CPU per request, comparisons.

Latencies of all rounds are pooled before taking percentiles (p99 needs the
samples); throughput is measured requests over measured wall time, all rounds
together; the per-round p50 and throughput are kept to show the spread.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _spread(values: list[float]) -> dict[str, float | None]:
    return {"p50": percentile(values, 50), "p90": percentile(values, 90), "p99": percentile(values, 99),
            "mean": statistics.fmean(values) if values else None}


def summarize(runs: Iterable[Any]) -> dict[str, Any]:
    """One target and scenario over every round."""
    runs = list(runs)
    latency = [v for run in runs for v in run.latency_ms]
    ttfb = [v for run in runs for v in run.ttfb_ms]
    ok = len(latency)
    wall = sum(run.wall_s for run in runs)
    cpu: dict[str, float] = {}
    for run in runs:
        for name, seconds in run.cpu_s.items():
            cpu[name] = cpu.get(name, 0.0) + seconds
    return {
        "requests": ok,
        "errors": sum(run.errors for run in runs),
        "error_samples": [s for run in runs for s in run.error_samples][:3],
        "latency_ms": _spread(latency),
        "ttfb_ms": _spread(ttfb),
        "throughput_rps": ok / wall if wall else None,
        "wall_s": wall,
        # CPU milliseconds per successful request, per process: the target's server, the fake
        # upstream, moto (metering targets), the load generator (HTTP targets).
        "cpu_ms_per_request": {name: 1000 * seconds / ok for name, seconds in cpu.items()} if ok else {},
        # Share of one core each process used while measured: the fake must stay far from 1.0.
        "cpu_utilisation": {name: seconds / wall for name, seconds in cpu.items()} if wall else {},
        "rounds": [{"p50_ms": percentile(run.latency_ms, 50),
                    "throughput_rps": len(run.latency_ms) / run.wall_s if run.wall_s else None,
                    "cpu_ms_per_request": {name: 1000 * seconds / len(run.latency_ms)
                                           for name, seconds in run.cpu_s.items()} if run.latency_ms else {}}
                   for run in runs],
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator in (None, 0):
        return None
    return numerator / denominator


def added(results: dict[str, Any], target: str, scenario: str, figure: str = "latency_ms",
          at: str = "p50") -> float | None:
    """What the target adds over calling the fake upstream directly, same scenario, same run."""
    mine = results.get(target, {}).get("scenarios", {}).get(scenario)
    direct = results.get("direct", {}).get("scenarios", {}).get(scenario)
    if not mine or not direct or mine[figure][at] is None or direct[figure][at] is None:
        return None
    return mine[figure][at] - direct[figure][at]
