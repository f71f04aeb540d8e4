"""Model names resolve as Anthropic's API resolves them, the same way on every route.

A dated id and its undated alias are one model whichever of the two the
catalogue lists (Claude Code sends `claude-haiku-4-5-20251001` and
`claude-sonnet-4-5-20250929`); the providers secret's `aliases` add names of
the operator's own; `/v3/v1/models/{id}` and count_tokens take every name
`/messages` takes; an unknown model is 404 `not_found_error`, a model the key
may not use 403 `permission_error`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from types import MappingProxyType

import anthropic
import httpx
import pytest

from handler.protocol.errors import GatewayError
from handler.providers.catalogue import Catalogue, Model, Provider, build_catalogue
from tests.support.stack import providers_document, serve

ANTHROPIC = Provider("anthropic", "anthropic")


def catalogue(*names: str, aliases=None) -> Catalogue:
    models = {f"anthropic/{n}": Model(f"anthropic/{n}", ANTHROPIC, n) for n in names}
    return Catalogue(MappingProxyType({"anthropic": ANTHROPIC}), MappingProxyType(models),
                     MappingProxyType(aliases or {}))


@pytest.mark.parametrize("listed, requested", [
    ("claude-haiku-4-5", "claude-haiku-4-5-20251001"),
    ("claude-haiku-4-5", "anthropic/claude-haiku-4-5-20251001"),
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
    ("claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5"),
])
def test_a_dated_id_and_its_undated_alias_are_the_same_model_both_ways(listed, requested):
    assert catalogue(listed).resolve(requested).id == f"anthropic/{listed}"


def test_two_snapshots_of_different_dates_are_different_models():
    with pytest.raises(GatewayError) as caught:
        catalogue("claude-sonnet-4-5-20250929").resolve("claude-sonnet-4-5-20251231")
    assert caught.value.status == 404


def test_an_exact_name_wins_over_its_snapshot():
    both = catalogue("claude-sonnet-4-5", "claude-sonnet-4-5-20250929")
    assert both.resolve("claude-sonnet-4-5").id == "anthropic/claude-sonnet-4-5"
    assert both.resolve("claude-sonnet-4-5-20250929").id == "anthropic/claude-sonnet-4-5-20250929"


def test_aliases_from_the_secret_resolve_to_their_model_and_bad_ones_are_skipped():
    document = {**providers_document("http://up"), "aliases": {
        "opus": "anthropic/claude-sonnet-4-5", "fast": "claude-haiku-4-5-20251001", "ghost": "anthropic/nope"}}
    built = build_catalogue(document, {})
    assert built.resolve("opus").id == "anthropic/claude-sonnet-4-5"
    assert built.resolve("fast").id == "anthropic/claude-haiku-4-5"
    with pytest.raises(GatewayError) as caught:
        built.resolve("ghost")
    assert caught.value.status == 404


def test_claude_codes_dated_names_reach_the_provider_under_the_catalogue_name(client, fake):
    message = client.messages.create(model="claude-haiku-4-5-20251001", max_tokens=10,
                                     messages=[{"role": "user", "content": "hi"}])
    assert message.model == "anthropic/claude-haiku-4-5"
    assert fake.last().body["model"] == "claude-haiku-4-5"


@pytest.mark.parametrize("name", ["claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5"])
def test_models_retrieve_takes_every_name_messages_takes(client, name):
    assert client.models.retrieve(name).id == "anthropic/claude-sonnet-4-5"


def test_models_retrieve_knows_the_router(client):
    assert client.models.retrieve("@edenai").id == "@edenai"


@pytest.fixture
def two_keys(stack):
    """A key for everything and one for OpenAI models only, made before the app starts."""
    everything, openai_only = stack.add_key(), stack.add_key(models=["openai/*"])
    with serve(stack) as running:
        def sdk(key):
            return anthropic.Anthropic(api_key=key, base_url=running.url + "/v3", max_retries=0)
        yield sdk(everything), sdk(openai_only)


def test_models_retrieve_unknown_is_404_and_not_allowed_is_403(two_keys):
    _, openai_only = two_keys
    with pytest.raises(anthropic.NotFoundError):
        openai_only.models.retrieve("claude-nonexistent")
    with pytest.raises(anthropic.PermissionDeniedError):
        openai_only.models.retrieve("claude-sonnet-4-5")


def test_count_tokens_takes_dated_names_and_honours_the_key_allow_list(two_keys, fake):
    allowed, openai_only = two_keys
    counted = allowed.messages.count_tokens(model="claude-sonnet-4-5-20250929",
                                            messages=[{"role": "user", "content": "one two"}])
    assert counted.input_tokens == 2 and fake.last().body["model"] == "claude-sonnet-4-5"
    before = fake.count()
    with pytest.raises(anthropic.PermissionDeniedError):
        openai_only.messages.count_tokens(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.NotFoundError):
        openai_only.messages.count_tokens(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    assert fake.count() == before, "a key may not spend the gateway's counting on a model it may not use"


def test_an_alias_works_on_every_route(stack, fake):
    stack.put_providers({**providers_document(stack.upstream_url), "aliases": {"opus": "anthropic/claude-sonnet-4-5"}})
    key = stack.add_key()
    with serve(stack) as running:
        aliased = anthropic.Anthropic(api_key=key, base_url=running.url + "/v3", max_retries=0)
        assert aliased.messages.create(model="opus", max_tokens=5, messages=[{"role": "user", "content": "x"}]
                                       ).model == "anthropic/claude-sonnet-4-5"
        assert aliased.models.retrieve("opus").id == "anthropic/claude-sonnet-4-5"
        assert aliased.messages.count_tokens(model="opus", messages=[{"role": "user", "content": "x"}]).input_tokens


def _providers_set(document: dict, tmp_path) -> subprocess.CompletedProcess:
    path = tmp_path / "providers.json"
    path.write_text(json.dumps(document))
    env = {**os.environ, "GATEWAY_PROVIDERS_SECRET_ID": f"alias-test/{uuid.uuid4().hex[:8]}/providers"}
    return subprocess.run([sys.executable, "-m", "handler.admin", "providers", "set", "--file", str(path)],
                          capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("aliases, needle", [
    ({"opus": "anthropic/claude-opus-9"}, "'opus' -> Model 'anthropic/claude-opus-9' is not in this gateway's catalogue"),
    ({"@edenai": "anthropic/claude-sonnet-4-5"}, "'@edenai' may not be an alias"),
    ({"anthropic/claude-haiku-4-5": "anthropic/claude-sonnet-4-5"}, "may not be an alias"),
    ({"opus": 5}, "must name a model id"),
])
def test_providers_set_refuses_aliases_that_name_nothing(moto_endpoint, tmp_path, aliases, needle):
    result = _providers_set({**providers_document("http://up"), "aliases": aliases}, tmp_path)
    assert result.returncode == 1 and needle in result.stderr, result.stderr


def test_providers_set_accepts_good_aliases(moto_endpoint, tmp_path):
    result = _providers_set({**providers_document("http://up"), "aliases": {"opus": "claude-sonnet-4-5"}}, tmp_path)
    assert result.returncode == 0, result.stderr




def _devstack():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("devstack", Path(__file__).parents[1] / "scripts" / "devstack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CLAUDE_CODE_DEFAULT_NAMES = ["claude-opus-4-8", "claude-sonnet-5", "claude-haiku-4-5-20251001",
                             "claude-sonnet-4-5-20250929"]


def test_the_serve_demo_catalogue_answers_the_names_claude_code_sends_by_default(stack, fake):
    from tests.support.stack import TEST_MODELS

    stack.put_providers({**providers_document(stack.upstream_url), **_devstack().demo_catalogue(TEST_MODELS)})
    key = stack.add_key()
    with serve(stack) as running:
        sdk = anthropic.Anthropic(api_key=key, base_url=running.url + "/v3", max_retries=0, timeout=20)
        for name in CLAUDE_CODE_DEFAULT_NAMES:
            message = sdk.messages.create(model=name, max_tokens=32000, messages=[{"role": "user", "content": "hi"}])
            assert message.model.startswith("anthropic/claude-"), f"{name} was not served"
            assert sdk.models.retrieve(name).max_tokens >= 32000, f"{name}: Claude Code's 32000 would be clamped"
