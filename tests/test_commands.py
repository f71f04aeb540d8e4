"""The commands people run say what they are and fail fast, in words a user can act on.

Each `--help` names the command a user typed (not the Python file behind it)
and describes every option with its default; a command that cannot do its job
says why at once rather than hanging or printing what will not work.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*argv: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_serve_help_names_scripts_serve_and_describes_its_options():
    result = _run(sys.executable, "scripts/devstack.py", "--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: scripts/serve"), result.stdout
    text = " ".join(result.stdout.split())  # argparse wraps to the terminal's width
    assert "--port PORT the gateway's port" in text and "default: $GATEWAY_PORT or 8000" in text
    assert "--aws-port AWS_PORT the moto server's port" in text and "default: any free port" in text


def test_serve_refuses_a_taken_port_before_printing_a_demo_key():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run(sys.executable, "scripts/devstack.py", "--port", str(port))
    assert result.returncode == 2, result.stderr
    assert f"port {port} is taken" in result.stderr
    assert "demo key" not in result.stdout, "a key was printed for a server that cannot start"


def test_package_help_names_scripts_package_and_shows_defaults():
    result = _run(sys.executable, "scripts/_package.py", "--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: scripts/package"), result.stdout
    text = " ".join(result.stdout.split())
    assert "(default: arm64)" in text and "(default: 3.12)" in text


def test_claude_code_says_at_once_when_no_gateway_answers():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        started = time.monotonic()
        result = _run(str(ROOT / "scripts" / "claude-code"), "-p", "hello",
                      env={"ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}/v3"}, timeout=30)
    assert result.returncode == 2 and "nothing answers at" in result.stderr, result.stderr
    assert "scripts/serve" in result.stderr
    assert time.monotonic() - started < 10, "Claude Code was left to retry against nothing"


def test_serves_offline_providers_refuse_a_key_they_did_not_issue():
    """scripts/serve's fake Anthropic and OpenAI take only the keys its providers secret holds, as the
    real APIs take only the keys they issued: a secret edited to another key gets the provider's 401."""
    probe = """
import importlib.util, json, httpx
spec = importlib.util.spec_from_file_location("devstack", "scripts/devstack.py")
devstack = importlib.util.module_from_spec(spec); spec.loader.exec_module(devstack)
document, _ = devstack.providers_document()
anthropic, openai = document["providers"]["anthropic"], document["providers"]["openai"]
body = {"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
def messages(key):
    return httpx.post(anthropic["api_base"] + "/v1/messages", json=body,
                      headers={"x-api-key": key, "anthropic-version": "2023-06-01"}).status_code
def chat(key):
    return httpx.post(openai["api_base"] + "/chat/completions", headers={"authorization": "Bearer " + key},
                      json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).status_code
print(json.dumps([messages(anthropic["api_key"]), messages("sk-ant-someone-else"),
                  chat(openai["api_key"]), chat("sk-someone-else")]))
"""
    env = {name: value for name, value in os.environ.items() if name not in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")}
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**env, "PYTHONPATH": str(ROOT), "AWS_ACCESS_KEY_ID": "testing",
                                 "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1]) == [200, 401, 200, 401], (
        f"statuses for (the secret's key, another key) at Anthropic then OpenAI: {result.stdout}")
