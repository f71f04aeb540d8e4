"""One cold start, in the fresh process this is: import, then the first request.

    python -m scripts.benchmark.coldstart_probe gateway|litellm MODEL

`gateway` imports handler.lambda_function and invokes lambda_handler once
(secrets read, upstream call, ledger write: what a Lambda cold start pays);
`litellm` is the floor: a bare `import litellm` and one
`litellm.anthropic.messages.acreate` to the same fake upstream, with the same
offline settings the handler package sets for itself. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

from .procs import peak_rss_mb

PROMPT = [{"role": "user", "content": "Say hello in a few words, please."}]


def gateway(model: str) -> tuple[float, float, bool]:
    from tests.support.lambda_events import LambdaContext, http_api_event

    started = time.perf_counter()
    import handler.lambda_function as entry

    imported = time.perf_counter()
    headers = {"authorization": f"Bearer {os.environ['BENCH_KEY']}"}
    event = http_api_event("POST", "/v3/v1/messages", headers=headers,
                           body={"model": model, "max_tokens": 64, "messages": PROMPT})
    response = entry.lambda_handler(event, LambdaContext())
    return imported - started, time.perf_counter() - imported, response.get("statusCode") == 200


def bare_litellm(model: str) -> tuple[float, float, bool]:
    started = time.perf_counter()
    import litellm

    imported = time.perf_counter()
    litellm.use_chat_completions_url_for_anthropic_messages = True
    upstream = os.environ["BENCH_UPSTREAM_URL"]
    api_base = upstream + "/v1" if model.startswith("openai/") else upstream
    result = asyncio.run(litellm.anthropic.messages.acreate(
        model=model, messages=PROMPT, max_tokens=64, api_base=api_base, api_key="sk-bench-fake", max_retries=0))
    return imported - started, time.perf_counter() - imported, bool(result.get("content"))


def main() -> None:
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever the imports print goes to stderr, not into our answer
    mode, model = sys.argv[1], sys.argv[2]
    import_s, first_request_s, ok = (gateway if mode == "gateway" else bare_litellm)(model)
    out.write(json.dumps({"mode": mode, "import_s": import_s, "first_request_s": first_request_s, "ok": ok,
                          "peak_rss_mb": peak_rss_mb(os.getpid())}) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
