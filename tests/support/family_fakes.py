"""Every provider family's fake, started together, with the providers-secret entries and
models that point the gateway at them: what scripts/serve offers offline, and what a test
needs to reach every family at once. Adding a family's fake is adding it here."""

from __future__ import annotations

import os
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Iterator

import anthropic

from tests.support.fake_azure import FakeAzure
from tests.support.fake_bedrock import FakeBedrock
from tests.support.fake_gemini import FakeGemini
from tests.support.fake_vertex import FakeVertex
from tests.support.stack import ANTHROPIC_TEST_KEY, Stack, new_stack, serve

DIRECT_CLAUDE = "anthropic/claude-sonnet-4-5"

BEDROCK_MODELS = {"bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0": {}, "bedrock/amazon.nova-lite-v1:0": {}}
GEMINI_MODELS = {"gemini/gemini-2.5-flash": {}}
GEMINI_TEST_KEY = "AIza-fake-gemini-credential-0003"
AZURE_TEST_KEY = "azure-fake-credential-0004"
AZURE_API_VERSION = "2024-10-21"
AZURE_MODELS = {"azure/prod-chat": {"base_model": "gpt-4o"}}  # a deployment, priced as what it deploys
VERTEX_MODELS = {"vertex/claude-sonnet-4-5@20250929": {}, "vertex/gemini-2.5-flash": {}}


@dataclass
class FamilyFakes:
    providers: dict  # providers-secret entries pointing at the fakes
    models: dict     # the `models` they serve
    fakes: dict      # provider name -> its fake, to inject failures


def upstream(model_id: str) -> str:
    """The provider's own id of a gateway model id (`bedrock/amazon.nova-lite-v1:0` -> `amazon.nova-lite-v1:0`)."""
    return model_id.partition("/")[2]


def stack_bedrock() -> FakeBedrock:
    """Bedrock's fake, checking the gateway's SigV4 signature against this process's AWS
    credentials (moto's, locally): the gateway signs with the same key id, secret and region."""
    return FakeBedrock(access_key_id=os.environ["AWS_ACCESS_KEY_ID"], secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                       region="us-east-1")


def bedrock_provider(bedrock: FakeBedrock) -> dict:
    return {"bedrock": {"type": "bedrock", "aws_region": "us-east-1", "api_base": bedrock.url}}


@contextmanager
def bedrock_gateway(upstream_url: str, bedrock: FakeBedrock,
                    models: dict) -> Iterator[tuple[Stack, str, anthropic.Anthropic]]:
    """`family_gateway` with Bedrock's fake as its only other provider, the fake's records and
    injected failures cleared before and after (a module shares one fake)."""
    bedrock.clear()
    bedrock.clear_faults()
    bedrock.cache_read = False
    with family_gateway(upstream_url, bedrock_provider(bedrock), models) as running:
        yield running
    bedrock.clear_faults()


def start_family_fakes(stack: ExitStack) -> FamilyFakes:
    """Every family's fake but Anthropic's and OpenAI's (fake_upstream serves those), with
    its entries and models; the fakes stop when `stack` closes. Bedrock checks the SigV4 signature
    against this process's AWS credentials (moto's, locally), as the gateway signs with them."""
    bedrock = stack.enter_context(stack_bedrock())
    gemini = stack.enter_context(FakeGemini(api_key=GEMINI_TEST_KEY))
    azure = stack.enter_context(FakeAzure(api_key=AZURE_TEST_KEY, api_versions={AZURE_API_VERSION},
                                          deployments={"prod-chat"}))
    # Its service account's token_uri is the fake's own token endpoint (a fresh RSA key each start).
    vertex = stack.enter_context(FakeVertex(project="fake-project", location="us-east5"))
    providers = {**bedrock_provider(bedrock),
                 "gemini": {"api_key": GEMINI_TEST_KEY, "api_base": gemini.url},
                 "azure": {"type": "azure", "api_key": AZURE_TEST_KEY, "api_base": azure.url,
                           "api_version": AZURE_API_VERSION},
                 "vertex": {"type": "vertex_ai", "vertex_project": vertex.project, "vertex_location": vertex.location,
                            "credentials": vertex.service_account, "api_base": vertex.url}}
    return FamilyFakes(providers, {**BEDROCK_MODELS, **GEMINI_MODELS, **AZURE_MODELS, **VERTEX_MODELS},
                       {"bedrock": bedrock, "gemini": gemini, "azure": azure, "vertex": vertex})


@contextmanager
def family_gateway(upstream_url: str, providers: dict, models: dict) -> Iterator[tuple[Stack, str, anthropic.Anthropic]]:
    """A gateway serving Anthropic's fake (DIRECT_CLAUDE, for fallbacks) and `providers`:
    (its stack, a key, the official SDK pointed at it with no retries of its own)."""
    stack = new_stack(upstream_url)
    stack.put_providers({"providers": {"anthropic": {"api_key": ANTHROPIC_TEST_KEY, "api_base": upstream_url},
                                       **providers},
                         "models": {DIRECT_CLAUDE: {}, **models}})
    with serve(stack) as server:
        key = stack.add_key(name="families")
        yield stack, key, anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0, timeout=20)
