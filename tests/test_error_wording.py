"""A translated provider's refusal reaches the client in Anthropic's words, the provider's after.

Clients recover from some refusals by matching status 400 and Anthropic's
wording (Claude Code compacts a prompt too long, lowers `max_tokens`, drops an
image or a PDF, strips thinking, stops sending structured outputs or effort).
Each provider below answers with its own real error body (OpenAI's, Azure's,
Gemini's through litellm), and the SDK sees a 400 whose message starts with
the words an Anthropic client matches.
"""

from __future__ import annotations

import re
from contextlib import ExitStack

import anthropic
import pytest

from handler.providers.error_wording import reword
from tests.support.family_fakes import family_gateway, start_family_fakes
from tests.support.stack import OPENAI_TEST_KEY

GPT = "openai/gpt-4o-mini"
AZURE = "azure/prod-chat"
GEMINI = "gemini/gemini-2.5-flash"
LONG = " ".join(["word"] * 200)


@pytest.fixture(scope="module")
def families(moto_endpoint):
    with ExitStack() as stack:
        yield start_family_fakes(stack)


@pytest.fixture
def client(moto_endpoint, fake, families):
    providers = {**families.providers, "openai": {"api_key": OPENAI_TEST_KEY, "api_base": fake.url + "/v1"}}
    for family_fake in families.fakes.values():
        family_fake.clear_faults()
    with family_gateway(fake.url, providers, {**families.models, GPT: {}}) as (_, _, sdk):
        yield sdk
    for family_fake in families.fakes.values():
        family_fake.clear_faults()


def refusal(client, model: str, **request) -> anthropic.BadRequestError:
    arguments = {"max_tokens": 100, "messages": [{"role": "user", "content": LONG}], **request}
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=model, **arguments)
    return caught.value


@pytest.mark.parametrize("model, upstream, name", [
    (GPT, "openai", "gpt-4o-mini"), (AZURE, "azure", "prod-chat"), (GEMINI, "gemini", "gemini-2.5-flash")])
def test_a_prompt_over_the_window_is_prompt_is_too_long(client, fake, families, model, upstream, name):
    {"openai": fake, **families.fakes}[upstream].context_windows[name] = 50
    error = refusal(client, model)
    message = error.body["error"]["message"]
    assert re.match(r"prompt is too long: \d+ tokens > 50 maximum", message), \
        f"Claude Code would not recognise the prompt as too long (it compacts on this): {message}"
    assert "50" in message.partition("The provider said: ")[2], "the provider's own detail was lost"
    assert error.response.headers["x-should-retry"] == "false"


