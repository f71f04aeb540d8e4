"""Anthropic's streaming grammar, checked event by event.

What a client parser relies on: one message_start (with real input tokens),
content blocks indexed 0..n-1, each started, deltaed and stopped in order,
deltas of the block's own kind, tool input fragments that join into JSON,
cumulative usage, a stop_reason Anthropic defines, then message_stop.
"""

from __future__ import annotations

import json

STOP_REASONS = {"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"}
DELTA_FOR_BLOCK = {
    "text": {"text_delta", "citations_delta"},
    "tool_use": {"input_json_delta"},
    "thinking": {"thinking_delta", "signature_delta"},
}


def parse(body: str) -> list[tuple[str, dict]]:
    events = []
    for block in body.strip().split("\n\n"):
        fields = {}
        for line in block.split("\n"):
            name, _, value = line.partition(": ")
            fields[name] = value
        assert set(fields) == {"event", "data"}, f"malformed SSE block: {block!r}"
        data = json.loads(fields["data"])
        assert data["type"] == fields["event"], f"event name {fields['event']} carries type {data['type']}"
        events.append((fields["event"], data))
    return events


def check(events: list[tuple[str, dict]], *, stop_sequences: list[str] | None = None) -> dict:
    """Assert the grammar; return the message the events accumulate to."""
    events = [(name, data) for name, data in events if name != "ping"]
    names = [name for name, _ in events]
    assert names.count("message_start") == 1 and names[0] == "message_start", names
    assert names[-1] == "message_stop" and names.count("message_stop") == 1, names
    assert names.count("message_delta") == 1 and names[-2] == "message_delta", names
    message = dict(events[0][1]["message"])
    assert message["type"] == "message" and message["role"] == "assistant" and message["content"] == []
    assert message["usage"]["input_tokens"] > 0, "message_start must carry real input tokens"
    usage = dict(message["usage"])
    blocks: list[dict] = []
    open_index = None
    fragments: dict[int, str] = {}
    for name, data in events[1:-2]:
        if name == "content_block_start":
            assert open_index is None, "a block started before the previous one stopped"
            assert data["index"] == len(blocks), "block indexes must be contiguous from 0"
            block = dict(data["content_block"])
            assert block["type"] in DELTA_FOR_BLOCK, block
            blocks.append(block)
            open_index = data["index"]
        elif name == "content_block_delta":
            assert data["index"] == open_index, "a delta for a block that is not open"
            block, delta = blocks[open_index], data["delta"]
            assert delta["type"] in DELTA_FOR_BLOCK[block["type"]], f"{delta['type']} inside a {block['type']} block"
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "input_json_delta":
                fragments[open_index] = fragments.get(open_index, "") + delta["partial_json"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
        elif name == "content_block_stop":
            assert data["index"] == open_index, "stopping a block that is not open"
            if blocks[open_index]["type"] == "tool_use":
                blocks[open_index]["input"] = json.loads(fragments.get(open_index) or "{}")
            if blocks[open_index]["type"] == "thinking":
                assert blocks[open_index].get("signature"), "a thinking block lost its signature"
            open_index = None
        else:
            raise AssertionError(f"unexpected event {name} between message_start and message_delta")
    assert open_index is None, "a block was never stopped"
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] in STOP_REASONS, delta
    if delta["delta"]["stop_reason"] == "stop_sequence":
        assert delta["delta"]["stop_sequence"] in (stop_sequences or []), delta
    for name, value in delta["usage"].items():
        if isinstance(value, int) and name in usage and isinstance(usage[name], int) and name == "output_tokens":
            assert value >= usage[name], "usage must be cumulative"
        usage[name] = value
    message.update(content=blocks, stop_reason=delta["delta"]["stop_reason"],
                   stop_sequence=delta["delta"].get("stop_sequence"), usage=usage)
    return message
