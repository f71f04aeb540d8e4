"""Every provider type says what its entry needs, and its credentials never show.

The providers secret's entries are checked by their family (handler/providers/families/):
`gateway-admin providers set` refuses an entry its family cannot use and says
what is missing; the gateway leaves such an entry out; `providers show`, reprs
and relayed messages never carry a credential, whatever the type calls it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from handler.providers import families
from handler.admin import describe_providers
from handler.providers.catalogue import Provider, build_catalogue, parse_providers
from handler.pipeline.calls import build_call
from tests.support.fake_vertex import new_rsa_key, pem_of

PRIVATE_KEY = pem_of(new_rsa_key())
SERVICE_ACCOUNT = {"type": "service_account", "client_email": "gw@proj.iam.gserviceaccount.com",
                   "private_key": PRIVATE_KEY, "token_uri": "http://127.0.0.1:1/token"}
EVERY_FAMILY = {
    "anthropic": {"api_key": "sk-ant-secret-0001"},
    "openai": {"api_key": "sk-openai-secret-0002"},
    "bedrock": {"type": "bedrock", "aws_region": "eu-west-3"},
    "gemini": {"api_key": "AIza-gemini-secret-0003"},
    "vertex": {"type": "vertex_ai", "vertex_project": "proj", "vertex_location": "europe-west4",
               "credentials": SERVICE_ACCOUNT},
    "azure": {"type": "azure", "api_key": "azure-secret-0004", "api_base": "https://res.openai.azure.com",
              "api_version": "2024-10-21"},
}
MODELS = {"anthropic/claude-sonnet-4-5": {}, "openai/gpt-4o-mini": {},
          "bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0": {}, "bedrock/amazon.nova-lite-v1:0": {},
          "gemini/gemini-2.5-flash": {}, "vertex/gemini-2.5-flash": {}, "vertex/claude-sonnet-4-5@20250929": {},
          "azure/prod-chat": {"base_model": "gpt-4o"}}
CREDENTIALS = ("sk-ant-secret-0001", "sk-openai-secret-0002", "AIza-gemini-secret-0003", "azure-secret-0004",
               PRIVATE_KEY.splitlines()[1])


VERTEX = Provider("vertex", "vertex_ai", settings={k: v for k, v in EVERY_FAMILY["vertex"].items() if k != "type"})


def providers_set(document: dict, tmp_path) -> subprocess.CompletedProcess:
    path = tmp_path / "providers.json"
    path.write_text(json.dumps(document))
    env = {**os.environ, "GATEWAY_PROVIDERS_SECRET_ID": f"families-test/{uuid.uuid4().hex[:8]}/providers"}
    return subprocess.run([sys.executable, "-m", "handler.admin", "providers", "set", "--file", str(path), "--json"],
                          capture_output=True, text=True, env=env, timeout=60)


def test_each_family_is_found_by_its_type_and_an_unknown_type_is_a_plain_litellm_provider():
    assert {name: families.family(name).type for name in families.FAMILIES} == {
        name: name for name in ("anthropic", "openai", "bedrock", "gemini", "vertex_ai", "azure")}
    assert families.family("groq") is families.family("mistral")  # the base: api_key + api_base
    assert families.family("groq").problems({"api_key": "k"}) == []


@pytest.mark.parametrize("name, conf, missing", [
    ("bedrock", {"type": "bedrock"}, "aws_region"),
    ("azure", {"type": "azure", "api_key": "k", "api_base": "https://r.openai.azure.com"}, "api_version"),
    ("vertex", {"type": "vertex_ai", "vertex_project": "p", "credentials": SERVICE_ACCOUNT}, "vertex_location"),
    ("gemini", {}, "api_key"),
    ("anthropic", {}, "api_key"),
], ids=["bedrock", "azure", "vertex", "gemini", "anthropic"])
def test_providers_set_says_which_required_field_an_entry_is_missing(moto_endpoint, tmp_path, name, conf, missing):
    result = providers_set({"providers": {**EVERY_FAMILY, name: conf}, "models": MODELS}, tmp_path)
    assert result.returncode == 1, f"an unusable {name!r} entry was stored: {result.stdout}"
    assert f"provider {name!r}: missing {missing}" in result.stderr, result.stderr


def test_providers_set_refuses_a_bedrock_key_and_fields_its_type_does_not_read(moto_endpoint, tmp_path):
    document = {"providers": {"bedrock": {"type": "bedrock", "aws_region": "us-east-1", "api_key": "x"},
                              "azure": {**EVERY_FAMILY["azure"], "api_verison": "typo"}}, "models": MODELS}
    result = providers_set(document, tmp_path)
    assert result.returncode == 1
    assert "bedrock authenticates with the function's IAM role" in result.stderr, result.stderr
    assert "unknown field(s) api_verison" in result.stderr, result.stderr


def test_providers_set_stores_every_family_and_show_names_no_credential(moto_endpoint, tmp_path):
    result = providers_set({"providers": EVERY_FAMILY, "models": MODELS}, tmp_path)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["models"] == sorted(MODELS)
    assert shown["providers"]["bedrock"] == {"type": "bedrock", "api_base": None, "api_key": "none",
                                             "aws_region": "eu-west-3", "credentials": "iam-role"}
    assert shown["providers"]["azure"]["api_version"] == "2024-10-21"
    for credential in CREDENTIALS:
        assert credential not in result.stdout, f"providers set printed a credential: {credential}"


@pytest.mark.parametrize("credentials, reason", [
    ({**SERVICE_ACCOUNT, "private_key": PRIVATE_KEY.replace("PRIVATE KEY", "EC PRIVATE KEY")},
     ": the private_key cannot sign the token request: private_key is a EC PRIVATE KEY, not a PRIVATE KEY"),
    ({**SERVICE_ACCOUNT, "private_key": "\n".join(PRIVATE_KEY.splitlines()[:3] + PRIVATE_KEY.splitlines()[-1:])},
     ": the private_key cannot sign the token request: the key's DER ends early"),
    ("{not json", " must be a service account's JSON key (with client_email and private_key)"),
    ({"private_key": PRIVATE_KEY}, " must be a service account's JSON key (with client_email and private_key)"),
], ids=["not-rsa", "truncated", "not-json", "no-client-email"])
def test_providers_set_refuses_a_vertex_key_it_cannot_sign_with_and_never_quotes_it(moto_endpoint, tmp_path,
                                                                                     credentials, reason):
    vertex = {**EVERY_FAMILY["vertex"], "credentials": credentials}
    result = providers_set({"providers": {**EVERY_FAMILY, "vertex": vertex}, "models": MODELS}, tmp_path)
    assert result.returncode == 1
    assert f"provider 'vertex': credentials{reason}" in result.stderr, result.stderr
    assert PRIVATE_KEY.splitlines()[2] not in result.stderr + result.stdout


def test_a_provider_carries_its_type_fields_but_never_shows_credentials():
    providers = {**parse_providers({"providers": EVERY_FAMILY}), "vertex": VERTEX}
    text = repr(providers) + json.dumps(describe_providers(build_catalogue({"providers": EVERY_FAMILY,
                                                                          "models": MODELS}, {})))
    for credential in CREDENTIALS:
        assert credential not in text
    assert SERVICE_ACCOUNT["private_key"] in providers["vertex"].secrets  # redacted from relayed messages
    assert providers["bedrock"].secrets == ()


def test_the_gateway_leaves_out_an_entry_its_family_cannot_use(caplog):
    providers = parse_providers({"providers": {"bedrock": {"type": "bedrock"}, "gemini": {"api_key": "k"}}})
    assert list(providers) == ["gemini"]
    assert "provider 'bedrock': missing aws_region" in caplog.text


def connection_of(model_id: str) -> dict:
    catalogue = build_catalogue({"providers": EVERY_FAMILY, "models": MODELS}, {})
    model = catalogue.models[model_id]
    call = build_call({"model": model_id, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
                      model, anthropic_beta=None, timeout=10)
    not_connection = {"messages", "max_tokens", "stream", "timeout", "max_retries",
                      *model.provider.family.model_arguments(model)}  # what the model needs, not where it is
    return {k: v for k, v in call.items() if k not in not_connection}


def test_each_family_gets_its_own_connection_arguments_from_the_secret():
    assert connection_of("bedrock/amazon.nova-lite-v1:0") == {
        "model": "bedrock/amazon.nova-lite-v1:0", "aws_region_name": "eu-west-3"}  # no api_key: SigV4
    assert connection_of("azure/prod-chat") == {
        "model": "azure/prod-chat", "api_key": "azure-secret-0004", "api_base": "https://res.openai.azure.com",
        "api_version": "2024-10-21"}
    vertex = families.family("vertex_ai").connection(VERTEX)
    assert (vertex["vertex_project"], vertex["vertex_location"]) == ("proj", "europe-west4")
    assert vertex["vertex_credentials"] == SERVICE_ACCOUNT
    assert connection_of("gemini/gemini-2.5-flash") == {"model": "gemini/gemini-2.5-flash",
                                                        "api_key": "AIza-gemini-secret-0003"}


def test_claude_on_bedrock_takes_anthropic_fields_and_nova_does_not():
    catalogue = build_catalogue({"providers": EVERY_FAMILY, "models": MODELS}, {})
    body = {"max_tokens": 2000, "messages": [{"role": "user", "content": "hi"}], "top_k": 5,
            "thinking": {"type": "enabled", "budget_tokens": 1024}}
    claude = build_call({**body, "model": "x"}, catalogue.models["bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0"],
                        anthropic_beta="interleaved-thinking-2025-05-14", timeout=10)
    nova = build_call({**body, "model": "x"}, catalogue.models["bedrock/amazon.nova-lite-v1:0"],
                      anthropic_beta="interleaved-thinking-2025-05-14", timeout=10)
    assert claude["body"]["thinking"] == body["thinking"] and claude["body"]["top_k"] == 5
    assert claude["extra_headers"] == {"anthropic-beta": "interleaved-thinking-2025-05-14"}
    assert "thinking" not in nova and "top_k" not in nova and "extra_headers" not in nova


def test_an_azure_deployment_is_priced_as_its_base_model():
    cost_map = {"azure/gpt-4o": {"input_cost_per_token": 2.5e-6, "output_cost_per_token": 1e-5, "mode": "chat"}}
    model = build_catalogue({"providers": EVERY_FAMILY, "models": MODELS}, cost_map).models["azure/prod-chat"]
    assert model.info["input_cost_per_token"] == 2.5e-6 and model.info["output_cost_per_token"] == 1e-5


def test_claude_on_vertex_takes_anthropic_fields_and_gemini_on_vertex_does_not():
    catalogue = build_catalogue({"providers": EVERY_FAMILY, "models": MODELS}, {})
    body = {"model": "x", "max_tokens": 2000, "messages": [{"role": "user", "content": "hi"}], "top_k": 5}
    claude = build_call(body, catalogue.models["vertex/claude-sonnet-4-5@20250929"], anthropic_beta=None, timeout=10)
    gemini = build_call(body, catalogue.models["vertex/gemini-2.5-flash"], anthropic_beta=None, timeout=10)
    assert claude["body"]["top_k"] == 5 and "top_k" not in gemini and "body" not in gemini
