"""SnapStart: nothing that must be unique per environment outlives a restore.

Lambda restores one snapshot of the initialized process into many execution
environments. Whatever init created with a connection or a seed would be
shared by all of them: boto3 clients (pooled connections, cached
credentials), litellm's cached HTTP clients, `random`'s state. Request ids
come from `secrets` (the OS) at each call and need nothing. `forget_process_state`
drops the rest; the next request builds fresh ones.

When init is a snapshot's (or provisioned concurrency's), it also imports
what the first requests would (FIRST_CALL_MODULES: litellm above all), so
the snapshot holds it. An on-demand init imports none of it: a request that
needs litellm (a provider that does not speak Anthropic's API) imports it
then, and one that does not never pays for it.

Buffered mode: the Python runtime runs `snapshot_restore_py`'s hooks (it ships
with Lambda's runtime and its client, awslambdaric; the artifact does not carry it).
Streaming mode: uvicorn runs in a process the runtime never sees, so the Lambda
Web Adapter POSTs to AFTER_RESTORE_PATH instead (the adapter refuses that path
to outside callers); `streaming_app` answers it in front of the gateway's app.
It is built when first asked for (uvicorn's `handler.runtime.snapstart:streaming_app`),
so that only the streaming mode registers its usage-writing extension
(after_response.streaming); the buffered handler registers its own.
"""

from __future__ import annotations

import importlib
import os
import random
import sys

from .. import aws
from ..app import app
from ..metering import transact_wire
from ..providers import anthropic_api, bedrock_api, google_oauth
from . import after_response
from .heap import freeze_init_heap

BEFORE_SNAPSHOT_PATH = "/_lambda/snapstart/before-snapshot"
AFTER_RESTORE_PATH = "/_lambda/snapstart/after-restore"

# Imported by the first calls, not at import: litellm (about 2 s) and what it loads on its
# first call (about 480 modules more), the HTTP client's transport. All local files.
FIRST_CALL_MODULES = (
    "handler.providers.litellm_route",  # litellm itself
    "litellm.litellm_core_utils.default_encoding",  # tiktoken's bundled encodings
    "litellm.litellm_core_utils.logging_callback_manager",
    "litellm.rust_bridge.token_counter",
    "litellm.llms.openai.chat.gpt_audio_transformation",  # the /chat/completions route's first call
    "litellm.proxy.openai_files_endpoints.common_utils",
    "httpcore",  # the direct Anthropic route's transport
    "anyio._backends._asyncio",  # Starlette's worker threads, httpx's streams
)
# Lambda's init types that run before any request arrives: worth preparing for it.
PREPARED_INITS = frozenset({"snap-start", "provisioned-concurrency"})


def init_is_prepared() -> bool:
    return os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") in PREPARED_INITS


def import_first_call_modules() -> None:
    for name in FIRST_CALL_MODULES:
        importlib.import_module(name)


def forget_process_state() -> None:
    aws.reset_clients()
    transact_wire.forget_connections()
    anthropic_api.forget_clients()
    bedrock_api.forget_credentials()
    google_oauth.forget_tokens()
    litellm = sys.modules.get("litellm")
    if litellm is not None:
        attributes = vars(litellm)  # only what exists: reading would create it
        cache = attributes.get("in_memory_llm_clients_cache")
        if cache is not None:
            cache.flush_cache()
        for name in ("module_level_aclient", "module_level_client"):
            attributes.pop(name, None)  # recreated on next use
    random.seed()  # from os.urandom


def register_runtime_hooks() -> bool:
    """Registered with Lambda's Python runtime when it is there; False elsewhere."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return False
    register_before_snapshot(forget_process_state)
    register_after_restore(forget_process_state)
    return True


def with_snapstart_hooks(inner):
    """ASGI app: the adapter's hook paths answered here, everything else by `inner`."""

    async def app_with_hooks(scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" \
                and scope["path"] in (BEFORE_SNAPSHOT_PATH, AFTER_RESTORE_PATH):
            forget_process_state()
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await inner(scope, receive, send)

    return app_with_hooks


def __getattr__(name: str):
    if name != "streaming_app":
        raise AttributeError(name)
    global streaming_app
    streaming_app = with_snapstart_hooks(after_response.streaming(
        app, app.state.gateway, app.state.metered_ledger, os.environ.get("AWS_LAMBDA_RUNTIME_API"),
        on_settled=app.state.telemetry.flush))
    return streaming_app


if init_is_prepared():
    import_first_call_modules()
register_runtime_hooks()
freeze_init_heap()  # init is done: later collections leave its objects alone (heap.py)
