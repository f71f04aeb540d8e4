"""Fallbacks and @edenai routing end to end, streams included, visible to the caller.

The fake provider fails chosen models in chosen ways; the official SDK sees
either the answer of the model that served (named in `model` and in the
x-edenai-* headers) or one clean Anthropic error.
"""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest

from tests.support.stack import new_stack, serve

CLAUDE = "anthropic/claude-sonnet-4-5"
HAIKU = "anthropic/claude-haiku-4-5"
GPT = "openai/gpt-4o-mini"
GPT4O = "openai/gpt-4o"
TOOL = {"name": "lookup", "description": "Look a thing up.",
        "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}}}


def ask(text="hello"):
    return [{"role": "user", "content": text}]


def upstream_name(model_id):
    return model_id.split("/", 1)[1]


def create(client, model=CLAUDE, fallbacks=(HAIKU, GPT), **body):
    return client.messages.with_raw_response.create(
        model=model, max_tokens=50, messages=body.pop("messages", ask()),
        extra_body={"fallbacks": list(fallbacks), **body.pop("extra_body", {})}, **body)


@pytest.mark.parametrize("fault", [
    lambda fake: fake.fail("claude-sonnet-4-5", status=500),
    lambda fake: fake.fail("claude-sonnet-4-5", status=529),
    lambda fake: fake.fail("claude-sonnet-4-5", status=429),
    lambda fake: fake.fail("claude-sonnet-4-5", status=401),
    lambda fake: fake.fail("claude-sonnet-4-5", status=403),
    lambda fake: fake.reset_connection("claude-sonnet-4-5"),
    lambda fake: fake.malformed("claude-sonnet-4-5", kind="json"),
], ids=["500", "529", "429", "our-credentials-401", "our-credentials-403", "reset", "malformed"])
def test_a_retryable_failure_moves_to_the_next_model(client, fake, fault):
    fault(fake)
    raw = create(client)
    message = raw.parse()
    assert message.model == HAIKU
    assert message.content[0].text.startswith("Hello from claude-haiku-4-5")
    assert raw.headers["x-edenai-model"] == HAIKU
    first, second = raw.headers["x-edenai-attempts"].split(", ")
    assert first.startswith(f"{CLAUDE};status=") and not first.startswith(f"{CLAUDE};status=200")
    assert second.startswith(f"{HAIKU};status=200;ms=")


def test_a_context_window_error_moves_to_the_next_model(client, fake):
    fake.fail("claude-sonnet-4-5", status=400, body={"type": "error", "error": {
        "type": "invalid_request_error", "message": "prompt is too long: 210000 tokens > 200000 maximum"}})
    assert create(client).parse().model == HAIKU


def test_a_bad_request_is_returned_at_once_without_trying_fallbacks(client, fake):
    fake.fail("claude-sonnet-4-5", status=400)
    with pytest.raises(anthropic.BadRequestError) as caught:
        create(client)
    assert fake.count() == 1
    assert caught.value.response.headers["x-edenai-attempts"].startswith(f"{CLAUDE};status=400")


def test_when_every_model_fails_the_caller_gets_the_last_error(client, fake):
    for model in ("claude-sonnet-4-5", "claude-haiku-4-5", "gpt-4o-mini"):
        fake.fail(model, status=503)
    with pytest.raises(anthropic.APIStatusError) as caught:
        create(client)
    assert caught.value.status_code == 502
    assert len(caught.value.response.headers["x-edenai-attempts"].split(", ")) == 3


def test_attempts_share_one_deadline_and_end_in_a_clean_504(moto_endpoint, fake):
    stack = new_stack(fake.url, request_deadline=1.5)
    key = stack.add_key()
    fake.delay("claude-sonnet-4-5", 3.0, times=1)  # hangs past the whole deadline
    with serve(stack) as server:
        client = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0, timeout=20)
        with pytest.raises(anthropic.APIStatusError) as caught:
            create(client, fallbacks=(HAIKU,))
    assert caught.value.status_code == 504
    assert caught.value.body["error"]["type"] == "timeout_error"
    assert fake.count("claude-haiku-4-5") == 0  # no time was left for it


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_one_deadline_covers_a_streams_opening_too(moto_endpoint, fake, model):
    """A provider pacing its events stays under httpx's per-read timeout forever: the request's
    deadline must still end the wait for the first content, well before the stream would have."""
    stack = new_stack(fake.url, request_deadline=1.5)
    key = stack.add_key()
    fake.pace_stream(model.split("/")[1], seconds=2.0)  # no content before 2 s, whole stream ~25 s
    with serve(stack) as server:
        client = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0, timeout=20)
        with pytest.raises(anthropic.APIStatusError) as caught:
            with client.messages.stream(model=model, max_tokens=50, messages=ask()) as stream:
                stream.get_final_message()
        assert caught.value.status_code == 504, "a stream opened past the deadline was answered 200"
        assert caught.value.body["error"]["type"] == "timeout_error"
        [record] = stack.records(key, 1)
        assert record["status"] == "error" and record["attempts"][0]["status"] == 504
        assert client.messages.create(model=model, max_tokens=10, messages=ask()).content  # service resumes


