"""The direct routes' upstream call, made without httpx's Request and Response models (issue 27).

The direct routes (Anthropic, Chat Completions, Bedrock, Vertex) hand the gateway's own
transport the request's parts and read the answer's status, raw headers and body
(handler/providers/answer.py).
What a provider sees and what a caller gets must not change with it: the same headers in
the same order as httpx's Request carried, gzip answers decoded, proxies from the
environment still used, and an upstream that goes quiet still timed out.
"""

from __future__ import annotations

import json
import threading
import time

import anthropic
import httpx
import pytest

from handler.providers.call_body import call_body
from tests.support.family_fakes import bedrock_gateway, stack_bedrock
from tests.support.forward_proxy import ForwardProxy
from tests.support.stack import ANTHROPIC_TEST_KEY, OPENAI_TEST_KEY, new_stack, serve

CLAUDE = "anthropic/claude-sonnet-4-5"
GPT = "openai/gpt-4o-mini"
BEDROCK_CLAUDE = "bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "bedrock/amazon.nova-lite-v1:0"
HELLO = [{"role": "user", "content": "hello there"}]
# What each family's call sets itself (Anthropic's Messages API, OpenAI's Chat Completions).
CALL_HEADERS = {
    CLAUDE: {"x-api-key": ANTHROPIC_TEST_KEY, "anthropic-version": "2023-06-01",
             "content-type": "application/json", "accept": "application/json"},
    GPT: {"authorization": f"Bearer {OPENAI_TEST_KEY}", "content-type": "application/json",
          "accept": "application/json"},
}


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_a_provider_sees_the_headers_httpxs_client_would_send_in_their_order(client, fake, model):
    """httpx's client defaults (Accept-Encoding: gzip, deflate; User-Agent...), the call's own
    headers replacing a default of the same name, Host first and Content-Length last."""
    client.messages.create(model=model, max_tokens=20, messages=HELLO)
    [seen] = fake.snapshot()
    sent_body = call_body(seen.body)  # the document as the direct calls write it (compact UTF-8)
    path = seen.path
    expected = httpx.AsyncClient().build_request("POST", f"{fake.url}{path}", headers=CALL_HEADERS[model],
                                                 content=sent_body).headers.raw
    assert [(name.lower(), value) for name, value in seen.raw_headers] == [
        (name.decode().lower(), value.decode()) for name, value in expected], (
        "the provider saw other headers than httpx's client would have sent")


def httpx_models_built(monkeypatch) -> list[str]:
    """The httpx Requests and Responses built from now on, off the main thread (the gateway's
    server thread; the SDK's own are built on the main thread)."""
    built: list[str] = []
    for model_class in (httpx.Request, httpx.Response):
        real = model_class.__init__

        def spy(self, *args, _real=real, _name=model_class.__name__, **kwargs):
            if threading.current_thread() is not threading.main_thread():
                built.append(_name)
            _real(self, *args, **kwargs)

        monkeypatch.setattr(model_class, "__init__", spy)
    return built


def create_and_stream(sdk: anthropic.Anthropic, model: str) -> None:
    sdk.messages.create(model=model, max_tokens=20, messages=HELLO)
    with sdk.messages.stream(model=model, max_tokens=20, messages=HELLO) as stream:
        stream.get_final_message()


def test_the_anthropic_and_chat_completions_calls_build_no_httpx_request_or_response(client, fake, monkeypatch):
    """httpx's models cost CPU on every call (URL parsing, the headers model, the decoders)
    while the routes read a status, two headers and the body."""
    built = httpx_models_built(monkeypatch)
    for model in (CLAUDE, GPT):
        create_and_stream(client, model)
    assert built == [], f"the gateway built httpx models for its upstream calls: {built}"


