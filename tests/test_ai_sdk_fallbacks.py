"""The Vercel AI SDK's `providerOptions.anthropic.fallbacks`, sent by the real SDK, do what Anthropic documents.

scripts/ai-sdk installs the pinned `ai` and `@ai-sdk/anthropic` 4 with the node 22
they need (from the npm registry, integrity-checked by `npm ci`) and makes one
generateText or streamText call. `@ai-sdk/anthropic` sends `fallbacks` as given
(`"default"` with the `server-side-fallback-2026-07-01` beta, a list of objects
with `-2026-06-01`), and reads Anthropic's `fallback` block as a `custom` content
part of kind `anthropic.fallback`. Both forms, both calls, both triggers:

- a refusal (the model declines, `stop_reason: "refusal"`): the next entry
  answers, and the answer carries a `fallback` block naming who declined and
  who answered (anthropic SDK `BetaFallbackBlock`), before the answer's text,
  and a `fallback_message` entry in `usage.iterations`;
- an error (Anthropic overloaded, 529): the next entry answers with no
  `fallback` block, which marks only "a hop where a preceding model actually
  ran this turn and declined" (the block's documentation).

The response's model and `x-edenai-attempts` say who answered, and a list entry's
`max_tokens` reaches its own attempt only. The next turn sends the `fallback`
block back, as the SDK does (and Anthropic's `BetaFallbackBlockParam` takes it:
"not rendered into the prompt"): Claude gets it as sent, a translated model's
call leaves it out, and it never costs the chain a model. Skipped only where the npm registry
cannot be reached (or npm is missing), saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.stack import providers_document, serve

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "ai-sdk"
CLAUDE = "anthropic/claude-sonnet-4-5"
HAIKU = "anthropic/claude-haiku-4-5"
GPT = "openai/gpt-4o-mini"
LISTED = [{"model": HAIKU, "max_tokens": 40}]


@pytest.fixture(scope="session")
def ai_sdk():
    if shutil.which("npm") is None:
        pytest.skip("npm is not on this machine: the pinned AI SDK and its node 22 cannot be installed")
    installed = subprocess.run([str(SCRIPT), "--install-only"], capture_output=True, text=True, timeout=600)
    if installed.returncode != 0:
        if not _registry_answers():
            pytest.skip(f"the npm registry cannot be reached to install the pinned AI SDK: {installed.stderr[-300:]}")
        pytest.fail(f"scripts/ai-sdk could not install its pin though the registry answers: {installed.stderr[-800:]}")
    node = installed.stdout.strip()
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    assert int(version.lstrip("v").split(".")[0]) >= 22, f"scripts/ai-sdk runs node {version}; the AI SDK needs 22"
    return node


def _registry_answers() -> bool:
    try:
        return subprocess.run(["npm", "ping"], capture_output=True, text=True, timeout=60).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@pytest.fixture
def gateway(ai_sdk, stack):
    """A gateway whose providers secret chains `claude-sonnet-*` to Haiku (`"default"` names it)."""
    stack.put_providers({**providers_document(stack.upstream_url), "fallbacks": {"claude-sonnet-*": [HAIKU]}})
    key = stack.add_key(name="ai-sdk")
    with serve(stack) as running:
        yield {"ANTHROPIC_BASE_URL": running.url + "/v3", "ANTHROPIC_API_KEY": key}


def ai_sdk_call(gateway, call: str, fallbacks, model: str = CLAUDE, turns: list[str] | None = None) -> dict:
    request = {"call": call, "model": model, "maxOutputTokens": 64,
               "providerOptions": {"anthropic": {"fallbacks": fallbacks}},
               **({"turns": turns} if turns else {"prompt": "hello"})}
    result = subprocess.run([str(SCRIPT)], input=json.dumps(request), capture_output=True, text=True, timeout=60,
                            env={**os.environ, **gateway})
    assert result.returncode == 0, f"the AI SDK's {call} failed: {result.stdout[-1000:]} {result.stderr[-1000:]}"
    return json.loads(result.stdout)


def fallback_parts(seen: dict) -> list[tuple[str, str]]:
    return [(p["providerMetadata"]["anthropic"]["from"]["model"], p["providerMetadata"]["anthropic"]["to"]["model"])
            for p in seen["content"] if p["type"] == "custom" and p["kind"] == "anthropic.fallback"]


FORMS = [pytest.param("default", id="default"), pytest.param(LISTED, id="list-of-objects")]
CALLS = ["generateText", "streamText"]


@pytest.mark.parametrize("fallbacks", FORMS)
@pytest.mark.parametrize("call", CALLS)
def test_a_refusal_is_answered_by_the_fallback_with_anthropics_fallback_block(gateway, fake, call, fallbacks):
    fake.refuse("claude-sonnet-4-5", category="cyber")
    seen = ai_sdk_call(gateway, call, fallbacks)
    assert seen["text"].startswith("Hello from claude-haiku-4-5"), f"the application saw {seen['text']!r}"
    assert fallback_parts(seen) == [(CLAUDE, HAIKU)], \
        f"the application was not told {CLAUDE} declined and {HAIKU} answered: {seen['content']}"
    kinds = [p.get("kind") or p["type"] for p in seen["content"]]
    assert kinds.index("anthropic.fallback") < kinds.index("text"), f"the fallback block came after the text: {kinds}"
    assert seen["finishReason"] == "stop" and seen["modelId"] == HAIKU
    iterations = [(i["type"], i["model"]) for i in seen["usage"]["raw"].get("iterations") or []]
    assert iterations == [("message", CLAUDE), ("fallback_message", HAIKU)], \
        f"the usage the SDK read did not say a fallback served the answer: {seen['usage']}"
    first, second = seen["headers"]["x-edenai-attempts"].split(", ")
    assert first.startswith(f"{CLAUDE};status=200;") and first.endswith(";declined"), first
    assert second.startswith(f"{HAIKU};status=200;"), second
    if call == "streamText":
        types = [p.get("kind") or p["type"] for p in seen["parts"]]
        assert types.index("anthropic.fallback") < types.index("text-delta"), types
    _check_what_reached_the_models(fake, fallbacks)


@pytest.mark.parametrize("fallbacks", FORMS)
@pytest.mark.parametrize("call", CALLS)
def test_an_overloaded_model_is_answered_by_the_fallback_without_a_fallback_block(gateway, fake, call, fallbacks):
    fake.fail("claude-sonnet-4-5", status=529)
    seen = ai_sdk_call(gateway, call, fallbacks)
    assert seen["text"].startswith("Hello from claude-haiku-4-5"), f"the application saw {seen['text']!r}"
    assert fallback_parts(seen) == [], "a fallback block said a model declined, but it failed (529)"
    assert seen["finishReason"] == "stop" and seen["modelId"] == HAIKU
    assert [a.split(";")[:2] for a in seen["headers"]["x-edenai-attempts"].split(", ")] == \
        [[CLAUDE, "status=529"], [HAIKU, "status=200"]]
    _check_what_reached_the_models(fake, fallbacks)


def _check_what_reached_the_models(fake, fallbacks) -> None:
    sent = {r.body["model"]: r for r in fake.snapshot() if r.path.endswith("/v1/messages")}
    assert set(sent) == {"claude-sonnet-4-5", "claude-haiku-4-5"}
    assert sent["claude-sonnet-4-5"].body["max_tokens"] == 64
    # A list entry's max_tokens is its attempt's alone; "default"'s chain keeps the request's.
    assert sent["claude-haiku-4-5"].body["max_tokens"] == (40 if isinstance(fallbacks, list) else 64)
    assert "fallbacks" not in sent["claude-haiku-4-5"].body, "the gateway's own chain reached a provider"


def test_default_with_no_chain_goes_to_anthropic_as_sent(gateway, fake):
    """No chain for Haiku: `"default"` is Anthropic's own server-side fallback, left to it."""
    seen = ai_sdk_call(gateway, "generateText", "default", model=HAIKU)
    assert seen["text"].startswith("Hello from claude-haiku-4-5")
    sent = fake.last("/v1/messages")
    assert sent.body["fallbacks"] == "default"
    assert "server-side-fallback-2026-07-01" in sent.headers["anthropic-beta"]


