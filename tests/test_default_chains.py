"""The operator's default chains: the providers secret's `fallbacks`, run for clients that send none.

Claude Code and the Agent SDK put no gateway field in the body: a key that runs
default chains (every key `gateway-admin keys create` makes) gets its model's
chain with no client change. `"default"` names the chain explicitly; `[]` turns
it off for one request; a key from before the setting (no field) runs none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import anthropic
import httpx
import pytest

from handler import aws
from tests.support.stack import providers_document, serve

CLAUDE = "anthropic/claude-sonnet-4-5"
HAIKU = "anthropic/claude-haiku-4-5"
GPT = "openai/gpt-4o-mini"
CHAINS = {"claude-sonnet-*": [HAIKU, GPT]}


def ask(text="hello"):
    return [{"role": "user", "content": text}]


@pytest.fixture
def chained(stack):
    stack.put_providers({**providers_document(stack.upstream_url), "fallbacks": CHAINS})
    return stack


@pytest.fixture
def chained_server(chained):
    with serve(chained) as running:
        yield running


def sdk(server, key):
    return anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0, timeout=20)


def test_a_request_with_no_fallbacks_runs_its_models_chain_when_the_key_allows(chained, chained_server, fake):
    """Claude Code's request names a bare model and no fallbacks: Anthropic's 529 goes unseen."""
    key = chained.add_key(default_fallbacks=True)
    fake.fail("claude-sonnet-4-5", status=529)
    raw = sdk(chained_server, key).messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=30, messages=ask())
    assert raw.parse().model == HAIKU, "the operator's chain did not answer for the 529"
    assert [a.split(";")[0] for a in raw.headers["x-edenai-attempts"].split(", ")] == [CLAUDE, HAIKU]


def test_a_key_from_before_the_setting_runs_no_chain(chained, chained_server, fake):
    key = chained.add_key()  # an entry without `default_fallbacks`
    fake.fail("claude-sonnet-4-5", status=529)
    with pytest.raises(anthropic.APIStatusError) as caught:
        sdk(chained_server, key).messages.create(model=CLAUDE, max_tokens=30, messages=ask())
    assert caught.value.status_code == 529
    assert fake.count("claude-haiku-4-5") == 0


def test_an_empty_list_turns_the_chain_off_for_one_request(chained, chained_server, fake):
    key = chained.add_key(default_fallbacks=True)
    fake.fail("claude-sonnet-4-5", status=529)
    with pytest.raises(anthropic.APIStatusError):
        sdk(chained_server, key).messages.create(model=CLAUDE, max_tokens=30, messages=ask(),
                                                 extra_body={"fallbacks": []})
    assert fake.count("claude-haiku-4-5") == 0


def test_default_names_the_chain_whatever_the_keys_setting(chained, chained_server, fake):
    key = chained.add_key()
    fake.fail("claude-sonnet-4-5", status=500)
    fake.fail("claude-haiku-4-5", status=500)
    message = sdk(chained_server, key).beta.messages.create(
        model=CLAUDE, max_tokens=30, messages=ask(), betas=["server-side-fallback-2026-07-01"], fallbacks="default")
    assert message.model == GPT


def test_the_chain_obeys_the_keys_allow_list(chained, chained_server, fake):
    key = chained.add_key(default_fallbacks=True, models=["anthropic/claude-sonnet-*", "openai/*"])
    fake.fail("claude-sonnet-4-5", status=529)
    message = sdk(chained_server, key).messages.create(model=CLAUDE, max_tokens=30, messages=ask())
    assert message.model == GPT
    assert fake.count("claude-haiku-4-5") == 0, "the chain used a model the key may not use"


def test_default_without_a_chain_goes_to_anthropic_as_sent(client, fake):
    """No chain for the model: Anthropic's own server-side fallback runs `"default"`."""
    client.beta.messages.create(model=CLAUDE, max_tokens=30, messages=ask(),
                                betas=["server-side-fallback-2026-07-01"], fallbacks="default")
    assert fake.last().body["fallbacks"] == "default"


def test_a_chain_does_not_go_upstream(chained, chained_server, fake):
    key = chained.add_key()
    sdk(chained_server, key).beta.messages.create(model=CLAUDE, max_tokens=30, messages=ask(),
                                                  betas=["server-side-fallback-2026-07-01"], fallbacks="default")
    assert "fallbacks" not in fake.last().body


def test_a_request_that_fell_back_does_not_move_the_next_off_the_primary(chained, chained_server, fake):
    """Prompt-cache affinity: the next turn starts on the primary again, whose cache holds the prefix."""
    key = chained.add_key(default_fallbacks=True)
    client = sdk(chained_server, key)
    fake.fail("claude-sonnet-4-5", status=529)
    assert client.messages.create(model=CLAUDE, max_tokens=30, messages=ask()).model == HAIKU
    raw = client.messages.with_raw_response.create(model=CLAUDE, max_tokens=30, messages=ask())
    assert raw.parse().model == CLAUDE
    assert raw.headers["x-edenai-attempts"].count(";status=") == 1