def test_bedrocks_invoke_model_and_converse_calls_build_no_httpx_request_or_response(moto_endpoint, fake,
                                                                                    monkeypatch):
    """The signed calls go the same way: SigV4's headers, then the gateway's transport."""
    with stack_bedrock() as bedrock, bedrock_gateway(fake.url, bedrock, {BEDROCK_CLAUDE: {}, NOVA: {}}) as running:
        _, _, sdk = running
        built = httpx_models_built(monkeypatch)
        for model in (BEDROCK_CLAUDE, NOVA):
            create_and_stream(sdk, model)
        assert [request.path.rsplit("/", 1)[1] for request in bedrock.snapshot()] == [
            "invoke", "invoke-with-response-stream", "converse", "converse-stream"]
    assert built == [], f"the gateway built httpx models for its Bedrock calls: {built}"


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_a_proxy_from_the_environment_carries_the_providers_calls(moto_endpoint, fake, monkeypatch, model):
    """HTTP_PROXY set for the process: every call to the provider goes through it, answers
    and streams alike (gzip-encoded ones too), as httpx's client does."""
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the SDK's calls to the gateway, and moto's, go direct
        upstream = fake.url.replace("127.0.0.1", "localhost")  # the provider's calls go through the proxy
        stack = new_stack(upstream)
        key = stack.add_key()
        fake.gzip = True
        with serve(stack) as server:
            sdk = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0, timeout=30)
            created = sdk.messages.create(model=model, max_tokens=20, messages=HELLO)
            with sdk.messages.stream(model=model, max_tokens=20, messages=HELLO) as stream:
                streamed = stream.get_final_message()
        forwarded = proxy.forwarded
    assert created.content[0].text == streamed.content[0].text == f"Hello from {model.split('/')[1]}: hello there"
    path = "/v1/messages" if model == CLAUDE else "/v1/chat/completions"
    assert forwarded == [f"POST {upstream}{path}"] * 2, f"the proxy relayed {forwarded}"
    assert fake.count() == 2


def test_a_socks_proxy_from_the_environment_is_set_aside_with_a_warning(moto_endpoint, fake, monkeypatch, caplog):
    """ALL_PROXY=socks5://... needs socksio, which the package does not carry: httpx would refuse
    every call to the provider. The gateway says so once and calls the provider directly."""
    stack = new_stack(fake.url.replace("127.0.0.1", "localhost"))  # the provider's calls would take ALL_PROXY
    key = stack.add_key()
    with caplog.at_level("WARNING", logger="handler.providers.anthropic_api"), serve(stack) as server:
        # made before ALL_PROXY is set: the SDK's own httpx client would refuse it the same way
        sdk = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0, timeout=30)
        monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # moto's calls go direct
        created = sdk.messages.create(model=CLAUDE, max_tokens=20, messages=HELLO)
    assert created.content[0].text.startswith("Hello from"), "the provider answered, directly"
    assert "proxy socks5://... for all:// ignored" in caplog.text


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_a_provider_that_goes_quiet_mid_stream_is_timed_out(moto_endpoint, fake, model):
    """After the first content the attempt's deadline no longer runs: what ends a provider's
    silence then is the read timeout (the attempt's time left), and the caller's stream ends
    with a timeout error event rather than hanging until the provider speaks again."""
    stack = new_stack(fake.url, request_deadline=1.5)
    key = stack.add_key()
    fake.stall_stream(model.split("/")[1], after_events=4, seconds=6.0)
    payload = {"model": model, "max_tokens": 50, "messages": HELLO, "stream": True}
    with serve(stack) as server:
        started = time.monotonic()
        with httpx.stream("POST", f"{server.url}/v3/v1/messages", json=payload, headers={"x-api-key": key},
                          timeout=20) as response:
            assert response.status_code == 200
            text = response.read().decode()
        waited = time.monotonic() - started
        events = [dict(line.split(": ", 1) for line in block.split("\n")) for block in text.strip().split("\n\n")]
        last = (events[-1]["event"], json.loads(events[-1]["data"]).get("error", {}).get("type"))
        assert last == ("error", "timeout_error"), f"the stream ended with {last}, not a timeout error event"
        assert waited < 4.5, f"the caller waited {waited:.1f} s for a provider silent for 6 s (read timeout 1.5 s)"
        sdk = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0, timeout=30)
        assert sdk.messages.create(model=model, max_tokens=10, messages=HELLO).content  # service resumes
