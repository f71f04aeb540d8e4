"""Azure OpenAI end to end: the official anthropic SDK, the gateway (its Chat Completions
route), the fake Azure resource. Models are deployments, priced as their base_model."""

from __future__ import annotations

import anthropic
import pytest

from tests.support.fake_azure import FakeAzure
from handler.providers import price_map
from tests.support.family_checks import ask, assert_tool_result_round_trips
from tests.support.family_fakes import AZURE_API_VERSION, AZURE_TEST_KEY, DIRECT_CLAUDE, family_gateway

AZURE = "azure/prod-chat"


@pytest.fixture(scope="module")
def azure():
    with FakeAzure(api_key=AZURE_TEST_KEY, api_versions={AZURE_API_VERSION}, deployments={"prod-chat"}) as fake:
        yield fake


@pytest.fixture
def gateway(moto_endpoint, fake, azure):
    azure.clear()
    azure.clear_faults()
    providers = {"azure": {"type": "azure", "api_key": AZURE_TEST_KEY, "api_base": azure.url,
                           "api_version": AZURE_API_VERSION}}
    with family_gateway(fake.url, providers, {AZURE: {"base_model": "gpt-4o"}}) as running:
        yield running
    azure.clear_faults()


def test_an_azure_deployment_answers_streams_and_is_priced_as_its_base_model(gateway, azure):
    stack, key, client = gateway
    message = client.messages.create(model=AZURE, max_tokens=50, messages=ask())
    assert message.model == AZURE and message.content[0].text == "Hello from prod-chat: hello there"
    sent = azure.last()
    assert sent.path == f"/openai/deployments/prod-chat/chat/completions?api-version={AZURE_API_VERSION}"
    assert sent.headers["api-key"] == AZURE_TEST_KEY
    with client.messages.stream(model=AZURE, max_tokens=50, messages=ask()) as stream:
        assert stream.get_final_message().content[0].text == "Hello from prod-chat: hello there"
    told = azure.reported_totals()
    month = stack.month(key, requests=2)
    assert (month["input_tokens"], month["output_tokens"]) == (told["input_tokens"], told["output_tokens"])
    gpt4o = price_map.load()["azure/gpt-4o"]
    expected = told["input_tokens"] * gpt4o["input_cost_per_token"] + told["output_tokens"] * gpt4o["output_cost_per_token"]
    assert float(month["cost_usd"]) == pytest.approx(expected), "the deployment must be priced as gpt-4o on Azure"


def test_a_tool_result_round_trips_through_azure(gateway):
    _, _, client = gateway
    assert_tool_result_round_trips(client, AZURE)


def test_azure_rate_limits_reach_the_caller_and_anthropic_falls_back_to_azure(gateway, azure, fake):
    _, _, client = gateway
    azure.fail("prod-chat", status=429, headers={"retry-after": "3"})
    with pytest.raises(anthropic.RateLimitError) as raised:
        client.messages.create(model=AZURE, max_tokens=50, messages=ask())
    assert raised.value.response.headers["retry-after"] == "3"
    fake.fail("claude-sonnet-4-5", status=529)
    raw = client.messages.with_raw_response.create(model=DIRECT_CLAUDE, max_tokens=50, messages=ask(),
                                                   extra_body={"fallbacks": [AZURE]})
    assert raw.parse().model == AZURE


def test_messages_parse_on_an_azure_deployment_returns_a_parsed_object(gateway, azure):
    """Structured outputs reach Azure as its strict JSON-schema response format."""
    from tests.test_structured_output import Forecast

    _, _, client = gateway
    message = client.messages.parse(model=AZURE, max_tokens=500, output_format=Forecast,
                                    messages=[{"role": "user", "content": "Paris tomorrow?"}])
    assert isinstance(message.parsed_output, Forecast) and message.parsed_output.city == "Paris tomorrow?"
    form = azure.last().body["response_format"]
    assert form["type"] == "json_schema" and form["json_schema"]["strict"] is True
    assert form["json_schema"]["schema"]["additionalProperties"] is False


def test_a_pdf_reaches_an_azure_deployment_as_a_file_part(gateway, azure):
    _, _, client = gateway
    pdf = {"type": "document", "title": "report.pdf",
           "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"}}
    message = client.messages.create(model=AZURE, max_tokens=50, messages=[
        {"role": "user", "content": [pdf, {"type": "text", "text": "summarise it"}]}])
    assert message.content[0].text
    [user] = [m for m in azure.last().body["messages"] if m["role"] == "user"]
    assert user["content"][0] == {"type": "file", "file": {
        "filename": "report.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQK"}}
