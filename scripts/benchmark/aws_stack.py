"""Metering on: a moto server in its own process, the secrets, the usage table and two keys.

The server is scripts.benchmark.moto_server: stock moto whose transactions no
longer copy the whole table (see there), so its cost per write stays flat.

Set up the way scripts/devstack.py and an operator do it (handler.admin's
create_key, Ledger.create_table), so the gateway under test reads real
secrets and writes real ledger transactions over HTTP, as it would on AWS.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .procs import Process, free_port

SECRETS = {
    "GATEWAY_KEYS_SECRET_ID": "bench/keys",
    "GATEWAY_PROVIDERS_SECRET_ID": "bench/providers",
    "GATEWAY_USAGE_TABLE": "bench-usage",
}
BEDROCK_CLAUDE = "bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0"  # a signed InvokeModel, no litellm
BEDROCK_NOVA = "bedrock/amazon.nova-lite-v1:0"  # Converse (the gateway's own; LiteLLM Proxy's too)
MODELS = {"anthropic/claude-sonnet-4-5": {}, "openai/gpt-4o-mini": {}, BEDROCK_CLAUDE: {}, BEDROCK_NOVA: {}}
REGION = "us-east-1"
# Every child's AWS credentials: moto takes any; the fake Bedrock checks requests are signed with these.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
# High enough never to refuse, so the limited key measures the reservation's cost, not a 429.
LIMITS = {"rpm": 1_000_000_000}


@dataclass
class AwsStack:
    moto: Process
    env: dict[str, str]
    key: str  # no limits: one DynamoDB write per request
    limited_key: str  # rpm limit: a reservation before the call, the write after


def start(root: Path, log_dir: Path, upstream_url: str, bedrock_url: str | None = None) -> AwsStack:
    """Start moto, point this process and every child at it, and create what the gateway reads
    (`bedrock_url`: the fake Bedrock, the `bedrock` entry's endpoint override)."""
    port = free_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_DEFAULT_REGION": REGION,
        **CREDENTIALS,
        **SECRETS,
    }
    argv = [sys.executable, "-m", "scripts.benchmark.moto_server", "-H", "127.0.0.1", "-p", str(port)]
    moto = Process("moto", argv, env={**os.environ, **env}, cwd=root, log_dir=log_dir)
    moto.wait_http(f"http://127.0.0.1:{port}/moto-api/", timeout=30)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(env)

    from handler import aws
    from handler.admin import create_key
    from handler.config import Settings
    from handler.metering.ledger import Ledger

    aws.reset_clients()
    settings = Settings.from_env()
    providers = {"anthropic": {"api_key": "sk-ant-bench-fake", "api_base": upstream_url},
                 "openai": {"api_key": "sk-openai-bench-fake", "api_base": upstream_url + "/v1"}}
    if bedrock_url:
        providers["bedrock"] = {"type": "bedrock", "aws_region": REGION, "api_base": bedrock_url}
    models = MODELS if bedrock_url else {m: v for m, v in MODELS.items() if not m.startswith("bedrock/")}
    aws.write_json_secret(settings.providers_secret_id, {"providers": providers, "models": models})
    aws.write_json_secret(settings.keys_secret_id, {"keys": []})
    Ledger(settings.usage_table).create_table()
    key = create_key(settings, name="bench", models=None, limits={})["key"]
    limited = create_key(settings, name="bench-limited", models=None, limits=LIMITS)["key"]
    return AwsStack(moto, env, key, limited)
