"""Every request Claude Code 2.1.197 sent, replayed through the gateway against the fake.

tests/data/claude-code-2.1.197.jsonl holds 46 real requests captured at the
gateway (free text replaced by filler of the same length, everything else as
sent). Each is answered as the client expects; an Anthropic target receives
every field the client sent (less the gateway's own and metadata beyond
user_id), and an OpenAI-compatible target receives each one translated or
names it in `x-edenai-dropped-fields`.
"""

from __future__ import annotations

import pytest

from tests.support.replay import answered, corpus, dropped, lost_for_anthropic, replay, unaccounted_for_translated

REQUESTS = corpus("claude-code-2.1.197.jsonl")


def test_the_corpus_is_the_one_claude_code_sent():
    assert len(REQUESTS) == 46
    assert {r["headers"]["user-agent"] for r in REQUESTS} == {"claude-cli/2.1.197 (external, sdk-cli)"}


@pytest.mark.parametrize("recorded", REQUESTS, ids=[f"{i}-{r['body'].get('model')}" for i, r in enumerate(REQUESTS)])
def test_a_claude_code_request_is_answered_and_loses_nothing(server, api_key, fake, recorded):
    body = recorded["body"]
    response = replay(server.url, recorded, api_key)
    if answered(response, recorded) is None:
        return
    served = response.headers["x-edenai-model"]
    sent = fake.last().body
    if served.startswith("anthropic/"):
        assert not lost_for_anthropic(body, sent), \
            f"{served} never saw {lost_for_anthropic(body, sent)}: a real Claude would silently skip them"
        assert not dropped(response)
        assert fake.last().headers["anthropic-beta"] == recorded["headers"]["anthropic-beta"]
    else:
        unaccounted = unaccounted_for_translated(body, sent, dropped(response))
        assert not unaccounted, f"{served}: {unaccounted} vanished without being listed as dropped"
