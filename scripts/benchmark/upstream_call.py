"""The direct routes' upstream call alone: CPU per call on the gateway's side, without the gateway.

The gateway's figure (scripts/bench) moves by tenths of a millisecond from run to run on a
shared machine, more than the upstream call's own share. This makes the Anthropic route's
call (`anthropic_api.post`, then the answer read as the route reads it: `json_answer`, or the
stream's bytes) against the fake upstream in another process, keep-alive, one at a time, on
uvloop as the deployed function does; the calling process's CPU divided by the calls is the
figure. `--trees` compares checkouts (each imported through PYTHONPATH), rounds alternating,
so a busy machine weighs on each alike.

    python -m scripts.benchmark.upstream_call [--requests 2000] [--rounds 3] [--trees DIR ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

from .procs import fake_upstream

ROOT = Path(__file__).resolve().parents[2]
CLIENT = """
import asyncio, json, sys, time
import uvloop
from handler.providers import anthropic_api

url, calls, stream = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "stream"
body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 20, "stream": stream,
                   "messages": [{"role": "user", "content": "hello there"}]}).encode()
headers = {"x-api-key": "sk-ant-fake-provider-credential-0001", "anthropic-version": "2023-06-01",
           "content-type": "application/json", "accept": "text/event-stream" if stream else "application/json"}

async def one():
    response = await anthropic_api.post(url + "/v1/messages", headers, body, timeout=600.0)
    if stream:
        async for _ in anthropic_api._chunks(response):
            pass
    else:
        await anthropic_api.json_answer(response)

async def main():
    for _ in range(100):  # warm-up
        await one()
    started = time.process_time()
    for _ in range(calls):
        await one()
    print((time.process_time() - started) * 1000 / calls)

uvloop.run(main())
"""
MODES = ("json", "stream")


def one_round(tree: Path, url: str, mode: str, requests: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", CLIENT, url, str(requests), mode], env=env, cwd=tree,
                          capture_output=True, text=True, check=True, timeout=600)
    return float(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trees", type=Path, nargs="+", default=[ROOT])
    args = parser.parse_args()
    with fake_upstream(ROOT) as url:
        results = {(tree, mode): [] for tree in args.trees for mode in MODES}
        for _ in range(args.rounds):
            for mode in MODES:
                for tree in args.trees:
                    results[tree, mode].append(one_round(tree, url, mode, args.requests))
    for (tree, mode), values in results.items():
        print(f"{tree} {mode}: median {statistics.median(values):.3f} ms of CPU per call "
              f"(rounds: {', '.join(f'{v:.3f}' for v in values)})")


if __name__ == "__main__":
    main()