def providers_set(document, tmp_path):
    secret_id = f"admin-test/{uuid.uuid4().hex[:8]}/providers"
    path = tmp_path / "providers.json"
    path.write_text(json.dumps(document))
    env = {**os.environ, "GATEWAY_PROVIDERS_SECRET_ID": secret_id}
    result = subprocess.run([sys.executable, "-m", "handler.admin", "providers", "set", "--file", str(path)],
                            capture_output=True, text=True, env=env, timeout=60)
    return result, secret_id


def test_providers_set_refuses_a_chain_naming_no_catalogue_id(moto_endpoint, tmp_path):
    document = {**providers_document("http://127.0.0.1:9"),
                "fallbacks": {"claude-opus-*": ["bedrock/anthropic.claude-opus-4-8-v1:0"]}}
    result, secret_id = providers_set(document, tmp_path)
    assert result.returncode != 0 and "bedrock/anthropic.claude-opus-4-8-v1:0" in result.stderr, result.stderr
    with pytest.raises(Exception):
        aws.read_json_secret(secret_id)


def test_providers_set_stores_chains_of_catalogue_ids(moto_endpoint, tmp_path):
    document = {**providers_document("http://127.0.0.1:9"), "fallbacks": CHAINS}
    result, secret_id = providers_set(document, tmp_path)
    assert result.returncode == 0, result.stderr
    assert aws.read_json_secret(secret_id)["fallbacks"] == CHAINS


def test_keys_update_turns_default_chains_on_and_off(chained, chained_server, fake):
    key = chained.add_key()
    key_id = chained.key_id(key)
    env = {**os.environ, "GATEWAY_KEYS_SECRET_ID": chained.settings.keys_secret_id}
    for value in ("on", "off"):
        result = subprocess.run([sys.executable, "-m", "handler.admin", "keys", "update", key_id,
                                 "--default-fallbacks", value], capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        [entry] = [e for e in aws.read_json_secret(chained.settings.keys_secret_id)["keys"] if e["key_id"] == key_id]
        assert entry["default_fallbacks"] is (value == "on")


def test_keys_create_runs_default_chains(moto_endpoint):
    secret_id = f"admin-test/{uuid.uuid4().hex[:8]}/keys"
    env = {**os.environ, "GATEWAY_KEYS_SECRET_ID": secret_id}
    result = subprocess.run([sys.executable, "-m", "handler.admin", "keys", "create", "--name", "cc", "--json"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["default_fallbacks"] is True


def test_a_stream_falls_back_through_the_chain_too(chained, chained_server, fake):
    key = chained.add_key(default_fallbacks=True)
    fake.fail("claude-sonnet-4-5", status=529)
    response = httpx.post(f"{chained_server.url}/v3/v1/messages", headers={"x-api-key": key}, timeout=20,
                          json={"model": CLAUDE, "max_tokens": 30, "messages": ask(), "stream": True})
    assert response.status_code == 200 and response.headers["x-edenai-model"] == HAIKU


def test_claude_code_goes_on_through_bedrock_while_anthropic_answers_529(moto_endpoint, fake):
    """What Claude Code sends (a bare model name, its betas, no gateway field) on a key made by
    `keys create`: Anthropic's 529s are answered by Claude on Bedrock, the operator's chain."""
    from tests.support.fake_bedrock import FakeBedrock
    from tests.support.stack import ANTHROPIC_TEST_KEY, new_stack

    bedrock_claude = "bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0"
    with FakeBedrock(access_key_id=os.environ["AWS_ACCESS_KEY_ID"], secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                     region="us-east-1") as bedrock:
        stack = new_stack(fake.url)
        stack.put_providers({
            "providers": {"anthropic": {"api_key": ANTHROPIC_TEST_KEY, "api_base": fake.url},
                          "bedrock": {"type": "bedrock", "aws_region": "us-east-1", "api_base": bedrock.url}},
            "models": {CLAUDE: {}, bedrock_claude: {}},
            "fallbacks": {"claude-sonnet-*": [bedrock_claude]}})
        key = stack.add_key(default_fallbacks=True)
        fake.fail("claude-sonnet-4-5", status=529, times=None)
        with serve(stack) as server:
            client = sdk(server, key)
            for turn in range(2):
                raw = client.messages.with_raw_response.create(
                    model="claude-sonnet-4-5", max_tokens=40, messages=ask(f"turn {turn}"),
                    extra_headers={"anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14"})
                message = raw.parse()
                assert message.model == bedrock_claude, f"turn {turn}: Claude Code saw {message.model}"
                assert message.content[0].text.startswith("Hello from anthropic.claude-sonnet-4-5")
                assert raw.headers["x-edenai-attempts"].startswith(f"{CLAUDE};status=529")
        assert len(bedrock.snapshot()) == 2