def test_openais_real_context_length_body_is_worded_as_anthropics(client, fake):
    fake.fail("gpt-4o-mini", status=400, body={"error": {
        "message": "This model's maximum context length is 128000 tokens. However, your messages resulted in "
                   "130000 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}})
    message = refusal(client, GPT).body["error"]["message"]
    assert message.startswith("prompt is too long: 130000 tokens > 128000 maximum. The provider said: "
                              "This model's maximum context length is 128000 tokens."), message


@pytest.mark.parametrize("model, upstream, name", [(GPT, "openai", "gpt-4o-mini"), (AZURE, "azure", "prod-chat")])
def test_max_tokens_over_the_window_is_worded_as_anthropics(client, fake, families, model, upstream, name):
    {"openai": fake, **families.fakes}[upstream].context_windows[name] = 300
    message = refusal(client, model, max_tokens=500).body["error"]["message"]
    assert re.match(r"input length and `max_tokens` exceed context limit: \d+ \+ 500 > 300", message), \
        f"Claude Code would not lower max_tokens on this: {message}"


def test_a_too_long_prompt_falls_back_to_a_larger_model(client, fake):
    fake.context_windows["gpt-4o-mini"] = 50
    message = client.messages.create(model=GPT, max_tokens=100, messages=[{"role": "user", "content": LONG}],
                                     extra_body={"fallbacks": ["anthropic/claude-sonnet-4-5"]})
    assert message.model == "anthropic/claude-sonnet-4-5"


# Each provider's real refusal, as its API words it.
OPENAI_REFUSALS = {
    "image": ({"message": "You uploaded an unsupported image. Please make sure your image has of one the following "
                          "formats: ['png', 'jpeg', 'gif', 'webp'].", "type": "invalid_request_error", "param": None,
               "code": "invalid_image_format"}, "Could not process image"),
    "document": ({"message": "Invalid file data: 'messages[1].content[0].file.file_data'. Expected a base64-encoded "
                             "data URL with an application/pdf MIME type", "type": "invalid_request_error",
                  "param": "messages[1].content[0].file.file_data", "code": "invalid_value"}, "Could not process PDF"),
    "structured outputs": ({"message": "Invalid parameter: 'response_format' of type 'json_schema' is not supported "
                                       "with this model.", "type": "invalid_request_error", "param": None,
                            "code": None}, "output_config.format: Extra inputs are not permitted"),
    "effort": ({"message": "Unrecognized request argument supplied: reasoning_effort", "type": "invalid_request_error",
                "param": None, "code": None}, "This model does not support the effort parameter."),
}


@pytest.mark.parametrize("kind", sorted(OPENAI_REFUSALS))
def test_an_openai_refusal_clients_recover_from_is_worded_as_anthropics(client, fake, kind):
    error, words = OPENAI_REFUSALS[kind]
    fake.fail("gpt-4o-mini", status=400, body={"error": error})
    message = refusal(client, GPT).body["error"]["message"]
    assert message.startswith(words), f"a client would not recognise the {kind} refusal: {message}"
    assert error["message"] in message, "the provider's own detail was lost"


def test_an_invalid_thought_signature_is_an_invalid_thinking_signature(client, families):
    families.fakes["gemini"].error("gemini-2.5-flash", "INVALID_ARGUMENT", "Corrupted thought signature.")
    message = refusal(client, GEMINI).body["error"]["message"]
    assert message.startswith("Invalid `signature` in `thinking` block"), \
        f"Claude Code would not strip thinking and retry: {message}"


def test_any_other_refusal_keeps_the_providers_words(client, fake):
    fake.fail("gpt-4o-mini", status=400, body={"error": {"message": "Invalid 'temperature': decimal above maximum "
                                                                    "value.", "type": "invalid_request_error"}})
    assert refusal(client, GPT).body["error"]["message"] == "Invalid 'temperature': decimal above maximum value."


@pytest.mark.parametrize("said, words", [
    ("'max_tokens' or 'max_completion_tokens' is too large: 2000. This model's maximum context length is 4096 "
     "tokens and your request has 3000 input tokens (2000 > 4096 - 3000).",
     "input length and `max_tokens` exceed context limit: 3000 + 2000 > 4096"),  # vLLM
    ("prompt is too long: 210000 tokens > 200000 maximum", "prompt is too long: 210000 tokens > 200000 maximum"),
    ("Input is too long for requested model.", "prompt is too long. The provider said: Input is too long"),  # Bedrock
])
def test_the_table_reads_other_servers_words(said, words):
    worded = reword(said)
    assert worded is not None and worded.message.startswith(words) and worded.context_window


def test_an_anthropic_type_providers_other_refusals_keep_its_own_words(client, fake):
    said = "output_config.format.schema: json_schema keyword 'patternProperties' is not supported"
    fake.fail("claude-sonnet-4-5", status=400, body={"type": "error", "error": {
        "type": "invalid_request_error", "message": said}})
    assert refusal(client, "anthropic/claude-sonnet-4-5").body["error"]["message"] == said


def test_claude_on_bedrock_input_too_long_is_prompt_is_too_long_and_falls_back(client, fake, families):
    bedrock_claude = "bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0"
    families.fakes["bedrock"].error("anthropic.claude-sonnet-4-5-20250929-v1:0", "ValidationException",
                                    "Input is too long for requested model.", times=2)
    message = refusal(client, bedrock_claude).body["error"]["message"]
    assert message.startswith("prompt is too long") and "Input is too long for requested model." in message
    answered = client.messages.create(model=bedrock_claude, max_tokens=100, messages=[{"role": "user", "content": "hi"}],
                                      extra_body={"fallbacks": ["anthropic/claude-sonnet-4-5"]})
    assert answered.model == "anthropic/claude-sonnet-4-5", "a context window too small did not fall back"
