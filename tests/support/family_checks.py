"""What every provider family must do for a client, checked the same way for each.

The family tests (test_bedrock, test_gemini, test_vertex, test_azure) drive
these through the official SDK against the gateway and that family's fake:
one definition of "a tool round trip works", not one per family.
"""

from __future__ import annotations

import base64
import http.server
import threading
from contextlib import contextmanager
from typing import Any, Literal

import anthropic
import pytest
from pydantic import BaseModel

from tests.support.family_fakes import DIRECT_CLAUDE

TOOL = {"name": "lookup", "description": "Look a thing up.",
        "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}}}


def ask(text: str = "hello there") -> list[dict]:
    return [{"role": "user", "content": text}]


def assert_tool_result_round_trips(client: anthropic.Anthropic, model: str) -> None:
    """The model calls the tool with the prompt as its input; the result comes back to it."""
    first = client.messages.create(model=model, max_tokens=50, tools=[TOOL], messages=ask("find cats"))
    call = next(block for block in first.content if block.type == "tool_use")
    assert first.stop_reason == "tool_use" and call.input == {"query": "find cats"}
    second = client.messages.create(model=model, max_tokens=50, tools=[TOOL], messages=[
        *ask("find cats"), {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "three cats"}]}])
    assert second.content[0].text == "Tool said: three cats"


def assert_signed_thinking_round_trips(client: anthropic.Anthropic, model: str, provider_fake) -> None:
    """A signed thinking block the model wrote reaches it again, byte for byte, in the next turn."""
    thinking = {"type": "enabled", "budget_tokens": 1024}
    first = client.messages.create(model=model, max_tokens=2000, thinking=thinking, messages=ask("why"))
    block = first.content[0]
    assert block.type == "thinking" and block.signature.startswith("sig_fake_")
    client.messages.create(model=model, max_tokens=2000, thinking=thinking, messages=[
        *ask("why"), {"role": "assistant", "content": [b.model_dump() for b in first.content]}, *ask("and then?")])
    returned = provider_fake.last().body["messages"][1]["content"][0]
    assert returned == {"type": "thinking", "thinking": block.thinking, "signature": block.signature}


def assert_error_in_anthropics_terms(client: anthropic.Anthropic, model: str, provider_error: str,
                                     status: int, error_type: str) -> None:
    """The provider's named failure reaches the caller as Anthropic's status and type; a 400
    keeps the provider's own words (the fake says "… says <provider_error>")."""
    with pytest.raises(anthropic.APIStatusError) as raised:
        client.messages.create(model=model, max_tokens=50, messages=ask())
    assert raised.value.status_code == status, f"{provider_error} reached the caller as {raised.value.status_code}"
    assert raised.value.body["error"]["type"] == error_type
    if status == 400:
        assert f"says {provider_error}" in raised.value.body["error"]["message"]
    if status in (429, 529):
        assert raised.value.response.headers.get("retry-after"), "a client backs off by retry-after"


def assert_anthropic_falls_back_to(client: anthropic.Anthropic, anthropic_fake, model: str) -> None:
    """Anthropic overloaded: the request's fallback on this family answers it, and says so."""
    anthropic_fake.fail("claude-sonnet-4-5", status=529)
    raw = client.messages.with_raw_response.create(model=DIRECT_CLAUDE, max_tokens=50, messages=ask(),
                                                   extra_body={"fallbacks": [model]})
    assert raw.parse().model == model and raw.headers["x-edenai-model"] == model


# A minimal, well-formed PDF: what a caller attaches as a document block.
PDF = base64.b64encode(b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n").decode()
PDF_DOCUMENT = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}}


class Forecast(BaseModel):
    """What `messages.parse(output_format=...)` asks for: required fields, an enum, a list."""

    city: str
    high_celsius: int
    sunny: bool
    wind: Literal["calm", "breezy", "stormy"]
    hours: list[int]


