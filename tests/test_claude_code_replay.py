"""Every request Claude Code 2.1.197 sent, replayed through the gateway against the fake.

tests/data/claude-code-2.1.197.jsonl holds 46 real requests captured at the
gateway (free text replaced by filler of the same length, everything else as
sent). Each is answered as the client expects; an Anthropic target receives
every field the client sent (less the gateway's own and metadata beyond
user_id), and an OpenAI-compatible target receives each one translated or
names it in `x-edenai-dropped-fields`.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from handler.pipeline.adaptation import GATEWAY_FIELDS, TRANSLATED_FIELDS
from tests.support.sse_grammar import check

CORPUS = Path(__file__).parent / "data" / "claude-code-2.1.197.jsonl"
REQUESTS = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]


def test_the_corpus_is_the_one_claude_code_sent():
    assert len(REQUESTS) == 46
    assert {r["headers"]["user-agent"] for r in REQUESTS} == {"claude-cli/2.1.197 (external, sdk-cli)"}


def _events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def _lost_for_anthropic(client_body: dict, sent: dict) -> list[str]:
    lost = []
    for name, value in client_body.items():
        if name in GATEWAY_FIELDS or name == "model":
            continue
        expected = {"user_id": value["user_id"]} if name == "metadata" else value
        if sent.get(name) != expected:
            lost.append(name)
    return lost


def _unaccounted_for_openai(client_body: dict, sent: dict, dropped: set[str]) -> list[str]:
    unaccounted = []
    for name, value in client_body.items():
        if name in GATEWAY_FIELDS or name in TRANSLATED_FIELDS:
            continue
        if name == "output_config":
            for key in value:
                translated = (key == "effort" and "reasoning_effort" in sent) or \
                             (key == "format" and "response_format" in sent)
                if not translated and f"output_config.{key}" not in dropped:
                    unaccounted.append(f"output_config.{key}")
        elif name == "thinking":
            if value.get("type") != "disabled" and "reasoning_effort" not in sent and name not in dropped:
                unaccounted.append(name)
        elif name not in dropped:
            unaccounted.append(name)
    return unaccounted


@pytest.mark.parametrize("recorded", REQUESTS, ids=[f"{i}-{r['body'].get('model')}" for i, r in enumerate(REQUESTS)])
def test_a_claude_code_request_is_answered_and_loses_nothing(server, api_key, fake, recorded):
    body = recorded["body"]
    headers = {**recorded["headers"], "x-api-key": api_key}
    response = httpx.post(server.url + recorded["path"], headers=headers, content=json.dumps(body), timeout=60)
    assert response.status_code == 200, f"Claude Code got {response.status_code}: {response.text[:300]}"
    if recorded["path"].startswith("/v3/v1/messages/count_tokens"):
        assert isinstance(response.json()["input_tokens"], int)
        return
    if body.get("stream"):
        assert response.headers["content-type"].startswith("text/event-stream")
        message = check(_events(response.text))
    else:
        message = response.json()
    assert message["id"].startswith("msg_") and message["content"], message
    served = response.headers["x-edenai-model"]
    sent = fake.last().body
    dropped = set(filter(None, response.headers.get("x-edenai-dropped-fields", "").split(", ")))
    if served.startswith("anthropic/"):
        assert not _lost_for_anthropic(body, sent), \
            f"{served} never saw {_lost_for_anthropic(body, sent)}: a real Claude would silently skip them"
        assert not dropped
        assert fake.last().headers["anthropic-beta"] == recorded["headers"]["anthropic-beta"]
    else:
        assert not _unaccounted_for_openai(body, sent, dropped), \
            f"{served}: {_unaccounted_for_openai(body, sent, dropped)} vanished without being listed as dropped"
