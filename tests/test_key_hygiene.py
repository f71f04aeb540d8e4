"""Secrets stay secret: no caller key or provider credential in any log line or answer,
no prompt in the logs unless the operator turns that on, and random keys cannot
become Secrets Manager traffic.
"""

from __future__ import annotations

import asyncio
import logging
import time

import anthropic
import httpx
import pytest

from handler.app import create_app
from handler.keys.store import hash_key, new_key
from tests.support.prompt_places import PROMPT_PLACES, prompt_everywhere
from tests.support.stack import ANTHROPIC_TEST_KEY, OPENAI_TEST_KEY, new_stack, serve

CLAUDE = "anthropic/claude-sonnet-4-5"
GPT = "openai/gpt-4o-mini"
SECRET_PROMPT = "the launch code is swordfish"
# The same secret in each place of a conversation a prompt's words can be, each named.
SECRETS = {place: f"{SECRET_PROMPT} ({place})" for place in PROMPT_PLACES}
# A key's fragment this long identifies it (the shortest here, 8 of `egw_` + 43, leaves 4 random characters).
IDENTIFYING = 8


def identifying_fragments(secret: str) -> dict[str, str]:
    """What must never be shown of a secret: every prefix and suffix of IDENTIFYING characters
    or more (the shortest of each is in all the longer ones), and its digest (the keys secret's form)."""
    digest = hash_key(secret).removeprefix("sha256:")
    return {"prefix": secret[:IDENTIFYING], "suffix": secret[-IDENTIFYING:],
            "digest prefix": digest[:IDENTIFYING * 2], "digest suffix": digest[-IDENTIFYING * 2:]}


def exercise(server, key, revoked, fake):
    """Successes, failures, fallbacks, streams, bad keys: everything that might log."""
    client = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0)
    client.messages.create(model=CLAUDE, max_tokens=10, **prompt_everywhere(SECRETS))
    with client.messages.stream(model=GPT, max_tokens=10, **prompt_everywhere(SECRETS)) as s:
        s.get_final_message()
    fake.fail("claude-sonnet-4-5", status=400, body={"type": "error", "error": {
        "type": "invalid_request_error", "message": f"bad credential {ANTHROPIC_TEST_KEY}"}})
    fake.fail("gpt-4o-mini", status=401, body={"error": {"message": f"Incorrect API key {OPENAI_TEST_KEY}"}})
    fake.reset_connection("claude-haiku-4-5")
    answers = []
    for model in (CLAUDE, GPT, "anthropic/claude-haiku-4-5"):
        try:
            client.messages.create(model=model, max_tokens=10, messages=[{"role": "user", "content": "x"}])
        except anthropic.APIStatusError as error:
            answers.append(error.response.text)
    for bad in (revoked, "egw_" + "A" * 43, f"Bearer {key}x"):
        answers.append(httpx.post(f"{server.url}/v3/v1/messages", headers={"x-api-key": bad},
                                  json={"model": CLAUDE, "messages": []}).text)
    return answers


def test_no_key_or_credential_appears_in_logs_or_answers(moto_endpoint, fake, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    stack = new_stack(fake.url)
    key, revoked = stack.add_key(), stack.add_key(name="old")
    stack.revoke(revoked)
    with serve(stack) as server:
        answers = exercise(server, key, revoked, fake)
    captured = capfd.readouterr()
    # The test's own SDK client (logger "anthropic...") logs what it sends; that is the caller's side.
    gateway_log = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records if not r.name.startswith("anthropic"))
    text = "\n".join([gateway_log, captured.out, captured.err, *answers])
    assert len(gateway_log) > 1000, "the scenario logged little: the check would prove nothing"
    for secret in (key, revoked, ANTHROPIC_TEST_KEY, OPENAI_TEST_KEY):
        for kind, fragment in identifying_fragments(secret).items():
            assert fragment not in text, f"the {kind} of a secret ({fragment!r}) was logged or answered"
    for place, secret in SECRETS.items():
        assert secret not in gateway_log + captured.err, f"prompts are not logged by default: its {place} was"


def test_prompts_are_logged_only_when_the_operator_turns_that_on(moto_endpoint, fake, caplog):
    caplog.set_level(logging.INFO)
    stack = new_stack(fake.url, log_prompts=True)
    key = stack.add_key()
    with serve(stack) as server:
        anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0).messages.create(
            model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": SECRET_PROMPT}])
    assert SECRET_PROMPT in caplog.text
    assert key not in caplog.text


def test_10000_requests_with_random_keys_cause_a_handful_of_secrets_manager_calls(moto_endpoint, fake):
    stack = new_stack(fake.url)
    stack.add_key()
    app = create_app(stack.settings)
    cache = app.state.keys

    async def flood() -> set[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            statuses = set()
            for _ in range(100):
                batch = [http.post("/v3/v1/messages", headers={"x-api-key": new_key()},
                                   json={"model": CLAUDE, "messages": []}) for _ in range(100)]
                statuses |= {r.status_code for r in await asyncio.gather(*batch)}
            return statuses

    started = time.monotonic()
    assert asyncio.run(flood()) == {401}
    elapsed = time.monotonic() - started
    # One load at the first request, then at most one per refresh gap.
    assert cache.loads <= 2 + elapsed / stack.settings.secret_refresh_gap
    assert fake.count() == 0
