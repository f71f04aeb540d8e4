"""A request's own CPU inside the app: `POST /v3/v1/messages` driven in-process, no HTTP server.

The gateway's figure (scripts/bench) moves by tenths of a millisecond from run to run on a
shared machine and counts uvicorn's or Mangum's share with the app's. This calls the app
(handler.app's `create_app`, every middleware and the exact route) as an ASGI server would,
one request at a time, on uvloop as the deployed function runs, against the fake upstream
and moto in processes of their own; the calling process's CPU divided by the requests is the
figure: the body, the key, planning, the upstream call, the answer, the log line and the
usage entry, after a warm-up and with the heap then frozen as the deployed function freezes
its init's (handler/runtime/heap.py). `--ledger none` hands the entries to a ledger that keeps them in memory, so the
figure leaves out the usage write (the Lambda runtime's part, measured by ledger_write).
`--trees` compares checkouts (each imported through PYTHONPATH), rounds alternating, so a
busy machine weighs on each alike; `--profile FILE` writes one tree's cProfile stats instead
(CPU time per thread; cProfile's own cost inflates small calls most), or with `--py-spy PATH`
py-spy's raw collapsed stacks. `--idle-ms N` leaves the process idle N ms after each request
(a blocking sleep, no CPU), as a Lambda function idles between invocations and while its
usage write waits for DynamoDB: on the shared machine here the same request then costs about
twice the CPU it costs back to back (caches and the core's state lost while idle), which is
why the deployed targets' figures, whose invocations each wait for the last one's write, are
above the uvicorn target's, served back to back (scripts/benchmark/idle_tax.py measures it).
The request is a one-line "hello" unless `--answer-kb N` (a forced Edit call whose old and new
strings are the prompt's code, an answer of about N KB, as Claude Code's with tool_use blocks run
5-50 KB) or `--claude-code N` (the N-th largest of Claude Code's captured requests in tests/data,
27-88 KB, with its betas) says otherwise; the first round prints the request's and the answer's size.

    python -m scripts.benchmark.request_path [--requests 3000] [--rounds 3] [--model M]
        [--stream] [--ledger real|none] [--idle-ms N] [--answer-kb N | --claude-code N] [--trees DIR ...]
        [--profile FILE [--py-spy PATH]]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from . import aws_stack
from .procs import fake_upstream

ROOT = Path(__file__).resolve().parents[2]
CLIENT = """
import asyncio, cProfile, gc, io, json, sys, time
import uvloop

key, model, calls, stream, ledger_kind, profile, idle_ms, answer_kb, claude_code = sys.argv[1:10]
calls, stream, idle_s, answer_kb = int(calls), stream == "stream", float(idle_ms) / 1000, float(answer_kb)
sys.stdout = io.StringIO()  # the request lines; the figure goes to stderr
from handler.app import create_app

class MemoryLedger:
    \"\"\"Entries kept, none written: the usage write left out of the figure.\"\"\"
    def __init__(self):
        self.entries = []
    def record_batch(self, entries):
        self.entries.extend(entries)
        del self.entries[:-100]
        return ["written"] * len(entries)
    def spill(self, entry):
        return "written"

app = create_app(ledger=MemoryLedger() if ledger_kind == "none" else None)
request = {"model": model, "max_tokens": 20, "stream": stream, "messages": [{"role": "user", "content": "hello"}]}
if answer_kb:  # Claude Code's shape: an Edit call, its old and new strings code from the prompt
    lines = (f'    value_{i} = call("item {i}", path="/tmp/x{i}", sep="\\\\t")  # é — {i}' for i in range(10**6))
    code = "\\n".join(lines)[:int(answer_kb * 1024 / 3.6)]
    edit = {"name": "Edit", "description": "Edit a file", "input_schema": {"type": "object", "required": [
        "file_path", "old_string", "new_string"], "properties": {name: {"type": "string"} for name in (
        "file_path", "old_string", "new_string")}}}
    request.update(max_tokens=32000, tools=[edit], tool_choice={"type": "tool", "name": "Edit"},
                   messages=[{"role": "user", "content": code}])
beta = []
if claude_code != "-":  # one of Claude Code's captured requests, the largest first: its body and betas as sent
    with open("tests/data/claude-code-2.1.332.jsonl", encoding="utf-8") as rows:
        captured = sorted((json.loads(row) for row in rows), key=lambda r: -len(json.dumps(r["body"])))
    captured = captured[int(claude_code)]
    request = {**captured["body"], "model": model, "stream": stream}
    betas = captured["headers"].get("anthropic-beta")
    beta = [(b"anthropic-beta", betas.encode())] if betas else []
