"""Google Vertex AI end to end: the official anthropic SDK, the gateway (its own OAuth token
exchange; Claude by rawPredict, Gemini by Vertex's OpenAI-compatible endpoint through
litellm), the fake Vertex AI with its token endpoint."""

from __future__ import annotations

import asyncio

import anthropic
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from handler.providers import google_oauth
from handler.protocol.errors import GatewayError
from tests.support.fake_vertex import FakeVertex, new_rsa_key, pem_of
from tests.support.family_checks import (
    PDF_DOCUMENT, ask, assert_anthropic_falls_back_to, assert_error_in_anthropics_terms,
    assert_output_config_reaches_claude_as_sent, assert_signed_thinking_round_trips,
    assert_prompt_caching_is_metered_write_then_read, assert_tool_result_round_trips, google_errors,
)
from tests.support.family_fakes import DIRECT_CLAUDE, family_gateway

CLAUDE = "vertex/claude-sonnet-4-5@20250929"
GEMINI = "vertex/gemini-2.5-flash"


@pytest.fixture(scope="module")
def vertex():
    with FakeVertex(project="proj-1", location="us-east5") as fake:
        yield fake


def entry(vertex, **changes):
    return {"type": "vertex_ai", "vertex_project": vertex.project, "vertex_location": vertex.location,
            "credentials": vertex.service_account, "api_base": vertex.url, **changes}


@pytest.fixture
def gateway(moto_endpoint, fake, vertex):
    vertex.clear()
    vertex.clear_faults()
    vertex.token_lifetime = 3600
    vertex.cache_read = False
    google_oauth.forget_tokens()
    with family_gateway(fake.url, {"vertex": entry(vertex)}, {CLAUDE: {}, GEMINI: {}}) as running:
        yield running
    vertex.clear_faults()


# --------------------------------------------------------------------------- RS256 and the token

