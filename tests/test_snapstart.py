"""SnapStart: a restore drops what one snapshot would share between environments,
both through the Python runtime's hooks and through the Lambda Web Adapter's.

`snapshot_restore_py` ships inside Lambda's Python runtime (and with its client,
awslambdaric, in the dev lock); a stand-in module with its two registration
functions shows what the gateway registers there.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import random
import sys
import types

import httpx
import litellm
import pytest
from litellm.llms.custom_httpx.http_handler import get_async_httpx_client

from handler.providers import anthropic_api
from handler import aws
from handler.runtime import snapstart


def test_forgetting_process_state_drops_aws_and_litellm_clients_and_reseeds_random(moto_endpoint):
    dynamodb = aws.client("dynamodb")
    http = get_async_httpx_client(llm_provider="anthropic")
    module_level = litellm.module_level_aclient
    random.seed(1234)
    state = random.getstate()

    snapstart.forget_process_state()

    assert aws.client("dynamodb") is not dynamodb
    assert get_async_httpx_client(llm_provider="anthropic") is not http
    assert litellm.module_level_aclient is not module_level
    assert random.getstate() != state


def test_the_runtime_hooks_are_registered_where_lambda_provides_them(monkeypatch):
    registered = {}
    runtime = types.ModuleType("snapshot_restore_py")
    runtime.register_before_snapshot = lambda hook: registered.setdefault("before", hook)
    runtime.register_after_restore = lambda hook: registered.setdefault("after", hook)
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", runtime)
    assert snapstart.register_runtime_hooks() is True
    assert registered == {"before": snapstart.forget_process_state, "after": snapstart.forget_process_state}


def test_without_lambdas_runtime_there_is_nothing_to_register(monkeypatch):
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # import fails, as off Lambda
    assert snapstart.register_runtime_hooks() is False


def request(method: str, path: str) -> httpx.Response:
    async def send():
        transport = httpx.ASGITransport(app=snapstart.streaming_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await client.request(method, path)
    return asyncio.run(send())


@pytest.mark.parametrize("path", [snapstart.AFTER_RESTORE_PATH, snapstart.BEFORE_SNAPSHOT_PATH])
def test_the_web_adapters_hooks_are_answered_in_front_of_the_app(moto_endpoint, path):
    dynamodb = aws.client("dynamodb")
    assert request("POST", path).status_code == 204
    assert aws.client("dynamodb") is not dynamodb


def test_everything_else_reaches_the_gateway(moto_endpoint):
    assert request("GET", "/health").json() == {"status": "ok"}
    wrong_method = request("GET", snapstart.AFTER_RESTORE_PATH)
    assert wrong_method.status_code in (404, 405) and wrong_method.json()["type"] == "error"


def modules_after_init(**env) -> set[str]:
    """The modules a fresh process holds after importing the Lambda entry point."""
    probe = "import json, sys, handler.lambda_function; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                            env={**os.environ, **env}, check=True)
    return set(json.loads(result.stdout))


def test_an_on_demand_init_imports_nothing_the_first_requests_could_import_themselves():
    modules = modules_after_init(AWS_LAMBDA_INITIALIZATION_TYPE="on-demand")
    assert "litellm" not in modules and "handler.providers.litellm_route" not in modules


@pytest.mark.parametrize("init_type", sorted(snapstart.PREPARED_INITS))
def test_a_snapshot_or_provisioned_init_imports_what_the_first_requests_would(init_type):
    modules = modules_after_init(AWS_LAMBDA_INITIALIZATION_TYPE=init_type)
    assert set(snapstart.FIRST_CALL_MODULES) <= modules and "litellm" in modules


def test_forgetting_process_state_drops_the_direct_anthropic_client():
    loop = asyncio.new_event_loop()

    async def current_client():
        return anthropic_api.client()

    try:
        before = loop.run_until_complete(current_client())
        snapstart.forget_process_state()
        assert loop.run_until_complete(current_client()) is not before
    finally:
        loop.close()
