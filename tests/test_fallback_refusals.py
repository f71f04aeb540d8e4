"""A refusal moves to the next `fallbacks` entry when the caller sent the server-side fallback beta.

As Anthropic's server-side fallback does (beta `server-side-fallback-2026-07-01`):
the answer opens with a `fallback` block (anthropic SDK `BetaFallbackBlock`)
naming the model that declined and the one that answered; `x-edenai-attempts`
marks the declined attempt; the declined attempt is metered at what its
provider reported and appears in the ledger record and the request's log line.
"""

from __future__ import annotations

import json
import time

import httpx

CLAUDE = "anthropic/claude-sonnet-4-5"
HAIKU = "anthropic/claude-haiku-4-5"
GPT = "openai/gpt-4o-mini"
BETA = "server-side-fallback-2026-07-01"


def ask(text="hello"):
    return [{"role": "user", "content": text}]


def test_a_refusal_moves_to_the_next_entry_and_the_answer_says_who_declined(client, fake):
    fake.refuse("claude-sonnet-4-5", category="cyber")
    raw = client.beta.messages.with_raw_response.create(
        model=CLAUDE, max_tokens=50, messages=ask(), betas=[BETA], fallbacks=[{"model": HAIKU}])
    message = raw.parse()
    assert message.model == HAIKU and message.stop_reason == "end_turn"
    block = message.content[0]
    assert block.type == "fallback", f"the caller saw no fallback block: {message.content}"
    assert (block.from_.model, block.to.model) == (CLAUDE, HAIKU)
    assert (block.trigger.type, block.trigger.category) == ("refusal", "cyber")
    assert message.content[1].text.startswith("Hello from claude-haiku-4-5")
    first, second = raw.headers["x-edenai-attempts"].split(", ")
    assert first.startswith(f"{CLAUDE};status=200;") and first.endswith(";declined")
    assert second.startswith(f"{HAIKU};status=200;") and "declined" not in second


def test_a_model_that_declined_after_partial_content_keeps_it_before_the_fallback_block(client, fake):
    """As Anthropic's server-side fallback returns it (anthropic SDK `BetaFallbackBlock`: "Marks
    the point in `content` where one model's output gives way to the next"; `from` is "the model
    whose output ends at this point"): the declined model's partial content, the fallback block,
    then the answer."""
    fake.refuse("claude-sonnet-4-5", category="cyber", partial="Sure, here is how")
    message = client.beta.messages.create(model=CLAUDE, max_tokens=50, messages=ask(), betas=[BETA],
                                          fallbacks=[HAIKU])
    assert [b.type for b in message.content] == ["text", "fallback", "text"], \
        f"the declined model's partial content was not kept before the fallback block: {message.content}"
    assert message.content[0].text == "Sure, here is how"
    assert (message.content[1].from_.model, message.content[1].to.model) == (CLAUDE, HAIKU)
    assert message.content[2].text.startswith("Hello from claude-haiku-4-5")
    assert message.model == HAIKU and message.stop_reason == "end_turn"


TOKENS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def _iterations(usage) -> list[tuple]:
    return [(i.type, i.model, *(getattr(i, name) for name in TOKENS)) for i in usage.iterations or []]


def _reported(fake) -> list[tuple]:
    return [(model, *(usage[name] for name in TOKENS)) for model, usage in fake.reported]


def test_usage_iterations_say_a_fallback_served_the_answer(client, fake):
    """`usage.iterations` is "the signal for whether a fallback model served the response"
    (anthropic SDK `BetaFallbackBlock`): a `message` entry for the declined hop, then the
    `fallback_message` entry (`BetaFallbackMessageIterationUsage`) of the model that served it,
    each with what its provider reported; the top-level usage stays the answer's own."""
    fake.refuse("claude-sonnet-4-5", category="cyber", partial="Sure, here is how")
    message = client.beta.messages.create(model=CLAUDE, max_tokens=50, messages=ask(), betas=[BETA],
                                          fallbacks=[HAIKU])
    declined, served = _reported(fake)
    expected = [("message", CLAUDE, *declined[1:]), ("fallback_message", HAIKU, *served[1:])]
    assert _iterations(message.usage) == expected, f"usage.iterations did not say a fallback served the answer: {message.usage}"
    assert (message.usage.input_tokens, message.usage.output_tokens) == served[1:3]


def test_a_streamed_answer_says_so_in_its_usage_iterations(client, fake):
    fake.refuse("claude-sonnet-4-5", category="cyber")
    with client.beta.messages.stream(model=CLAUDE, max_tokens=50, messages=ask(), betas=[BETA],
                                     fallbacks=[HAIKU]) as stream:
        message = stream.get_final_message()
    declined, served = _reported(fake)
    expected = [("message", CLAUDE, *declined[1:]), ("fallback_message", HAIKU, *served[1:])]
    assert _iterations(message.usage) == expected, f"the stream's usage.iterations did not say a fallback served the answer: {message.usage}"


