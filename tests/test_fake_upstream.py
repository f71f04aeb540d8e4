"""Checks the fake upstream itself over real HTTP, so gateway e2e failures can't be blamed on it."""

import hashlib
import json

import httpx
import pytest

from tests.support.fake_upstream import FakeUpstream

MODEL = "claude-test"
TOOLS = [{"name": "search", "description": "d", "input_schema": {"type": "object"}}]


@pytest.fixture(scope="module")
def server():
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def fake(server):
    server.clear()
    server.clear_faults()
    return server


@pytest.fixture
def client(fake):
    # What the providers' SDKs send on every call: OpenAI's Bearer key, Anthropic's key and version.
    headers = {"authorization": "Bearer k", "x-api-key": "k", "anthropic-version": "2023-06-01"}
    with httpx.Client(base_url=fake.url, timeout=5, headers=headers) as client:
        yield client


def msg(text="hi there", **extra):
    return {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": text}], **extra}


def events(resp):
    """(event name or None, parsed data) for each SSE frame."""
    out, name = [], None
    for line in resp.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            out.append((name, line[6:] if line[6:] == "[DONE]" else json.loads(line[6:])))
            name = None
    return out


def test_anthropic_text_and_recording(fake, client):
    r = client.post("/v1/messages", json=msg(), headers={"X-Api-Key": "k"})
    body = r.json()
    assert r.status_code == 200 and body["id"].startswith("msg_fake_") and body["model"] == MODEL
    assert body["content"] == [{"type": "text", "text": f"Hello from {MODEL}: hi there"}]
    assert body["stop_reason"] == "end_turn" and body["stop_sequence"] is None
    assert body["usage"] == {"input_tokens": 2, "output_tokens": 5,
                             "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    rec = fake.last("/v1/messages")
    assert rec.method == "POST" and rec.headers["x-api-key"] == "k" and rec.body["model"] == MODEL
    assert fake.count(MODEL) == 1 and client.get("/health").status_code == 200
    assert client.get("/nope").status_code == 404


def test_anthropic_stream_event_order(client):
    with client.stream("POST", "/v1/messages", json=msg("one two three four five", stream=True)) as r:
        evs = events(r)
    names = [n for n, _ in evs]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"} and len(names[3:-3]) >= 2
    text = "".join(d["delta"]["text"] for n, d in evs if n == "content_block_delta")
    assert text == f"Hello from {MODEL}: one two three four five"
    assert evs[0][1]["message"]["usage"]["output_tokens"] == 1 and evs[0][1]["message"]["content"] == []
    assert evs[-2][1] == {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                          "usage": {"output_tokens": 8}}


def test_tool_use_then_tool_result(client):
    body = client.post("/v1/messages", json=msg(tools=TOOLS)).json()
    text, call = body["content"]
    assert text == {"type": "text", "text": "Calling search."} and body["stop_reason"] == "tool_use"
    assert call["type"] == "tool_use" and call["id"].startswith("toolu_fake_")
    assert call["input"] == {"query": "hi there"}
    with client.stream("POST", "/v1/messages", json=msg(tools=TOOLS, stream=True)) as r:
        frags = [d["delta"]["partial_json"] for n, d in events(r) if n == "content_block_delta" and d["index"] == 1]
    assert len(frags) >= 2 and json.loads("".join(frags)) == {"query": "hi there"}
    follow = msg(tools=TOOLS)
    follow["messages"] += [{"role": "assistant", "content": [call]}, {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": call["id"], "content": [{"type": "text", "text": "42"}]}]}]
    body = client.post("/v1/messages", json=follow).json()
    assert body["content"] == [{"type": "text", "text": "Tool said: 42"}] and body["stop_reason"] == "end_turn"


def test_thinking_signature(client):
    body = client.post("/v1/messages", json=msg(thinking={"type": "enabled", "budget_tokens": 1024})).json()
    thinking = "Let me think about: hi there"
    sig = "sig_fake_" + hashlib.sha256(thinking.encode()).hexdigest()[:32]
    assert body["content"][0] == {"type": "thinking", "thinking": thinking, "signature": sig}
    with client.stream("POST", "/v1/messages", json=msg(thinking={"type": "enabled"}, stream=True)) as r:
        deltas = [d["delta"] for n, d in events(r) if n == "content_block_delta" and d["index"] == 0]
    assert "".join(d.get("thinking", "") for d in deltas) == thinking
    assert deltas[-1] == {"type": "signature_delta", "signature": sig}


def test_stop_sequence_max_tokens_and_cache(client):
    body = client.post("/v1/messages", json=msg(stop_sequences=["there"])).json()
    assert body["content"][0]["text"] == f"Hello from {MODEL}: hi "
    assert (body["stop_reason"], body["stop_sequence"]) == ("stop_sequence", "there")
    body = client.post("/v1/messages", json=msg(max_tokens=2)).json()
    assert body["content"][0]["text"] == "Hello from" and body["stop_reason"] == "max_tokens"
    cached = msg("a b c d", system=[{"type": "text", "text": "x y", "cache_control": {"type": "ephemeral"}}])
    usage = client.post("/v1/messages", json=cached).json()["usage"]
    assert (usage["input_tokens"], usage["cache_creation_input_tokens"], usage["cache_read_input_tokens"]) == (3, 3, 0)
    usage = client.post("/v1/messages", json=cached, headers={"x-fake-cache": "read"}).json()["usage"]
    assert (usage["cache_creation_input_tokens"], usage["cache_read_input_tokens"]) == (0, 3)


def test_openai_stream_with_usage_and_tools(client):
    req = msg(stream=True, stream_options={"include_usage": True})
    with client.stream("POST", "/v1/chat/completions", json=req) as r:
        chunks = [d for _, d in events(r)]
    assert chunks[-1] == "[DONE]" and chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-2]["choices"] == [] and chunks[-2]["usage"]["completion_tokens"] == 5
    assert chunks[-3]["choices"][0]["finish_reason"] == "stop"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-2]) == f"Hello from {MODEL}: hi there"
    body = client.post("/chat/completions", json=msg(max_completion_tokens=50, tools=[
        {"type": "function", "function": {"name": "f", "parameters": {}}}])).json()
    call = body["choices"][0]["message"]["tool_calls"][0]
    assert body["id"].startswith("chatcmpl-fake-") and body["choices"][0]["finish_reason"] == "tool_calls"
    assert call["id"].startswith("call_fake_") and json.loads(call["function"]["arguments"]) == {"query": "hi there"}


def test_fail_with_status_and_headers(fake, client):
    fake.fail(MODEL, status=529, headers={"retry-after": "7"})
    r = client.post("/v1/messages", json=msg())
    assert r.status_code == 529 and r.headers["retry-after"] == "7"
    assert r.json() == {"type": "error", "error": {"type": "overloaded_error", "message": "fake failure"}}
    assert client.post("/v1/messages", json=msg()).status_code == 200
    client.post("/_fake/faults", json={"model": "*", "action": "fail", "status": 429})
    r = client.post("/v1/chat/completions", json=msg())
    assert r.status_code == 429 and r.json()["error"]["message"] == "fake failure"
    assert len(client.get("/_fake/requests").json()) == fake.count() == 3


def test_reset_connection_raises_transport_error(fake, client):
    fake.reset_connection(MODEL)
    with pytest.raises(httpx.TransportError):
        client.post("/v1/messages", json=msg())
    assert client.post("/v1/messages", json=msg()).status_code == 200


def test_cut_stream_truncates(fake, client):
    fake.cut_stream(MODEL, after_events=3)
    got = []
    with pytest.raises(httpx.TransportError):
        with client.stream("POST", "/v1/messages", json=msg(stream=True)) as r:
            got.extend(line for line in r.iter_lines() if line.startswith("event: "))
    assert got == ["event: message_start", "event: ping", "event: content_block_start"]
