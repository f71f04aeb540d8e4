"""The bare-litellm floor: a FastAPI app that only calls litellm.anthropic.messages.acreate.

No auth, no validation, no metering: what any gateway that calls litellm
in-process pays at least. The issue measures the gateway against it.

    python -m uvicorn scripts.benchmark.floor_app:app     (BENCH_UPSTREAM_URL = the fake upstream)
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

import litellm
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

litellm.use_chat_completions_url_for_anthropic_messages = True
UPSTREAM = os.environ["BENCH_UPSTREAM_URL"]
API_BASE = {"anthropic": UPSTREAM, "openai": UPSTREAM + "/v1"}

app = FastAPI()


@app.get("/health")
async def health() -> dict:
    return {"status": "ok"}


@app.post("/v1/messages")
async def messages(request: Request):
    body = await request.json()
    result = await litellm.anthropic.messages.acreate(
        model=body["model"], messages=body["messages"], max_tokens=body["max_tokens"],
        stream=bool(body.get("stream")), api_base=API_BASE[body["model"].split("/", 1)[0]],
        api_key="sk-bench-fake", max_retries=0,
    )
    if body.get("stream"):
        return StreamingResponse(result, media_type="text/event-stream")
    return JSONResponse(result)