def test_an_answer_no_model_declined_has_no_iterations(client, fake):
    fake.fail("claude-sonnet-4-5", status=529)
    message = client.beta.messages.create(model=CLAUDE, max_tokens=50, messages=ask(), betas=[BETA],
                                          fallbacks=[HAIKU])
    assert message.model == HAIKU and message.usage.iterations is None, message.usage


def test_two_refusals_make_two_hops(client, fake):
    fake.refuse("claude-sonnet-4-5")
    fake.refuse("claude-haiku-4-5", category="bio")
    message = client.beta.messages.create(model=CLAUDE, max_tokens=50, messages=ask(), betas=[BETA],
                                          fallbacks=[HAIKU, GPT])
    hops = [(b.from_.model, b.to.model, b.trigger.category) for b in message.content if b.type == "fallback"]
    assert hops == [(CLAUDE, HAIKU, None), (HAIKU, GPT, "bio")]
    assert message.model == GPT


def test_without_the_beta_a_refusal_is_returned_as_is(client, fake):
    fake.refuse("claude-sonnet-4-5", category="cyber")
    message = client.messages.create(model=CLAUDE, max_tokens=50, messages=ask(),
                                     extra_body={"fallbacks": [HAIKU]})
    assert message.stop_reason == "refusal" and message.model == CLAUDE
    assert fake.count("claude-haiku-4-5") == 0, "a refusal moved to a fallback without the beta"


def test_the_last_entrys_refusal_is_the_answer(client, fake):
    fake.refuse("claude-sonnet-4-5")
    fake.refuse("claude-haiku-4-5")
    message = client.beta.messages.create(model=CLAUDE, max_tokens=50, messages=ask(), betas=[BETA],
                                          fallbacks=[HAIKU])
    assert message.stop_reason == "refusal" and message.model == HAIKU
    assert [b.type for b in message.content][:1] == ["fallback"]


def test_a_stream_declined_before_content_falls_back_with_its_fallback_block(client, fake):
    fake.refuse("claude-sonnet-4-5", category="cyber")
    with client.beta.messages.stream(model=CLAUDE, max_tokens=50, messages=ask(), betas=[BETA],
                                     fallbacks=[HAIKU]) as stream:
        message = stream.get_final_message()
    assert message.model == HAIKU
    assert [b.type for b in message.content] == ["fallback", "text"]
    assert (message.content[0].from_.model, message.content[0].to.model) == (CLAUDE, HAIKU)
    assert message.content[1].text.startswith("Hello from claude-haiku-4-5")


def test_a_stream_declined_after_content_ends_as_the_model_ended_it(server, api_key, fake):
    fake.refuse("claude-sonnet-4-5", partial="Sure, here is how")
    response = httpx.post(f"{server.url}/v3/v1/messages", headers={"x-api-key": api_key, "anthropic-beta": BETA},
                          json={"model": CLAUDE, "max_tokens": 50, "messages": ask(), "stream": True,
                                "fallbacks": [HAIKU]}, timeout=20)
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    [delta] = [e for e in events if e["type"] == "message_delta"]
    assert delta["delta"]["stop_reason"] == "refusal"
    assert events[0]["message"]["model"] == CLAUDE
    assert fake.count("claude-haiku-4-5") == 0, "content had reached the client, yet another model answered"


def test_a_declined_attempt_is_metered_and_logged(client, stack, api_key, fake, capsys):
    fake.refuse("claude-sonnet-4-5")
    capsys.readouterr()
    raw = client.beta.messages.with_raw_response.create(model=CLAUDE, max_tokens=50, messages=ask(),
                                                        betas=[BETA], fallbacks=[HAIKU])
    [record] = stack.records(api_key, 1)
    reported = fake.reported_totals()
    assert [(a["model"], a.get("declined", False)) for a in record["attempts"]] == [(CLAUDE, True), (HAIKU, False)]
    assert record["input_tokens"] == reported["input_tokens"], "the declined attempt's input went unmetered"
    assert record["output_tokens"] == reported["output_tokens"]
    request_id = raw.headers["request-id"]
    deadline, line = time.monotonic() + 10, None
    while line is None and time.monotonic() < deadline:
        lines = [json.loads(text) for text in capsys.readouterr().out.splitlines() if text.startswith("{")]
        line = next((doc for doc in lines if doc.get("request_id") == request_id and doc.get("message") == "request"),
                    None)
        time.sleep(0.05)
    assert line is not None and [a.get("declined", False) for a in line["attempts"]] == [True, False]