@pytest.mark.parametrize("pkcs8", [True, False], ids=["pkcs8", "pkcs1"])
def test_rs256_signatures_are_byte_for_byte_those_of_cryptography(pkcs8):
    key = new_rsa_key()
    message = b"header.claims"
    ours = google_oauth.sign_rs256(google_oauth.parse_private_key(pem_of(key, pkcs8)), message)
    # PKCS#1 v1.5 is deterministic: the known-good implementation's signature is the vector.
    assert ours == key.sign(message, padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize("pem", [
    "not a key",
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n",
    "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqGSM49\n-----END EC PRIVATE KEY-----",
], ids=["not-pem", "truncated", "ec-key"])
def test_an_unusable_private_key_is_refused_without_quoting_it(pem):
    with pytest.raises(google_oauth.UnusableKey) as raised:
        google_oauth.parse_private_key(pem)
    assert "MII" not in str(raised.value) and "MHc" not in str(raised.value)


def test_a_token_is_exchanged_once_for_many_concurrent_requests_and_again_after_a_restore(vertex):
    vertex.clear()
    vertex.token_lifetime = 3600
    google_oauth.forget_tokens()

    async def many():
        return await asyncio.gather(*(google_oauth.access_token(vertex.service_account) for _ in range(20)))

    tokens = asyncio.run(many())
    assert len(set(tokens)) == 1 and vertex.exchanges == 1, "one exchange per token lifetime"
    assert asyncio.run(many())[0] == tokens[0] and vertex.exchanges == 1
    from handler.runtime import snapstart

    snapstart.forget_process_state()  # a SnapStart restore: the snapshot's token may be long expired
    assert asyncio.run(many())[0] != tokens[0] and vertex.exchanges == 2


def test_concurrent_requests_share_one_failed_exchange_rather_than_retrying_it_in_turn(vertex):
    vertex.clear()
    google_oauth.forget_tokens()
    vertex.fail_token_exchange(times=1)

    async def many():
        return await asyncio.gather(*(google_oauth.access_token(vertex.service_account) for _ in range(10)),
                                    return_exceptions=True)

    results = asyncio.run(many())
    assert all(isinstance(r, GatewayError) and r.status == 502 for r in results), results
    assert vertex.exchanges == 1, "the waiters share the exchange in flight and its failure"
    assert asyncio.run(google_oauth.access_token(vertex.service_account)).startswith("ya29.fake-")


def test_a_token_about_to_expire_is_replaced_before_it_does(vertex):
    vertex.clear()
    google_oauth.forget_tokens()
    vertex.token_lifetime = google_oauth.REFRESH_MARGIN - 1
    first = asyncio.run(google_oauth.access_token(vertex.service_account))
    assert asyncio.run(google_oauth.access_token(vertex.service_account)) != first and vertex.exchanges == 2
    vertex.token_lifetime = 3600


# --------------------------------------------------------------------------- Claude on Vertex

def test_claude_on_vertex_answers_and_streams_metered_to_the_token(gateway, vertex):
    stack, key, client = gateway
    message = client.messages.create(model=CLAUDE, max_tokens=50, messages=ask(), metadata={"user_id": "u-1"})
    assert message.model == CLAUDE and message.content[0].text.endswith(": hello there")
    sent = vertex.last()
    assert sent.path == "/v1/projects/proj-1/locations/us-east5/publishers/anthropic/models/" \
                        "claude-sonnet-4-5@20250929:rawPredict"
    assert sent.headers["authorization"].startswith("Bearer ya29.fake-")
    assert sent.body["anthropic_version"] == "vertex-2023-10-16" and "model" not in sent.body
    assert sent.body["metadata"] == {"user_id": "u-1"}, "the caller's fields go on as sent"
    with client.messages.stream(model=CLAUDE, max_tokens=50, messages=ask()) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert final.content[0].text == message.content[0].text
    assert vertex.last().path.endswith(":streamRawPredict") and vertex.last().body["stream"] is True
    assert vertex.exchanges == 1, "both calls used the one token"
    told = vertex.reported_totals()
    month = stack.month(key, requests=2)
    assert (month["input_tokens"], month["output_tokens"]) == (told["input_tokens"], told["output_tokens"])
    assert month["cost_usd"] > 0, "Claude on Vertex must be priced from litellm's price map"


@pytest.mark.parametrize("model", [CLAUDE, GEMINI])
def test_a_tool_result_round_trips_through_vertex(gateway, model):
    _, _, client = gateway
    assert_tool_result_round_trips(client, model)


def test_signed_thinking_round_trips_through_claude_on_vertex(gateway, vertex):
    _, _, client = gateway
    assert_signed_thinking_round_trips(client, CLAUDE, vertex)


def test_prompt_caching_on_claude_on_vertex_is_metered_write_and_read(gateway, vertex):
    stack, key, client = gateway
    assert_prompt_caching_is_metered_write_then_read(stack, key, client, CLAUDE, vertex)


def test_a_pdf_reaches_claude_on_vertex_as_the_caller_sent_it(gateway, vertex):
    _, _, client = gateway
    content = [PDF_DOCUMENT, {"type": "text", "text": "summarise this"}]
    with client.messages.stream(model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": content}]) as stream:
        assert stream.get_final_message().content[0].text.endswith(": summarise this")
    assert vertex.last().body["messages"][0]["content"] == content, "rawPredict takes Anthropic's document block"


def test_messages_parse_on_claude_on_vertex_sends_output_config_as_rawpredict_takes_it(gateway, vertex):
    """Vertex AI takes Claude's `output_config.format` on rawPredict (Vertex AI, "Structured
    outputs with Anthropic Claude models"; an organization policy must allow the feature)."""
    _, _, client = gateway
    assert_output_config_reaches_claude_as_sent(client, CLAUDE, vertex)


def test_only_the_betas_vertex_takes_are_sent_there_and_the_others_are_named(gateway, vertex):
    _, _, client = gateway
    raw = client.messages.with_raw_response.create(
        model=CLAUDE, max_tokens=50, messages=ask(),
        extra_headers={"anthropic-beta": "claude-code-20250219,files-api-2025-04-14"})
    assert vertex.last().headers.get("anthropic-beta") == "claude-code-20250219"
    assert raw.headers.get("x-edenai-dropped-fields") == "anthropic_beta.files-api-2025-04-14", \
        "a caller must be told which of its betas Vertex was not sent"


def test_diagnostics_which_vertex_refuses_is_left_out_and_named_and_the_rest_goes_as_sent(gateway, vertex):
    _, _, client = gateway
    raw = client.messages.with_raw_response.create(model=CLAUDE, max_tokens=50, messages=ask(),
                                                   diagnostics={"previous_message_id": "msg_01"},
                                                   cache_control={"type": "ephemeral"}, inference_geo="us")
    assert raw.parse().content[0].text.endswith(": hello there"), \
        "Vertex answers 400 'diagnostics: Extra inputs are not permitted': the gateway must not send it"
    sent = vertex.last().body
    assert "diagnostics" not in sent
    assert sent["cache_control"] == {"type": "ephemeral"} and sent["inference_geo"] == "us"
    assert raw.headers.get("x-edenai-dropped-fields") == "diagnostics"


@google_errors
@pytest.mark.parametrize("model", [CLAUDE, GEMINI])
def test_googles_errors_reach_the_caller_in_anthropics_terms(gateway, vertex, model, status, code, error_type):
    _, _, client = gateway
    vertex.error(model.partition("/")[2], status, f"Google says {status}")
    assert_error_in_anthropics_terms(client, model, status, code, error_type)


def test_anthropic_falls_back_to_claude_on_vertex(gateway, fake):
    _, _, client = gateway
    assert_anthropic_falls_back_to(client, fake, CLAUDE)


def test_anthropic_falls_back_to_gemini_on_vertex(gateway, fake):
    _, _, client = gateway
    assert_anthropic_falls_back_to(client, fake, GEMINI)


@pytest.mark.parametrize("model", [CLAUDE, GEMINI])
def test_a_refused_token_is_forgotten_and_the_next_request_exchanges_a_new_one(gateway, vertex, model):
    _, _, client = gateway
    client.messages.create(model=model, max_tokens=50, messages=ask())
    vertex.revoke_tokens()
    with pytest.raises(anthropic.APIStatusError) as raised:
        client.messages.create(model=model, max_tokens=50, messages=ask())
    assert raised.value.status_code == 502, "Vertex refusing the gateway's token is not the caller's fault"
    assert "ya29." not in raised.value.body["error"]["message"], "the token is a credential"
    assert client.messages.create(model=model, max_tokens=50, messages=ask()).content
    assert vertex.exchanges == 2


def test_a_failed_token_exchange_is_a_502_that_never_shows_the_key(gateway, vertex):
    _, _, client = gateway
    vertex.fail_token_exchange()
    with pytest.raises(anthropic.APIStatusError) as raised:
        client.messages.create(model=CLAUDE, max_tokens=50, messages=ask())
    assert raised.value.status_code == 502
    message = raised.value.body["error"]["message"]
    assert "token exchange failed: fake: account disabled" in message
    assert "PRIVATE KEY" not in message and vertex.service_account["private_key"][40:80] not in message


def test_count_tokens_asks_vertex_for_claude_and_for_gemini(gateway, vertex):
    _, _, client = gateway
    raw = client.messages.with_raw_response.count_tokens(model=CLAUDE, system="be brief", messages=ask("one two three"))
    assert raw.headers["x-edenai-token-count-method"] == "vertex_count_tokens"
    assert raw.parse().input_tokens == 2 + 3
    sent = vertex.last()
    assert sent.path.endswith("/publishers/anthropic/models/count-tokens:rawPredict")
    assert sent.body["model"] == "claude-sonnet-4-5@20250929"
    raw = client.messages.with_raw_response.count_tokens(model=GEMINI, system="be brief", messages=ask("one two three"))
    assert raw.headers["x-edenai-token-count-method"] == "vertex_count_tokens"
    assert raw.parse().input_tokens == 2 + 3
    assert vertex.last().path.endswith("/publishers/google/models/gemini-2.5-flash:countTokens")
    assert vertex.last().headers["authorization"].startswith("Bearer ya29.fake-")


def test_a_partner_model_on_vertex_goes_to_the_openai_compatible_endpoint_and_counts_locally(
        moto_endpoint, fake, vertex):
    vertex.clear()
    llama = "vertex/meta/llama-3.3-70b-instruct-maas"
    with family_gateway(fake.url, {"vertex": entry(vertex)}, {llama: {}}) as (_, _, client):
        assert client.messages.create(model=llama, max_tokens=50, messages=ask()).content[0].text.endswith("there")
        assert vertex.last().body["model"] == "meta/llama-3.3-70b-instruct-maas"
        raw = client.messages.with_raw_response.count_tokens(model=llama, messages=ask("one two three"))
        assert raw.headers["x-edenai-token-count-method"] == "local_tokenizer" and raw.parse().input_tokens > 0


# --------------------------------------------------------------------------- Gemini on Vertex

def test_gemini_on_vertex_answers_and_streams_metered_to_the_token(gateway, vertex):
    stack, key, client = gateway
    message = client.messages.create(model=GEMINI, max_tokens=50, messages=ask())
    assert message.model == GEMINI and message.content[0].text.endswith(": hello there")
    sent = vertex.last()
    assert sent.path == "/v1/projects/proj-1/locations/us-east5/endpoints/openapi/chat/completions"
    assert sent.body["model"] == "google/gemini-2.5-flash"
    assert sent.headers["authorization"].startswith("Bearer ya29.fake-")
    with client.messages.stream(model=GEMINI, max_tokens=50, messages=ask()) as stream:
        final = stream.get_final_message()
    assert final.content[0].text == message.content[0].text
    told = vertex.reported_totals()
    month = stack.month(key, requests=2)
    assert (month["input_tokens"], month["output_tokens"]) == (told["input_tokens"], told["output_tokens"])
    assert month["cost_usd"] > 0, "Gemini on Vertex must be priced from litellm's price map"


# --------------------------------------------------------------------------- the fake, proven

def test_the_fake_speaks_vertex_as_anthropics_own_vertex_client_expects(vertex):
    """AnthropicVertex (the anthropic SDK's Vertex client) builds the URLs and body itself. This
    SDK release sets its own API version as `anthropic_version` when none is given; Google's
    reference names vertex-2023-10-16, which the fake requires, so the call says it."""
    vertex.clear()
    google_oauth.forget_tokens()
    token = asyncio.run(google_oauth.access_token(vertex.service_account))
    client = anthropic.AnthropicVertex(region=vertex.location, project_id=vertex.project, access_token=token,
                                       base_url=vertex.url + "/v1", max_retries=0)
    version = {"anthropic_version": "vertex-2023-10-16"}
    message = client.messages.create(model="claude-sonnet-4-5@20250929", max_tokens=50, messages=ask(),
                                     extra_body=version)
    assert message.content[0].text.endswith(": hello there")
    with client.messages.stream(model="claude-sonnet-4-5@20250929", max_tokens=50, messages=ask(),
                                extra_body=version) as stream:
        assert stream.get_final_message().content[0].text == message.content[0].text
    count = client.messages.count_tokens(model="claude-sonnet-4-5@20250929", messages=ask("one two"),
                                         extra_body=version)
    assert count.input_tokens == 2
    vertex.error("claude-sonnet-4-5@20250929", "RESOURCE_EXHAUSTED")
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model="claude-sonnet-4-5@20250929", max_tokens=50, messages=ask(), extra_body=version)


def test_the_fake_takes_the_betas_litellms_map_records_vertex_taking_and_refuses_others_and_diagnostics(vertex):
    """Held to its source (litellm's beta map, column vertex_ai) through AnthropicVertex's own call."""
    import json
    from pathlib import Path

    import litellm

    vertex.clear()
    google_oauth.forget_tokens()
    token = asyncio.run(google_oauth.access_token(vertex.service_account))
    client = anthropic.AnthropicVertex(region=vertex.location, project_id=vertex.project, access_token=token,
                                       base_url=vertex.url + "/v1", max_retries=0)
    document = json.loads((Path(litellm.__file__).parent / "anthropic_beta_headers_config.json").read_text())
    taken = sorted({name for name in document["vertex_ai"].values() if name})
    version = {"anthropic_version": "vertex-2023-10-16"}
    client.beta.messages.create(model="claude-sonnet-4-5@20250929", max_tokens=50, messages=ask(),
                                betas=taken, extra_body=version)
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.beta.messages.create(model="claude-sonnet-4-5@20250929", max_tokens=50, messages=ask(),
                                    betas=["files-api-2025-04-14"], extra_body=version)
    assert raised.value.body["error"]["message"] == (
        "Unexpected value(s) `files-api-2025-04-14` for the `anthropic-beta` header. Please consult our "
        "documentation at docs.anthropic.com or try again without the header.")
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(model="claude-sonnet-4-5@20250929", max_tokens=50, messages=ask(),
                               diagnostics={"previous_message_id": None}, extra_body=version)
    assert raised.value.body["error"]["message"] == "diagnostics: Extra inputs are not permitted"


def test_the_fakes_openai_compatible_endpoint_is_what_litellm_parses(vertex):
    import litellm

    vertex.clear()
    google_oauth.forget_tokens()
    token = asyncio.run(google_oauth.access_token(vertex.service_account))
    base = f"{vertex.url}/v1/projects/{vertex.project}/locations/{vertex.location}/endpoints/openapi"
    response = litellm.completion(model="openai/google/gemini-2.5-flash", api_base=base, api_key=token,
                                  messages=ask(), max_tokens=50)
    assert response.choices[0].message.content.endswith(": hello there") and response.usage.total_tokens > 0
    with pytest.raises(litellm.AuthenticationError):
        litellm.completion(model="openai/google/gemini-2.5-flash", api_base=base, api_key="ya29.not-issued",
                           messages=ask(), max_tokens=50, num_retries=0)


def test_a_location_is_its_regional_host_and_global_the_global_one():
    from handler.providers import vertex_api

    call = {"vertex_project": "p", "vertex_location": "europe-west4"}
    assert vertex_api.publisher_url(call, "anthropic") == \
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/p/locations/europe-west4/publishers/anthropic/models"
    assert vertex_api.endpoint({**call, "vertex_location": "global"}) == "https://aiplatform.googleapis.com"


@pytest.mark.parametrize("header", ["x-goog-user-project", "X-Goog-Request-Params"])
def test_a_caller_cannot_set_googles_own_request_headers(gateway, vertex, header):
    """x-goog-user-project would bill another project through the gateway's service account."""
    _, _, client = gateway
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(model=GEMINI, max_tokens=50, messages=ask(),
                               extra_body={"extra_headers": {header: "someone-elses-project"}})
    assert "may not be set by the caller" in raised.value.body["error"]["message"]