def test_a_fallback_to_another_provider_drops_content_it_cannot_take(client, fake):
    history = [*ask("why?"),
               {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig_x"},
                                                 {"type": "text", "text": "Because."}]},
               *ask("and then?")]
    fake.fail("claude-sonnet-4-5", status=500)
    message = create(client, fallbacks=(GPT,), messages=history).parse()
    assert message.model == GPT
    sent = fake.last().body["messages"]
    assert "thinking" not in json.dumps(sent) and "Because." in json.dumps(sent)


def stream_events(server, key, **payload):
    body = {"max_tokens": 50, "messages": ask(), "stream": True, **payload}
    response = httpx.post(f"{server.url}/v3/v1/messages", json=body, headers={"x-api-key": key}, timeout=20)
    events = []
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        for block in response.text.strip().split("\n\n"):
            lines = dict(line.split(": ", 1) for line in block.split("\n"))
            events.append((lines["event"], json.loads(lines["data"])))
    return response, events


@pytest.mark.parametrize("fault", [
    lambda fake: fake.fail("claude-sonnet-4-5", status=500),
    lambda fake: fake.reset_connection("claude-sonnet-4-5"),
    lambda fake: fake.cut_stream("claude-sonnet-4-5", after_events=3),  # after message_start, before content
], ids=["500", "reset-before-first-byte", "cut-before-content"])
def test_a_stream_falls_back_invisibly_before_its_first_content(server, api_key, fake, fault):
    fault(fake)
    response, events = stream_events(server, api_key, model=CLAUDE, fallbacks=[HAIKU])
    assert response.status_code == 200
    names = [name for name, _ in events]
    assert names.count("message_start") == 1 and "error" not in names
    assert events[0][1]["message"]["model"] == HAIKU
    assert names[-1] == "message_stop"
    text = "".join(d["delta"].get("text", "") for n, d in events if n == "content_block_delta")
    assert text.startswith("Hello from claude-haiku-4-5")
    assert response.headers["x-edenai-model"] == HAIKU


def test_the_sdk_sees_one_clean_stream_from_the_second_model(client, fake):
    fake.reset_connection("claude-sonnet-4-5")
    with client.messages.stream(model=CLAUDE, max_tokens=50, messages=ask(),
                                extra_body={"fallbacks": [GPT]}) as stream:
        message = stream.get_final_message()
    assert message.model == GPT
    assert message.content[0].text == "Hello from gpt-4o-mini: hello"


def test_a_stream_that_fails_on_every_model_before_content_is_a_real_http_error(server, api_key, fake):
    fake.fail("claude-sonnet-4-5", status=529)
    fake.fail("claude-haiku-4-5", status=500)
    response, _ = stream_events(server, api_key, model=CLAUDE, fallbacks=[HAIKU])
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["type"] == "error"


def test_a_stream_cut_after_content_ends_with_an_error_event_and_no_fallback(server, api_key, fake):
    fake.cut_stream("claude-sonnet-4-5", after_events=5)
    response, events = stream_events(server, api_key, model=CLAUDE, fallbacks=[HAIKU])
    assert response.status_code == 200
    assert events[-1][0] == "error"
    assert all(d["message"]["model"] == CLAUDE for n, d in events if n == "message_start")
    assert fake.count("claude-haiku-4-5") == 0


# ------------------------------------------------------------------ @edenai