class _Fetched(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.server.fetched.append(self.path)
        self.send_response(200)
        self.send_header("content-type", "application/pdf")
        self.end_headers()
        self.wfile.write(b"%PDF-1.4 internal report")

    def log_message(self, *args):
        pass


@contextmanager
def internal_host():
    """A host the gateway can reach: `url` serves a PDF, `fetched` lists what was asked of it."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Fetched)
    server.fetched = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# Blocks litellm's translation would drop silently (or, for a URL, fetch from inside the gateway).
LOST_BLOCKS = {
    "text-document": {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "the terms"}},
    "content-document": {"type": "document", "source": {"type": "content",
                                                        "content": [{"type": "text", "text": "the terms"}]}},
    "file-document": {"type": "document", "source": {"type": "file", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"}},
    "document-context": {**PDF_DOCUMENT, "context": "the quarterly report"},
    "document-citations": {**PDF_DOCUMENT, "citations": {"enabled": True}},
    "search-result": {"type": "search_result", "source": "https://docs.example/handbook", "title": "Handbook",
                      "content": [{"type": "text", "text": "Leave is 25 days."}]},
    "container-upload": {"type": "container_upload", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"},
}


def assert_what_litellm_would_lose_is_refused(client: anthropic.Anthropic, model: str, provider_fake,
                                               block: dict | str) -> None:
    """A block the model's route cannot carry is a 400 naming it, before any call; a URL source
    is never fetched by the gateway (litellm fetched public ones itself, and a failed fetch was a
    502 charged to the provider's health)."""
    with internal_host() as (host, url):
        if isinstance(block, str):  # "document" or "image" from a URL
            block = {"type": block, "source": {"type": "url", "url": f"{url}/internal/{block}"}}
        before = provider_fake.count()
        with pytest.raises(anthropic.BadRequestError) as raised:
            client.messages.create(model=model, max_tokens=50, messages=[
                {"role": "user", "content": [block, {"type": "text", "text": "what does it say"}]}])
        assert host.fetched == [], f"the gateway fetched {host.fetched} for the caller"
    message = raised.value.body["error"]["message"]
    assert "messages.0.content.0" in message and model in message, message
    assert provider_fake.count() == before, "the model must not answer without the caller's block"


def parsed_forecast(client: anthropic.Anthropic, model: str):
    """`messages.parse(output_format=Forecast)` as a client calls it; the SDK must parse the answer."""
    message = client.messages.parse(model=model, max_tokens=500, output_format=Forecast,
                                    messages=ask("Paris tomorrow?"))
    assert isinstance(message.parsed_output, Forecast), f"the SDK could not parse {message.content[0].text!r}"
    return message


def assert_output_config_reaches_claude_as_sent(client: anthropic.Anthropic, model: str, provider_fake) -> None:
    """Claude's platforms take `output_config.format` in Anthropic's body: it goes on as the SDK sent it."""
    assert parsed_forecast(client, model).parsed_output.city == "Paris tomorrow?"
    form = provider_fake.last().body["output_config"]["format"]
    assert form["type"] == "json_schema" and form["schema"]["required"] == Forecast.model_json_schema()["required"]


def tool_returned(block: dict) -> list[dict]:
    """A conversation in which a tool's result holds `block` (Claude Code's Read of a PDF)."""
    return [*ask("read the report"),
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup",
                                               "input": {"query": "report"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                          "content": [{"type": "text", "text": "the report"}, block]}]}]


# Google's errors (Gemini API and Vertex AI) and what a caller must see for each.
google_errors = pytest.mark.parametrize("status, code, error_type", [
    ("RESOURCE_EXHAUSTED", 429, "rate_limit_error"),
    ("UNAVAILABLE", 529, "overloaded_error"),
    ("INVALID_ARGUMENT", 400, "invalid_request_error"),
])
# Every block a translating route loses: URL sources (by kind) and LOST_BLOCKS.
lost_blocks = pytest.mark.parametrize("block", ["document", "image", *LOST_BLOCKS.values()],
                                      ids=["url-document", "url-image", *LOST_BLOCKS])


def assert_prompt_caching_is_metered_write_then_read(stack, key: str, client: anthropic.Anthropic, model: str,
                                                     provider_fake) -> tuple[list[str], Any]:
    """A cached system prompt is written by a streamed request and read by the next; every
    figure the provider reported reaches the key's month. The stream's event types and final
    message are returned, for the caller's own checks."""
    system = [{"type": "text", "text": "you are terse " * 20, "cache_control": {"type": "ephemeral"}}]
    with client.messages.stream(model=model, max_tokens=50, system=system, messages=ask()) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    provider_fake.cache_read = True
    client.messages.create(model=model, max_tokens=50, system=system, messages=ask())
    told = provider_fake.reported_totals()
    assert told["cache_creation_input_tokens"] > 0 and told["cache_read_input_tokens"] > 0
    month = stack.month(key, requests=2)
    for name, total in told.items():
        assert month[name] == total, f"{name}: metered {month[name]}, the provider reported {total}"
    return events, final
