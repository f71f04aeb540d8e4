"""The local stack behind scripts/serve, all on loopback.

A moto server stands in for AWS (the gateway reaches it through
AWS_ENDPOINT_URL, the same code path as AWS); secrets and the usage table are
created in it; a demo key is issued; providers are the real ones when their
API keys are in the environment, else the offline fake upstream.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The names current Claude Code sends with no --model (claude-opus-4-8) and for its aliases
# (claude-sonnet-5, claude-haiku-4-5-20251001, claude-sonnet-4-5-20250929: dated names resolve
# to the undated entries), with prices and limits of their own so the demo does not depend
# on the installed litellm's price map knowing models newer than it.
_NEW_CLAUDE = {"max_input_tokens": 1_000_000, "max_output_tokens": 128_000, "supports_reasoning": True,
               "supports_function_calling": True, "supports_vision": True, "supports_pdf_input": True,
               "supports_response_schema": True, "litellm_provider": "anthropic", "mode": "chat"}
CLAUDE_CODE_MODELS = {
    "anthropic/claude-opus-4-8": {**_NEW_CLAUDE, "input_cost_per_token": 5e-6, "output_cost_per_token": 2.5e-5},
    "anthropic/claude-sonnet-5": {**_NEW_CLAUDE, "input_cost_per_token": 2e-6, "output_cost_per_token": 1e-5},
}


# Claude Code's agent tiers, whatever version a release names (2.1.332 sends claude-opus-5-5,
# claude-sonnet-5-5, claude-haiku-5-5 and names a claude-fable-5 tier), each to a demo model
# of its rank: a name the catalogue lists still resolves to that model first.
DEMO_ALIASES = {
    "claude-opus-*": "anthropic/claude-opus-4-8",
    "claude-fable-*": "anthropic/claude-opus-4-8",
    "claude-sonnet-*": "anthropic/claude-sonnet-5",
    "claude-haiku-*": "anthropic/claude-haiku-4-5",
}


def demo_models(test_models: dict) -> dict:
    return {**test_models, **CLAUDE_CODE_MODELS}


def demo_catalogue(test_models: dict) -> dict:
    """The offline demo's `models` and `aliases` (the tests' stack serves the same)."""
    return {"models": demo_models(test_models), "aliases": DEMO_ALIASES}


def providers_document() -> tuple[dict, str]:
    real = {}
    if os.environ.get("ANTHROPIC_API_KEY"):
        real["anthropic"] = {"api_key": os.environ["ANTHROPIC_API_KEY"]}
    if os.environ.get("OPENAI_API_KEY"):
        real["openai"] = {"api_key": os.environ["OPENAI_API_KEY"]}
    if real:
        # The price map's Anthropic models include the aliases' targets.
        aliases = {"aliases": DEMO_ALIASES} if "anthropic" in real else {}
        return {"providers": real, **aliases}, "real providers: " + ", ".join(sorted(real))
    from contextlib import ExitStack

    from tests.support.family_fakes import start_family_fakes
    from tests.support.fake_upstream import ANTHROPIC, OPENAI, FakeUpstream
    from tests.support.stack import TEST_MODELS

    anthropic_key, openai_key = "sk-ant-local-fake", "sk-openai-local-fake"
    # Issued these keys only, as the real APIs issue theirs: a providers secret edited to
    # another key gets the provider's 401, as it would in production.
    fake = FakeUpstream(keys={ANTHROPIC: {anthropic_key}, OPENAI: {openai_key}}).start()
    families = start_family_fakes(ExitStack())  # serve until the process ends
    document = {
        "providers": {
            "anthropic": {"api_key": anthropic_key, "api_base": fake.url},
            "openai": {"api_key": openai_key, "api_base": fake.url + "/v1"},
            **families.providers,
        },
        "models": {**demo_models(TEST_MODELS), **families.models},
        "aliases": DEMO_ALIASES,
    }
    return document, f"offline fake providers at {fake.url} and {', '.join(sorted(families.providers))}"


def _port_taken(port: int) -> bool:
    """Whether something already listens on the gateway's port: say so before the banner,
    rather than print a demo key for a server that will not start."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="scripts/serve",
        description="Start the whole local stack on loopback: a moto server for Secrets Manager and "
                    "DynamoDB, offline fake providers, a demo key, and the gateway under uvicorn.",
        epilog="Ctrl-C stops everything. Real providers are used instead of the fakes when "
               "ANTHROPIC_API_KEY or OPENAI_API_KEY is set.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GATEWAY_PORT", "8000")),
                        help="the gateway's port on 127.0.0.1 (default: $GATEWAY_PORT or 8000)")
    parser.add_argument("--aws-port", type=int, default=0,
                        help="the moto server's port, standing in for AWS (default: any free port)")
    args = parser.parse_args()
    if _port_taken(args.port):
        parser.exit(2, f"error: port {args.port} is taken on 127.0.0.1 (another scripts/serve?); "
                       f"stop it or pass --port N\n")

    from tests.support.stack import start_moto

    _, endpoint = start_moto(args.aws_port)
    from handler import aws
    from handler.admin import create_key
    from handler.config import Settings
    from handler.metering.ledger import Ledger

    settings = Settings.from_env()
    document, provider_note = providers_document()
    fake_url = document["providers"].get("anthropic", {}).get("api_base", "")
    fault_help = "" if "fake" not in provider_note else f"""
  make a model fail, to see a fallback (the fake answers its next 3 calls with 529; send
  "fallbacks": ["openai/gpt-4o-mini"] in the body and read the x-edenai-attempts header):
    curl -s -X POST {fake_url}/_fake/faults -H 'content-type: application/json' \\
      -d '{{"model": "claude-sonnet-4-5", "action": "fail", "status": 529, "times": 3}}'
    (actions: fail, delay, reset, cut, malformed, pace; POST {fake_url}/_fake/clear undoes them)
"""
    aws.write_json_secret(settings.providers_secret_id, document)
    aws.write_json_secret(settings.keys_secret_id, {"keys": []})
    Ledger(settings.usage_table).create_table()
    demo = create_key(settings, name="demo", models=None, limits={})

    model = "anthropic/claude-sonnet-4-5"
    base = f"http://127.0.0.1:{args.port}"
    print(f"""
  AWS (moto):  {endpoint}
  providers:   {provider_note}
  demo key:    {demo['key']}
  gateway:     {base}/v3/v1/messages

  curl -s {base}/v3/v1/messages \\
    -H 'content-type: application/json' -H 'authorization: Bearer {demo['key']}' \\
    -d '{{"model": "{model}", "max_tokens": 100, "messages": [{{"role": "user", "content": "Hello"}}]}}'

  Anthropic SDK: anthropic.Anthropic(base_url="{base}/v3", api_key="{demo['key']}")
  Claude Code:   ANTHROPIC_BASE_URL={base}/v3 ANTHROPIC_API_KEY={demo['key']} {ROOT}/scripts/claude-code -p "hello"

  operator CLI against this stack (keys, usage, providers):
    AWS_ENDPOINT_URL={endpoint} AWS_DEFAULT_REGION={os.environ['AWS_DEFAULT_REGION']} \\
    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing {ROOT}/.venv/bin/gateway-admin usage
{fault_help}""", flush=True)

    import uvicorn

    import handler.app  # noqa: F401  built before serving (uvicorn finds it), so its heap is init's
    from handler.runtime.heap import freeze_init_heap

    freeze_init_heap()
    uvicorn.run("handler.app:app", host="127.0.0.1", port=args.port, log_level="info",
                http="handler.runtime.serving:GuardedHTTPProtocol")


if __name__ == "__main__":
    main()