body = json.dumps(request).encode()
headers = [*beta, (b"host", b"127.0.0.1:8000"), (b"accept", b"application/json"),
           (b"content-type", b"application/json"), (b"user-agent", b"Anthropic/Python 0.75.0"),
           (b"authorization", b"Bearer " + key.encode()), (b"anthropic-version", b"2023-06-01"),
           (b"content-length", str(len(body)).encode())]

async def one():
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/v3/v1/messages", "raw_path": b"/v3/v1/messages",
             "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {}}
    sent, received = [], []
    async def receive():
        if received:  # the body was read: the client stays until the response ends
            await asyncio.Event().wait()
        received.append(1)
        return {"type": "http.request", "body": body, "more_body": False}
    async def send(message):
        sent.append(message)
    await app(scope, receive, send)
    assert sent[0]["status"] == 200, sent
    return sum(len(m.get("body", b"")) for m in sent[1:])

async def main():
    for _ in range(200):  # warm-up: secrets read, connections open
        answer_bytes = await one()
    print(f"request: {len(body)} bytes, answer: {answer_bytes} bytes", file=sys.stderr)
    await asyncio.sleep(0.2)
    gc.collect()
    gc.freeze()  # as the deployed function freezes its init heap (handler/runtime/heap.py)
    profiler = cProfile.Profile(time.thread_time) if profile != "-" else None
    if profiler:
        profiler.enable()
    started = time.process_time()
    for _ in range(calls):
        await one()
        if idle_s:
            time.sleep(idle_s)  # the process idle, as a function between invocations: no CPU, the loop held
    await app.state.gateway.drain(30)
    spent = time.process_time() - started
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    print(spent * 1000 / calls, file=sys.stderr)

uvloop.run(main())
"""


def one_round(tree: Path, env: dict, key: str, args, profile: str = "-") -> float:
    sampler = []
    if profile != "-" and args.py_spy:  # py-spy's collapsed stacks instead of cProfile's stats
        sampler, profile = [args.py_spy, "record", "--format", "raw", "--rate", "1000", "--nonblocking",
                            "--output", profile, "--"], "-"
    done = subprocess.run([*sampler, sys.executable, "-c", CLIENT, key, args.model, str(args.requests),
                           "stream" if args.stream else "json", args.ledger, profile, str(args.idle_ms),
                           str(args.answer_kb), "-" if args.claude_code is None else str(args.claude_code)],
                          env={**env, "PYTHONPATH": str(tree)}, cwd=tree, capture_output=True, text=True,
                          timeout=900)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    if (args.answer_kb or args.claude_code is not None) and not getattr(args, "_told", False):
        args._told = True
        print(done.stderr.strip().splitlines()[-2])
    return float(done.stderr.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="anthropic/claude-sonnet-4-5")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--ledger", choices=("real", "none"), default="real")
    parser.add_argument("--idle-ms", type=float, default=0.0,
                        help="the process idle this long after each request (a function waiting for its next invocation)")
    parser.add_argument("--answer-kb", type=float, default=0.0,
                        help="an answer of about this size: a forced Edit call whose strings are the prompt's code")
    parser.add_argument("--claude-code", type=int, metavar="N",
                        help="send the N-th largest of Claude Code's captured requests (tests/data), 0 the largest")
    parser.add_argument("--trees", type=Path, nargs="+", default=[ROOT])
    parser.add_argument("--profile", help="write the first tree's cProfile stats here (one round)")
    parser.add_argument("--py-spy", help="with --profile: sample with this py-spy instead (collapsed stacks)")
    args = parser.parse_args()
    with fake_upstream(ROOT) as url:
        aws = aws_stack.start(ROOT, Path(tempfile.mkdtemp(prefix="request-path-")), url)
        try:
            env = {**os.environ, **aws.env}
            if args.profile:
                print(f"{one_round(args.trees[0], env, aws.key, args, args.profile):.3f} ms of CPU per request "
                      f"while profiled; stats in {args.profile}")
                return
            results = {tree: [] for tree in args.trees}
            for _ in range(args.rounds):
                for tree in args.trees:
                    results[tree].append(one_round(tree, env, aws.key, args))
        finally:
            aws.moto.stop()
    for tree, values in results.items():
        print(f"{tree}: median {statistics.median(values):.3f} ms of CPU per request "
              f"(rounds: {', '.join(f'{v:.3f}' for v in values)})")


if __name__ == "__main__":
    main()
