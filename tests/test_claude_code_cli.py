"""The real Claude Code CLI, pointed at the gateway with nothing but a base URL and a key.

scripts/claude-code installs the pinned @anthropic-ai/claude-code (2.1.332)
into .cache/claude-code, never globally, and runs it offline-safe. Here it
runs in print mode against the local stack with scripts/serve's demo
catalogue and no `--model`: a plain prompt, the stream-json output an IDE
integration reads, a tool round trip (the fake calls Claude Code's Read
tool, Claude Code reads the file, the answer quotes it), tool search (the
fake calls ToolSearch, the `tool_reference` blocks Claude Code answers with
reach the model), `--continue`, a subagent on the model its tier names, and
a wrong key; then `--model` on an OpenAI-compatible and a Bedrock Claude
model. Skipped, saying why, where node is missing or npm cannot install the
pinned package.
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

from tests.support.fake_bedrock import FakeBedrock
from tests.support.family_fakes import BEDROCK_MODELS
from tests.support.stack import TEST_MODELS, providers_document, serve

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "claude-code"
PIN = ROOT / "scripts" / "claude-code-pin" / "package.json"
OLDEST_TESTED = (2, 1, 332)  # the release whose behaviour (names, tool search, subagents) these tests encode
BEDROCK_CLAUDE = "bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0"


@pytest.fixture(scope="session")
def claude_code():
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not on this machine: the Claude Code CLI cannot run (CI has node 20)")
    installed = subprocess.run([str(SCRIPT), "--install-only"], capture_output=True, text=True, timeout=300)
    if installed.returncode != 0:
        pytest.skip(f"npm could not install the pinned @anthropic-ai/claude-code: {installed.stderr[-500:]}")
    return installed.stdout.strip()


@pytest.fixture
def bedrock():
    """Bedrock's fake, checking the gateway's SigV4 signature with the stack's (moto's) credentials."""
    with FakeBedrock(access_key_id=os.environ["AWS_ACCESS_KEY_ID"], secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                     region="us-east-1") as fake_bedrock:
        yield fake_bedrock


@pytest.fixture
def gateway(claude_code, stack, bedrock):
    """scripts/serve's demo catalogue, with Bedrock's Claude beside it."""
    from tests.test_model_names import _devstack

    document = {**providers_document(stack.upstream_url), **_devstack().demo_catalogue(TEST_MODELS)}
    document["providers"]["bedrock"] = {"type": "bedrock", "aws_region": "us-east-1", "api_base": bedrock.url}
    document["models"] = {**document["models"], **BEDROCK_MODELS}
    stack.put_providers(document)
    key = stack.add_key(name="claude-code")
    with serve(stack) as running:
        yield {"ANTHROPIC_BASE_URL": running.url + "/v3", "ANTHROPIC_API_KEY": key}


def claude(gateway, *args, cwd, timeout: float = 90) -> subprocess.CompletedProcess:
    """One CLI run. In its own session, so a run past the timeout is stopped whole: killing the
    script alone left its node process retrying against a server that had gone."""
    process = subprocess.Popen([str(SCRIPT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=cwd, env={**os.environ, **gateway}, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def stream_events(result: subprocess.CompletedProcess) -> list[dict]:
    assert result.returncode == 0, result.stderr or result.stdout[-2000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_scripts_claude_code_runs_the_pinned_release(claude_code):
    pinned = json.loads(PIN.read_text())["dependencies"]["@anthropic-ai/claude-code"]
    assert tuple(map(int, pinned.split("."))) >= OLDEST_TESTED, f"scripts/claude-code pins {pinned}, older than 2.1.332"
    version = subprocess.run([claude_code, "--version"], capture_output=True, text=True, timeout=30)
    assert version.stdout.split()[0] == pinned, f"scripts/claude-code runs {version.stdout!r}, not the pinned {pinned}"


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


def test_claude_code_tool_search_sends_tool_references_to_claude(gateway, fake, tmp_path):
    """Claude Code sends most tools with `defer_loading: true` and a ToolSearch tool; the model
    searches, Claude Code answers with `tool_reference` blocks, and the gateway passes them on."""
    fake.script_tool_call("ToolSearch", {"query": "select:CronList"})
    result = claude(gateway, "-p", "which scheduling tools do you have", "--output-format", "stream-json",
                    "--verbose", cwd=tmp_path)
    events = stream_events(result)
    assert events[-1]["subtype"] == "success" and events[-1]["num_turns"] == 2, events[-1]
    first, second = [r.body for r in fake.snapshot() if r.path.endswith("/v1/messages")]
    assert "ToolSearch" in {t["name"] for t in first["tools"]}
    assert "CronList" not in {t["name"] for t in first["tools"]}, "CronList was sent before the search found it"
    loaded = [t for t in second["tools"] if t["name"] == "CronList"]
    assert loaded and loaded[0]["defer_loading"] is True, "the tool the search found was not sent for loading"
    [answer] = [b for b in second["messages"][-1]["content"] if b["type"] == "tool_result"]
    assert answer["content"] == [{"type": "tool_reference", "tool_name": "CronList"}], \
        "Claude never saw the tool Claude Code's search loaded"


def test_claude_code_tool_search_on_gpt_names_the_found_tools_in_words(gateway, fake, tmp_path):
    fake.script_tool_call("ToolSearch", {"query": "select:CronList"})
    result = claude(gateway, "-p", "which scheduling tools do you have", "--model", "openai/gpt-4o-mini",
                    "--output-format", "stream-json", "--verbose", cwd=tmp_path)
    assert stream_events(result)[-1]["subtype"] == "success"
    sent = [r.body for r in fake.snapshot() if r.path.endswith("/chat/completions")]
    [answered] = [m for m in sent[-1]["messages"] if m["role"] == "tool"]
    assert "CronList" in json.dumps(answered["content"]), "GPT was never told which tool the search found"


def test_claude_code_continue_resends_the_conversation_on_the_served_model(gateway, fake, tmp_path):
    """`--continue` with no `--model` names the model of the last response, the served catalogue
    id (anthropic/claude-opus-4-8), and sends the earlier turns with it."""
    kept = {**gateway, "CLAUDE_CODE_HOME": str(tmp_path / "home")}
    work = tmp_path / "project"
    work.mkdir()
    first = claude(kept, "-p", "remember the word kumquat", cwd=work)
    assert first.returncode == 0, first.stderr
    fake.clear()
    events = stream_events(claude(kept, "-p", "which word was it", "--continue", "--output-format", "stream-json",
                                  "--verbose", cwd=work))
    assert events[-1]["subtype"] == "success", events[-1]
    assert events[0]["model"] == "anthropic/claude-opus-4-8", "--continue did not resume on the served model"
    sent = fake.last("/v1/messages").body
    assert sent["model"] == "claude-opus-4-8"
    assert "kumquat" in json.dumps(sent["messages"]), "--continue did not send the earlier conversation"


def test_claude_code_subagent_runs_on_the_model_its_tier_names(gateway, fake, tmp_path):
    """The Agent tool starts a subagent on `claude-sonnet-5-5` (its `sonnet` tier), a name no
    catalogue lists: the demo's `claude-sonnet-*` pattern serves it."""
    fake.script_tool_call("Agent", {"description": "greet", "prompt": "say hello", "subagent_type": "general-purpose",
                                    "model": "sonnet", "run_in_background": False})
    events = stream_events(claude(gateway, "-p", "delegate a greeting to a helper", "--output-format", "stream-json",
                                  "--verbose", cwd=tmp_path))
    assert events[-1]["subtype"] == "success", events[-1]
    assert events[-1]["subagent_stats"]["completed"] == 1, events[-1]["subagent_stats"]
    assert events[-1]["modelUsage"]["claude-sonnet-5-5"]["outputTokens"] > 0, "the subagent's model was not served"
    models = [r.body["model"] for r in fake.snapshot() if r.path.endswith("/v1/messages")]
    assert models == ["claude-opus-4-8", "claude-sonnet-5", "claude-opus-4-8"]
    answer = fake.last("/v1/messages").body["messages"][-1]["content"]
    assert "Hello from claude-sonnet-5" in json.dumps(answer), "the subagent's answer never reached the main agent"


def test_claude_code_searches_its_tools_on_bedrock_claude_with_model(gateway, bedrock, tmp_path):
    """`--model` on Claude on Bedrock: InvokeModel gets Claude Code's request in a shape Bedrock
    accepts, and the tool search round trip reaches it with the `tool_reference` blocks."""
    bedrock.script_tool_call("ToolSearch", {"query": "select:CronList"})
    events = stream_events(claude(gateway, "-p", "which scheduling tools do you have", "--model", BEDROCK_CLAUDE,
                                  "--output-format", "stream-json", "--verbose", cwd=tmp_path))
    assert events[-1]["subtype"] == "success" and events[-1]["num_turns"] == 2, events[-1]
    calls = [r for r in bedrock.snapshot() if r.path_model]
    assert [r.path_model for r in calls] == ["anthropic.claude-sonnet-4-5-20250929-v1:0"] * 2
    [answer] = [b for b in calls[-1].body["messages"][-1]["content"] if b["type"] == "tool_result"]
    assert answer["content"] == [{"type": "tool_reference", "tool_name": "CronList"}], \
        "Bedrock's Claude never saw the tool Claude Code's search loaded"