def test_edenai_routes_to_the_cheapest_fit_model_and_says_why(client, fake):
    raw = client.messages.with_raw_response.create(model="@edenai", max_tokens=50, messages=ask())
    message = raw.parse()
    assert message.model == GPT  # gpt-4o-mini is the cheapest of the test catalogue
    assert raw.headers["x-edenai-route"].startswith(f"policy=cheapest; chose {GPT} (estimated $")
    assert raw.headers["x-edenai-model"] == GPT


def test_edenai_with_thinking_only_considers_reasoning_models(client, fake):
    message = client.messages.create(model="@edenai", max_tokens=2000, messages=ask(),
                                     thinking={"type": "enabled", "budget_tokens": 1024})
    assert message.model == HAIKU  # the cheapest model that supports extended thinking
    assert message.content[0].type == "thinking"


def test_edenai_keeps_to_router_candidates(client, fake):
    message = client.messages.create(model="@edenai", max_tokens=50, messages=ask(),
                                     extra_body={"router_candidates": [CLAUDE, GPT4O]})
    assert message.model == GPT4O


def test_edenai_falls_back_to_the_next_ranked_candidate(client, fake):
    fake.fail("gpt-4o-mini", status=500)
    raw = client.messages.with_raw_response.create(model="@edenai", max_tokens=50, messages=ask(),
                                                   extra_body={"router_candidates": [GPT, HAIKU]})
    assert raw.parse().model == HAIKU
    assert raw.headers["x-edenai-attempts"].startswith(f"{GPT};status=502")


def test_edenai_drops_a_model_whose_circuit_is_open(client, fake):
    fake.fail("gpt-4o-mini", status=500, times=3)
    for _ in range(3):
        client.messages.create(model="@edenai", max_tokens=50, messages=ask(),
                               extra_body={"router_candidates": [GPT, HAIKU]})
    raw = client.messages.with_raw_response.create(model="@edenai", max_tokens=50, messages=ask(),
                                                   extra_body={"router_candidates": [GPT, HAIKU]})
    assert raw.parse().model == HAIKU
    assert raw.headers["x-edenai-attempts"].count(";status=") == 1  # gpt-4o-mini was not even tried
    assert "dropped 1" in raw.headers["x-edenai-route"]


def test_edenai_with_no_candidate_left_is_a_400_that_says_why(client, fake):
    with pytest.raises(anthropic.BadRequestError, match="no extended thinking"):
        client.messages.create(model="@edenai", max_tokens=2000, messages=ask(),
                               thinking={"type": "enabled", "budget_tokens": 1024},
                               extra_body={"router_candidates": [GPT, GPT4O]})
    assert fake.count() == 0


def test_edenai_candidates_the_key_may_not_use_are_a_403(server, stack, fake):
    key = stack.add_key(models=["anthropic/*"])
    client = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError):
        client.messages.create(model="@edenai", max_tokens=50, messages=ask(),
                               extra_body={"router_candidates": [GPT]})


def test_edenai_streams_too(client):
    with client.messages.stream(model="@edenai", max_tokens=50, messages=ask()) as stream:
        message = stream.get_final_message()
    assert message.model == GPT


def test_fallbacks_take_the_sdks_model_objects_mixed_with_strings(client, fake):
    fake.fail("claude-sonnet-4-5", status=529)
    fake.fail("claude-haiku-4-5", status=529)
    raw = create(client, fallbacks=({"model": HAIKU}, GPT))
    assert raw.parse().model == GPT
    assert [a.split(";")[0] for a in raw.headers["x-edenai-attempts"].split(", ")] == [CLAUDE, HAIKU, GPT]


@pytest.mark.parametrize("fallbacks, needle", [
    ([{"model": HAIKU}, GPT, {"model": GPT4O}, "anthropic/claude-opus-4-5"], "at most 3"),
    ([{"model": HAIKU, "top_k": 10}], "top_k"),
    ([{"name": HAIKU}], "Field required"),
])
def test_fallback_objects_beyond_the_model_are_refused_not_ignored(server, api_key, fake, fallbacks, needle):
    response = httpx.post(f"{server.url}/v3/v1/messages", headers={"x-api-key": api_key}, json={
        "model": CLAUDE, "max_tokens": 10, "messages": ask(), "fallbacks": fallbacks})
    assert response.status_code == 422 and needle in response.text, response.text
    assert fake.count() == 0
