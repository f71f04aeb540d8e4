"""Alias patterns: names no catalogue lists, resolved by prefix the same way on every route.

An alias ending in `*` in the providers secret matches every name that begins
with the rest of it, so the names each Claude Code release invents
(`claude-opus-5-5` today, `claude-opus-6-1` next) need no change of
configuration. Precedence: a catalogue id, an exact alias, a name exactly one
model answers to (bare or dated), then the longest matching pattern; a name
nothing matches is a 404. The key's allow-list judges the model a name resolves
to, so a pattern never widens what a key may use.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from types import MappingProxyType

import anthropic
import pytest

from handler.protocol.errors import GatewayError
from handler.providers.catalogue import Catalogue, Model, Provider
from tests.support.stack import TEST_MODELS, providers_document, serve

ANTHROPIC = Provider("anthropic", "anthropic")


def catalogue(*names: str, aliases=None) -> Catalogue:
    models = {f"anthropic/{n}": Model(f"anthropic/{n}", ANTHROPIC, n) for n in names}
    return Catalogue(MappingProxyType({"anthropic": ANTHROPIC}), MappingProxyType(models),
                     MappingProxyType(aliases or {}))


TIERS = catalogue("claude-opus-4-8", "claude-sonnet-5", "claude-haiku-4-5", aliases={
    "claude-*": "anthropic/claude-haiku-4-5",
    "claude-opus-*": "anthropic/claude-sonnet-5",
    "claude-opus-5-*": "anthropic/claude-opus-4-8",
    "claude-opus-5-5": "anthropic/claude-haiku-4-5",
})


@pytest.mark.parametrize("name, served", [
    ("claude-opus-5-1", "anthropic/claude-opus-4-8"),  # claude-opus-5-* is longer than claude-opus-*
    ("claude-opus-6-1", "anthropic/claude-sonnet-5"),  # claude-opus-* is longer than claude-*
    ("claude-fable-5", "anthropic/claude-haiku-4-5"),  # only claude-* matches
    ("claude-opus-5-5", "anthropic/claude-haiku-4-5"),  # an exact alias beats every pattern
    ("claude-opus-4-8", "anthropic/claude-opus-4-8"),  # a name the catalogue lists beats every pattern
    ("claude-haiku-4-5-20251001", "anthropic/claude-haiku-4-5"),  # so does its dated snapshot
    ("anthropic/claude-sonnet-5", "anthropic/claude-sonnet-5"),  # and a catalogue id
])
def test_the_longest_matching_pattern_serves_a_name_nothing_else_answers_to(name, served):
    assert TIERS.resolve(name).id == served


def test_a_name_no_pattern_matches_is_still_404():
    with pytest.raises(GatewayError) as caught:
        TIERS.resolve("gpt-9")
    assert caught.value.status == 404 and "not in this gateway's catalogue" in caught.value.message


def test_a_pattern_does_not_settle_a_name_two_models_answer_to():
    shared = Provider("other", "anthropic")
    models = {"anthropic/claude-x-1": Model("anthropic/claude-x-1", ANTHROPIC, "claude-x-1"),
              "other/claude-x-1": Model("other/claude-x-1", shared, "claude-x-1")}
    both = Catalogue(MappingProxyType({"anthropic": ANTHROPIC, "other": shared}), MappingProxyType(models),
                     MappingProxyType({"claude-*": "anthropic/claude-x-1"}))
    with pytest.raises(GatewayError) as caught:
        both.resolve("claude-x-1")
    assert caught.value.status == 400 and "ambiguous" in caught.value.message


PATTERNS = {"claude-opus-*": "anthropic/claude-sonnet-4-5", "claude-*": "anthropic/claude-haiku-4-5"}


@pytest.fixture
def patterned(stack):
    """The gateway with alias patterns; one key for everything, one for OpenAI models only."""
    stack.put_providers({**providers_document(stack.upstream_url), "aliases": PATTERNS})
    everything, openai_only = stack.add_key(), stack.add_key(models=["openai/*"])
    with serve(stack) as running:
        def sdk(key):
            return anthropic.Anthropic(api_key=key, base_url=running.url + "/v3", max_retries=0, timeout=20)
        yield sdk(everything), sdk(openai_only)


def ask(text="hello"):
    return [{"role": "user", "content": text}]


def test_a_pattern_serves_messages_under_the_target_model(patterned, fake):
    client, _ = patterned
    message = client.messages.create(model="claude-opus-5-5", max_tokens=10, messages=ask())
    assert message.model == "anthropic/claude-sonnet-4-5", "claude-opus-5-5 was not served by its pattern"
    assert fake.last("/v1/messages").body["model"] == "claude-sonnet-4-5"
    with client.messages.stream(model="claude-fable-5", max_tokens=10, messages=ask()) as stream:
        assert stream.get_final_message().model == "anthropic/claude-haiku-4-5"


def test_a_pattern_answers_models_retrieve_and_count_tokens(patterned, fake):
    client, _ = patterned
    assert client.models.retrieve("claude-opus-6-1").id == "anthropic/claude-sonnet-4-5"
    counted = client.messages.count_tokens(model="claude-opus-6-1", messages=ask("one two three"))
    assert counted.input_tokens == 3 and fake.last().body["model"] == "claude-sonnet-4-5"


def test_a_pattern_names_a_fallback(patterned, fake):
    client, _ = patterned
    fake.fail("gpt-4o-mini", status=500)
    raw = client.messages.with_raw_response.create(model="openai/gpt-4o-mini", max_tokens=10, messages=ask(),
                                                   extra_body={"fallbacks": ["claude-opus-5-5"]})
    assert raw.parse().model == "anthropic/claude-sonnet-4-5", "the fallback named by a pattern did not answer"


def test_a_pattern_names_a_router_candidate(patterned):
    client, _ = patterned
    message = client.messages.create(model="@edenai", max_tokens=10, messages=ask(),
                                     extra_body={"router_candidates": ["claude-opus-5-5"]})
    assert message.model == "anthropic/claude-sonnet-4-5"


def test_a_name_no_pattern_matches_is_404_on_every_route(patterned, fake):
    client, _ = patterned
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="gpt-9", max_tokens=10, messages=ask())
    assert caught.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("gpt-9")
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="gpt-9", messages=ask())
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="openai/gpt-4o-mini", max_tokens=10, messages=ask(),
                               extra_body={"fallbacks": ["gpt-9"]})
    assert fake.count() == 0, "an unknown fallback is refused before anything is sent"


def test_a_pattern_does_not_let_a_key_escape_its_allow_list(patterned, fake):
    _, openai_only = patterned
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        openai_only.messages.create(model="claude-opus-5-5", max_tokens=10, messages=ask())
    assert "'claude-opus-5-5'" in caught.value.message, "the 403 names the model as the caller gave it"
    assert "claude-sonnet-4-5" not in caught.value.message, "the 403 gives away the catalogue id behind the name"
    with pytest.raises(anthropic.PermissionDeniedError):
        openai_only.models.retrieve("claude-opus-5-5")
    with pytest.raises(anthropic.PermissionDeniedError):
        openai_only.messages.count_tokens(model="claude-opus-5-5", messages=ask())
    with pytest.raises(anthropic.PermissionDeniedError):
        openai_only.messages.create(model="@edenai", max_tokens=10, messages=ask(),
                                    extra_body={"router_candidates": ["claude-opus-5-5"]})
    assert fake.count() == 0


def test_patterns_are_not_listed_as_models(patterned):
    client, _ = patterned
    ids = [model.id for model in client.models.list(limit=1000)]
    assert not [i for i in ids if "*" in i], f"a pattern was listed as a model: {ids}"


# --------------------------------------------------------------------------- gateway-admin providers set

def _providers_set(aliases: dict, tmp_path) -> subprocess.CompletedProcess:
    path = tmp_path / "providers.json"
    path.write_text(json.dumps({**providers_document("http://up"), "aliases": aliases}))
    env = {**os.environ, "GATEWAY_PROVIDERS_SECRET_ID": f"pattern-test/{uuid.uuid4().hex[:8]}/providers"}
    return subprocess.run([sys.executable, "-m", "handler.admin", "providers", "set", "--file", str(path)],
                          capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("aliases, needle", [
    ({"claude-opus-*": "anthropic/claude-opus-9"},
     "'claude-opus-*' -> Model 'anthropic/claude-opus-9' is not in this gateway's catalogue. "
     "An alias names a catalogue id: `gateway-admin providers show` lists them."),
    ({"claude-*-fast": "anthropic/claude-haiku-4-5"}, "'claude-*-fast' may have '*' only at its end"),
    ({"*claude": "anthropic/claude-haiku-4-5"}, "'*claude' may have '*' only at its end"),
    ({"claude-**": "anthropic/claude-haiku-4-5"}, "'claude-**' may have '*' only at its end"),
    ({"*": "anthropic/claude-haiku-4-5"}, "'*' would match every name"),
    ({"@*": "anthropic/claude-haiku-4-5"}, "'@*' would match @edenai"),
    ({"claude-opus-*": "claude-*"}, "'claude-opus-*' -> Model 'claude-*' is not in this gateway's catalogue"),
])
def test_providers_set_refuses_patterns_it_cannot_apply(moto_endpoint, tmp_path, aliases, needle):
    result = _providers_set(aliases, tmp_path)
    assert result.returncode == 1 and needle in result.stderr, result.stderr


def test_providers_set_refuses_an_alias_whose_target_only_another_alias_names(moto_endpoint, tmp_path):
    result = _providers_set({"claude-opus-*": "anthropic/claude-sonnet-4-5", "big": "claude-opus-9"}, tmp_path)
    assert result.returncode == 1 and "'big' -> Model 'claude-opus-9'" in result.stderr, result.stderr


def test_providers_set_accepts_patterns_whose_targets_are_catalogue_ids(moto_endpoint, tmp_path):
    result = _providers_set({"claude-opus-*": "anthropic/claude-sonnet-4-5", "claude-*": "claude-haiku-4-5",
                             "opus": "anthropic/claude-sonnet-4-5"}, tmp_path)
    assert result.returncode == 0, result.stderr
    for line in ("alias claude-* -> anthropic/claude-haiku-4-5", "alias claude-opus-* -> anthropic/claude-sonnet-4-5",
                 "alias opus -> anthropic/claude-sonnet-4-5"):
        assert line in result.stdout.splitlines(), \
            f"the operator does not see which model each alias serves: {result.stdout}"


# --------------------------------------------------------------------------- scripts/serve's demo catalogue

def _devstack():
    from tests.test_model_names import _devstack as load

    return load()


CLAUDE_CODE_TIERS = {  # the names 2.1.332 sends and names, and one a later release may send
    "claude-opus-5-5": "anthropic/claude-opus-4-8",
    "claude-sonnet-5-5": "anthropic/claude-sonnet-5",
    "claude-haiku-5-5": "anthropic/claude-haiku-4-5",
    "claude-fable-5": "anthropic/claude-opus-4-8",
    "claude-opus-6-1": "anthropic/claude-opus-4-8",
}


def test_the_demo_catalogue_serves_every_claude_code_tier_by_pattern(stack, fake):
    stack.put_providers({**providers_document(stack.upstream_url), **_devstack().demo_catalogue(TEST_MODELS)})
    key = stack.add_key()
    with serve(stack) as running:
        sdk = anthropic.Anthropic(api_key=key, base_url=running.url + "/v3", max_retries=0, timeout=20)
        for name, served in CLAUDE_CODE_TIERS.items():
            message = sdk.messages.create(model=name, max_tokens=32000, messages=ask())
            assert message.model == served, f"Claude Code's {name} was not served by the demo catalogue"
        with pytest.raises(anthropic.NotFoundError):
            sdk.messages.create(model="gemini-9-ultra", max_tokens=10, messages=ask())
