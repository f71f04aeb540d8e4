"""This machine's idle tax: the CPU a fixed piece of work costs right after an idle, against back to back.

A deployed function's process idles before each request (one execution
environment takes the next invocation only once the last one's usage write is
done, and callers rarely come back to back), and on a shared core the same
work then costs more CPU: the caches, the branch predictors and the core's
other state went to whatever ran meanwhile. The benchmark's deployed modes
pay that before every request, LiteLLM Proxy and the uvicorn target (served
back to back) do not. So the benchmark measures the tax in the same run,
beside the targets' figures: a reader can then tell the machine's share of a
deployed mode's CPU per request from the code's.

The work is the JSON a request's body takes (parsed, walked, encoded again),
about a quarter of a millisecond, timed on its own (the sleep's own wake-up is
not counted); rounds with and without the idle alternate, so a change in the
machine's load touches both alike.

    python -m scripts.benchmark.idle_tax [--idle-ms 10] [--units 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

BODY = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [
    {"role": "user" if i % 2 == 0 else "assistant", "content": f"{'filler text ' * 16}{i}"} for i in range(30)]})


def unit_of_work() -> int:
    """A fixed piece of pure-Python work, the kind a request is made of."""
    size = 0
    for _ in range(6):
        document = json.loads(BODY)
        size += sum(len(message["content"]) for message in document["messages"])
        size += len(json.dumps(document))
    return size


def cpu_per_unit_ms(units: int, idle_ms: float) -> float:
    """Median process CPU of one unit of work, each after `idle_ms` asleep (0: back to back)."""
    spent = []
    for _ in range(units):
        if idle_ms:
            time.sleep(idle_ms / 1000)
        started = time.process_time()
        unit_of_work()
        spent.append(time.process_time() - started)
    return 1000 * statistics.median(spent)


def measure(idle_ms: float = 10.0, units: int = 300, rounds: int = 3) -> dict[str, float]:
    """The median over rounds of each: back to back, then after the idle (alternating)."""
    unit_of_work()  # warm
    back_to_back, after_idle = [], []
    for _ in range(rounds):
        back_to_back.append(cpu_per_unit_ms(units, 0))
        after_idle.append(cpu_per_unit_ms(units, idle_ms))
    warm, cold = statistics.median(back_to_back), statistics.median(after_idle)
    return {"idle_ms": idle_ms, "back_to_back_ms": round(warm, 4), "after_idle_ms": round(cold, 4),
            "ratio": round(cold / warm, 2)}


def measure_in_subprocess(idle_ms: float = 10.0, timeout: float = 120.0) -> dict[str, float] | None:
    """`measure` in a fresh interpreter (none of the orchestrator's threads), or None if it failed."""
    try:
        done = subprocess.run([sys.executable, "-m", "scripts.benchmark.idle_tax", "--idle-ms", str(idle_ms),
                               "--json"], capture_output=True, text=True, timeout=timeout, check=True)
        return json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-ms", type=float, default=10.0)
    parser.add_argument("--units", type=int, default=300, help="units of work per round and mode")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    found = measure(args.idle_ms, args.units, args.rounds)
    if args.json:
        print(json.dumps(found))
    else:
        print(f"a unit of work: {found['back_to_back_ms']:.3f} ms of CPU back to back, "
              f"{found['after_idle_ms']:.3f} after {found['idle_ms']:g} ms asleep ({found['ratio']:.2f}x)")


if __name__ == "__main__":
    main()
