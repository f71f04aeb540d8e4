"""Claude Code survives its provider's outage through the operator's default chain, with no client change.

The real, pinned CLI (scripts/claude-code) in print mode, with nothing but a base
URL and a key, against a gateway whose providers secret chains `claude-opus-*`
(Claude Code's default tier) from Anthropic to Claude on Bedrock. Anthropic's
fake answers every call with 529 `overloaded_error`; Bedrock's is healthy. The
CLI's answer arrives, from Bedrock; the ledger charges Bedrock's usage and lists
both attempts (as `x-edenai-attempts` does); the model Claude Code reports is
the one that answered; and every next request, a tool round trip's second turn
included, starts on Anthropic again (the primary keeps its prompt-cache affinity).
Skipped, saying why, where node is missing or npm cannot install the pinned CLI.
"""

from __future__ import annotations

import json

import pytest

from tests.support.family_fakes import BEDROCK_MODELS
from tests.support.stack import TEST_MODELS, providers_document, serve
from tests.test_claude_code_cli import bedrock, claude, claude_code, stream_events  # noqa: F401 - fixtures

PRIMARY = "anthropic/claude-opus-4-8"
BEDROCK_CLAUDE = "bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0"


@pytest.fixture
def outage(claude_code, stack, bedrock, fake):  # noqa: F811 - the fixtures imported above
    """scripts/serve's demo catalogue, Claude on Bedrock beside it, the operator's chain for
    `claude-opus-*`, a key as `gateway-admin keys create` makes it, and Anthropic down."""
    from tests.test_model_names import _devstack

    document = {**providers_document(stack.upstream_url), **_devstack().demo_catalogue(TEST_MODELS)}
    document["providers"]["bedrock"] = {"type": "bedrock", "aws_region": "us-east-1", "api_base": bedrock.url}
    document["models"] = {**document["models"], **BEDROCK_MODELS}
    document["fallbacks"] = {"claude-opus-*": [BEDROCK_CLAUDE]}
    stack.put_providers(document)
    key = stack.add_key(name="claude-code", default_fallbacks=True)
    fake.fail("claude-opus-4-8", status=529, times=None)  # Anthropic overloaded on every call
    with serve(stack) as running:
        yield {"ANTHROPIC_BASE_URL": running.url + "/v3", "ANTHROPIC_API_KEY": key, "key": key}


def cli_env(outage):
    return {name: value for name, value in outage.items() if name.startswith("ANTHROPIC_")}


def test_claude_code_answers_through_bedrock_while_anthropic_is_overloaded(outage, stack, fake, bedrock, tmp_path):
    events = stream_events(claude(cli_env(outage), "-p", "hello there", "--output-format", "stream-json",
                                  "--verbose", cwd=tmp_path))
    assert events[-1]["subtype"] == "success" and not events[-1]["is_error"], \
        f"Claude Code gave up while Anthropic was down although Bedrock was configured: {events[-1]}"
    assert events[-1]["result"].startswith("Hello from anthropic.claude-sonnet-4-5"), events[-1]["result"]
    answered = [e["message"]["model"] for e in events if e["type"] == "assistant"]
    assert answered == [BEDROCK_CLAUDE], f"Claude Code was told {answered} answered, not Bedrock's Claude"
    assert fake.count("claude-opus-4-8") == 1, "the request did not start on Anthropic"
    [record] = stack.records(outage["key"], 1)
    assert [(a["model"], a["status"]) for a in record["attempts"]] == [(PRIMARY, 529), (BEDROCK_CLAUDE, 200)]
    assert record["served_model"] == BEDROCK_CLAUDE, \
        f"the ledger charged {record['served_model']}, not the model that answered"
    reported = bedrock.reported_totals()
    charged = {name: int(record[name]) for name in reported}
    assert charged == reported, f"the ledger charged {charged}, Bedrock reported {reported}"


def test_each_turn_of_claude_code_starts_on_the_primary_again(outage, stack, fake, bedrock, tmp_path):
    """A tool round trip is two requests: the second is tried on Anthropic first too, so a fallback
    never moves the session (and its prompt cache) to Bedrock for good."""
    secret = tmp_path / "hello.txt"
    secret.write_text("the secret word is pineapple\n")
    bedrock.script_tool_call("Read", {"file_path": str(secret)})
    events = stream_events(claude(cli_env(outage), "-p", f"Use the Read tool to read {secret}", "--output-format",
                                  "stream-json", "--verbose", cwd=tmp_path))
    assert events[-1]["subtype"] == "success" and events[-1]["num_turns"] == 2, events[-1]
    assert "pineapple" in events[-1]["result"], "the tool's result never reached Bedrock's Claude"
    tried_first = [r.body["model"] for r in fake.snapshot() if r.path.endswith("/v1/messages")]
    assert tried_first == ["claude-opus-4-8", "claude-opus-4-8"], \
        f"after a fallback the next turn did not start on Anthropic: {tried_first}"
    records = stack.records(outage["key"], 2)
    assert [[a["model"] for a in r["attempts"]] for r in records] == [[PRIMARY, BEDROCK_CLAUDE]] * 2
    turns = [r.body["messages"] for r in bedrock.snapshot() if r.path_model]
    assert len(turns) == 2 and "pineapple" in json.dumps(turns[-1][-1]), "Bedrock never saw the tool's result"


def test_claude_code_continue_after_a_fallback_starts_on_the_primary(outage, fake, tmp_path):
    """A resumed session (2.1.332 resumes on its own default, `claude-opus-5-5`, not on the
    Bedrock id that answered last) is tried on Anthropic first, and Bedrock answers it again."""
    kept = {**cli_env(outage), "CLAUDE_CODE_HOME": str(tmp_path / "home")}
    work = tmp_path / "project"
    work.mkdir()
    assert stream_events(claude(kept, "-p", "remember the word kumquat", "--output-format", "stream-json",
                                "--verbose", cwd=work))[-1]["subtype"] == "success"
    events = stream_events(claude(kept, "-p", "which word was it", "--continue", "--output-format", "stream-json",
                                  "--verbose", cwd=work))
    assert events[-1]["subtype"] == "success", events[-1]
    tried = [r.body["model"] for r in fake.snapshot() if r.path.endswith("/v1/messages")]
    assert tried == ["claude-opus-4-8", "claude-opus-4-8"], f"the resumed session did not start on Anthropic: {tried}"
    assert [e["message"]["model"] for e in events if e["type"] == "assistant"] == [BEDROCK_CLAUDE]