def test_the_next_turn_sends_the_fallback_block_back_and_claude_gets_it_as_sent(gateway, fake):
    fake.refuse("claude-sonnet-4-5", category="cyber")
    first, second = ai_sdk_call(gateway, "generateText", [{"model": GPT}], turns=["hello", "and then?"])["turns"]
    assert fallback_parts(first) == [(CLAUDE, GPT)]
    assert second["modelId"] == CLAUDE and second["text"].startswith("Hello from claude-sonnet-4-5"), second
    sent = fake.last("/v1/messages").body["messages"]
    assert [b["type"] for b in sent[1]["content"]] == ["fallback", "text"], \
        "the fallback block the SDK sent back did not reach Claude where the SDK put it"


def test_an_echoed_fallback_block_does_not_keep_a_translated_model_out_of_the_chain(gateway, fake):
    """The second turn's Claude is overloaded: GPT takes it, without the block (Chat Completions
    has no place for it, and it was never part of the prompt)."""
    fake.refuse("claude-sonnet-4-5", category="cyber")
    fake.fail("claude-sonnet-4-5", status=529)
    first, second = ai_sdk_call(gateway, "streamText", [{"model": GPT}], turns=["hello", "and then?"])["turns"]
    assert fallback_parts(first) == [(CLAUDE, GPT)]
    assert second["modelId"] == GPT, f"the second turn was not answered by the fallback: {second}"
    assert second["text"].startswith("Hello from gpt-4o-mini"), second["text"]
    sent = [r.body for r in fake.snapshot() if r.path.endswith("/chat/completions")][-1]["messages"]
    assert "fallback" not in json.dumps(sent), f"a fallback block reached GPT: {sent}"
    assert [m["role"] for m in sent] == ["user", "assistant", "user"], sent
