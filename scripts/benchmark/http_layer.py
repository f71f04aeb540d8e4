"""uvicorn's own CPU per request: its HTTP/1.1 parser and event loop, without the gateway.

The gateway's figure (scripts/bench) moves by a few tenths of a millisecond from
run to run on a shared machine, more than the parser and loop change. This
serves a bare ASGI app (a fixed JSON answer, the size of a short Messages reply)
under uvicorn with each protocol `handler.runtime.serving` offers, and sends it
the same keep-alive POSTs (an Anthropic SDK's headers and a short body), one at
a time; the server process's CPU (/proc) divided by the requests is the figure.
Variants alternate, so a busy machine weighs on each alike.

    python -m scripts.benchmark.http_layer [--requests 3000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time

from .procs import free_port

VARIANTS = {
    "asyncio + h11 (GuardedH11Protocol)": ("asyncio", "handler.runtime.serving:GuardedH11Protocol"),
    "asyncio + httptools (GuardedHttpToolsProtocol)": ("asyncio", "handler.runtime.serving:GuardedHttpToolsProtocol"),
    "uvloop + httptools (GuardedHttpToolsProtocol)": ("uvloop", "handler.runtime.serving:GuardedHttpToolsProtocol"),
}
SERVER = """
import sys, uvicorn
BODY = b'{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hello! How can I help you today?"}],"stop_reason":"end_turn","usage":{"input_tokens":12,"output_tokens":9}}'
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"request-id", b"req_01")]})
    await send({"type": "http.response.body", "body": BODY})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop=sys.argv[2], http=sys.argv[3],
            log_level="warning", access_log=False, lifespan="off")
"""
HEADERS = {"content-type": "application/json", "accept": "application/json", "anthropic-version": "2023-06-01",
           "x-api-key": "sk-edenai-" + "x" * 40, "user-agent": "Anthropic/Python 0.70.0",
           "x-stainless-lang": "python", "x-stainless-package-version": "0.70.0", "x-stainless-os": "Linux",
           "x-stainless-arch": "x64", "x-stainless-runtime": "CPython", "x-stainless-retry-count": "0"}
BODY = json.dumps({"model": "anthropic/claude-sonnet-4-5", "max_tokens": 1024,
                   "messages": [{"role": "user", "content": "Hello, Claude"}]})


def cpu_ms(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def one_round(loop: str, protocol: str, requests: int) -> float:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port), loop, protocol])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                connection.request("GET", "/")
                connection.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        for _ in range(100):  # warm-up
            connection.request("POST", "/v3/v1/messages", BODY, HEADERS)
            connection.getresponse().read()
        before = cpu_ms(server.pid)
        for _ in range(requests):
            connection.request("POST", "/v3/v1/messages", BODY, HEADERS)
            connection.getresponse().read()
        return (cpu_ms(server.pid) - before) / requests
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name, (loop, protocol) in VARIANTS.items():
            results[name].append(one_round(loop, protocol, args.requests))
    for name, values in results.items():
        print(f"{name}: median {statistics.median(values):.3f} ms of server CPU per request "
              f"(rounds: {', '.join(f'{v:.3f}' for v in values)})")


if __name__ == "__main__":
    main()
