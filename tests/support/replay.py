"""Replaying captured client requests through the gateway (tests/data/claude-code-*.jsonl), and
what each provider must have received: shared by the replay of each Claude Code release."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from handler.pipeline.adaptation import GATEWAY_FIELDS, TRANSLATED_FIELDS
from tests.support.sse_grammar import check

DATA = Path(__file__).parent.parent / "data"
# How x-edenai-dropped-fields names tool search's flag (JSON-quoted: it is not a plain name).
DEFERRED_TOOLS = '"tools[].defer_loading"'


def corpus(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


def events(text: str) -> list[tuple[str, dict]]:
    parsed = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        parsed.append((fields["event"], json.loads(fields["data"])))
    return parsed


def replay(server_url: str, recorded: dict, api_key: str) -> httpx.Response:
    """The request as the client sent it (its path, headers and body), with this test's key."""
    headers = {**recorded["headers"], "x-api-key": api_key}
    return httpx.post(server_url + recorded["path"], headers=headers, content=json.dumps(recorded["body"]), timeout=60)


def answered(response: httpx.Response, recorded: dict) -> dict | None:
    """The answer as the client reads it (Anthropic's grammar for a stream); None for count_tokens."""
    assert response.status_code == 200, f"the client got {response.status_code}: {response.text[:300]}"
    if recorded["path"].startswith("/v3/v1/messages/count_tokens"):
        assert isinstance(response.json()["input_tokens"], int)
        return None
    if recorded["body"].get("stream"):
        assert response.headers["content-type"].startswith("text/event-stream")
        message = check(events(response.text))
    else:
        message = response.json()
    assert message["id"].startswith("msg_") and message["content"], message
    return message


def dropped(response: httpx.Response) -> set[str]:
    return set(filter(None, response.headers.get("x-edenai-dropped-fields", "").split(", ")))


def clamped_max_tokens(response: httpx.Response) -> int | None:
    """The max_tokens the gateway lowered the request's to, as its header says (None: not lowered)."""
    header = response.headers.get("x-edenai-max-tokens-clamped")
    return int(header.split(";", 1)[0]) if header else None


def lost_for_anthropic(client_body: dict, sent: dict, *, elsewhere: frozenset[str] = frozenset({"model"}),
                       clamped: int | None = None) -> list[str]:
    """The client's fields an Anthropic-type provider did not receive as sent (`elsewhere`: those
    its wire format carries outside the body, as Bedrock and Vertex put the model and the
    stream in the URL); metadata keeps only user_id; max_tokens as the gateway said it
    lowered it (`clamped`)."""
    lost = []
    for name, value in client_body.items():
        if name in GATEWAY_FIELDS or name in elsewhere:
            continue
        expected = {"user_id": value["user_id"]} if name == "metadata" else value
        if name == "max_tokens" and clamped is not None:
            expected = clamped
        if sent.get(name) != expected:
            lost.append(name)
    return lost


def _reasons(sent: dict) -> bool:
    """Whether the provider was asked to reason: Chat Completions' effort, or Gemini's thinking."""
    return "reasoning_effort" in sent or "thinkingConfig" in (sent.get("generationConfig") or {})


def unaccounted_for_translated(client_body: dict, sent: dict, dropped_fields: set[str]) -> list[str]:
    """The client's fields a translated provider neither received in its own terms nor was
    said (x-edenai-dropped-fields) to have lost."""
    unaccounted = []
    for name, value in client_body.items():
        if name in GATEWAY_FIELDS or name in TRANSLATED_FIELDS - {"tools"}:
            continue
        if name == "output_config":
            for key in value:
                translated = (key == "effort" and _reasons(sent)) or (key == "format" and "response_format" in sent)
                if not translated and f"output_config.{key}" not in dropped_fields:
                    unaccounted.append(f"output_config.{key}")
        elif name == "thinking":
            if value.get("type") == "disabled" or name in dropped_fields:
                continue
            if not _reasons(sent):
                unaccounted.append(name)
            unaccounted += [f"thinking.{key}" for key in value
                            if key not in ("type", "budget_tokens") and f"thinking.{key}" not in dropped_fields]
        elif name == "tools":
            if any("defer_loading" in tool for tool in value) and DEFERRED_TOOLS not in dropped_fields:
                unaccounted.append("tools[].defer_loading")
        elif name not in dropped_fields:
            unaccounted.append(name)
    return unaccounted


def tool_references(body: dict) -> list[str]:
    """The tools a request's tool_reference blocks name, in order."""
    return [item["tool_name"] for message in body["messages"] if isinstance(message["content"], list)
            for block in message["content"] if block.get("type") == "tool_result" and isinstance(block.get("content"), list)
            for item in block["content"] if item.get("type") == "tool_reference"]


def said_in_words(sent: Any, tool_name: str) -> bool:
    """Whether the provider's request names the tool as available, in words."""
    return f"Tool {tool_name} is now available." in json.dumps(sent)
