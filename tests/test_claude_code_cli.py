"""The real Claude Code CLI, pointed at the gateway with nothing but a base URL and a key.

scripts/claude-code installs the pinned @anthropic-ai/claude-code (2.1.197)
into .cache/claude-code, never globally, and runs it offline-safe. Here it
runs in print mode against the local stack with scripts/serve's demo
catalogue and no `--model`: a plain prompt, the stream-json output an IDE
integration reads, and a tool round trip (the fake calls Claude Code's Read
tool, Claude Code reads the file, the answer quotes it). Skipped, saying why,
where node is missing or npm cannot install the pinned package.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.stack import TEST_MODELS, providers_document, serve

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "claude-code"


@pytest.fixture(scope="session")
def claude_code():
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not on this machine: the Claude Code CLI cannot run (CI has node 20)")
    installed = subprocess.run([str(SCRIPT), "--install-only"], capture_output=True, text=True, timeout=300)
    if installed.returncode != 0:
        pytest.skip(f"npm could not install the pinned @anthropic-ai/claude-code: {installed.stderr[-500:]}")
    return installed.stdout.strip()


@pytest.fixture
def gateway(claude_code, stack):
    from tests.test_model_names import _devstack

    stack.put_providers({**providers_document(stack.upstream_url), **_devstack().demo_catalogue(TEST_MODELS)})
    key = stack.add_key(name="claude-code")
    with serve(stack) as running:
        yield {"ANTHROPIC_BASE_URL": running.url + "/v3", "ANTHROPIC_API_KEY": key}


def claude(gateway, *args, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, **gateway}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=90, cwd=cwd, env=env)


def test_claude_code_answers_a_plain_prompt_with_its_default_model(gateway, fake, tmp_path):
    result = claude(gateway, "-p", "hello there", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Hello from claude-opus-4-8" in result.stdout, "Claude Code's default model was not served"
    sent = fake.last("/v1/messages")
    assert sent.body["model"] == "claude-opus-4-8"
    assert "context_management" in sent.body, "Claude Code's context management never reached the model"
    assert "claude-code-20250219" in sent.headers["anthropic-beta"]


def test_claude_code_streams_json_events(gateway, tmp_path):
    result = claude(gateway, "-p", "hello there", "--output-format", "stream-json", "--verbose", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert events[0]["type"] == "system" and events[-1]["type"] == "result"
    assert events[-1]["subtype"] == "success" and not events[-1]["is_error"], events[-1]
    assert any(e["type"] == "assistant" and e["message"]["model"] == "anthropic/claude-opus-4-8" for e in events)


def test_claude_code_completes_a_tool_round_trip(gateway, fake, tmp_path):
    secret = tmp_path / "hello.txt"
    secret.write_text("the secret word is pineapple\n")
    result = claude(gateway, "-p", f"Use the Read tool to read {secret}", "--output-format", "stream-json",
                    "--verbose", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    calls = [block for e in events if e["type"] == "assistant" for block in e["message"]["content"]
             if block["type"] == "tool_use"]
    assert [(c["name"], c["input"]) for c in calls] == [("Read", {"file_path": str(secret)})]
    assert "pineapple" in events[-1]["result"], "the tool's result never made it back through the gateway"
    assert events[-1]["num_turns"] == 2


def test_claude_code_completes_a_tool_round_trip_on_gpt_through_chat_completions(gateway, fake, tmp_path):
    """The same round trip with an OpenAI model: Claude Code's tools reach it as functions, its
    call comes back as a `toolu_` tool_use Claude Code runs, and the result goes back as OpenAI's
    tool message with OpenAI's own call id."""
    secret = tmp_path / "hello.txt"
    secret.write_text("the secret word is mango\n")
    result = claude(gateway, "-p", f"Use the Read tool to read {secret}", "--model", "openai/gpt-4o-mini",
                    "--output-format", "stream-json", "--verbose", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    calls = [block for e in events if e["type"] == "assistant" for block in e["message"]["content"]
             if block["type"] == "tool_use"]
    assert [(c["name"], c["input"]) for c in calls] == [("Read", {"file_path": str(secret)})]
    assert calls[0]["id"].startswith("toolu_")
    assert "mango" in events[-1]["result"], "the tool's result never made it back through the gateway"
    sent = [r.body for r in fake.snapshot() if r.path.endswith("/chat/completions")]
    [answered] = [m for body in sent for m in body["messages"] if m["role"] == "tool"]
    assert answered["tool_call_id"].startswith("call_fake_") and "mango" in answered["content"]


def test_claude_code_gives_up_on_a_wrong_key_within_10_seconds(gateway, fake, tmp_path):
    """A 401 says `x-should-retry: false`, which the client obeys: without it Claude Code retried
    a wrong key 11-12 times over about three minutes before saying it could not authenticate."""
    wrong = {**gateway, "ANTHROPIC_API_KEY": "egw_not-a-key-of-this-gateway-0000"}
    started = time.monotonic()
    # Its own session, so a client still retrying is stopped whole (the script and node under it).
    process = subprocess.Popen([str(SCRIPT), "-p", "hello there"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=tmp_path, env={**os.environ, **wrong}, start_new_session=True)
    try:
        stdout, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail("Claude Code was still retrying a wrong key after 20 s")
    elapsed = time.monotonic() - started
    assert process.returncode != 0, stdout
    assert elapsed < 10, f"Claude Code took {elapsed:.1f} s to give up on a wrong key"
    assert fake.count() == 0
