"""Blocks a translating route cannot carry as blocks but can say in words, faithfully.

Claude Code's tool search (`ToolSearch`, tools sent with `defer_loading: true`,
beta `advanced-tool-use-2025-11-20`) answers with a `tool_result` holding
`{"type": "tool_reference", "tool_name": "CronList"}`: on Anthropic's API the
reference loads that tool's definition. A model behind Chat Completions,
Gemini or Converse has no such block and no deferred tools: it is sent every
tool of the request as an ordinary tool (the model cannot search them; the
dropped `defer_loading` flag is listed in `x-edenai-dropped-fields`), and a
reference becomes the sentence "Tool CronList is now available.", so the
model calls the tool on its next turn as Claude would. Pure: a copy of the
history with such blocks rendered; the input is kept.
"""

from __future__ import annotations

from typing import Any, Mapping

# Block types rendered as text here (translation/lost_content.py lets them through).
RENDERED_KINDS = frozenset({"tool_reference"})


def renders(block: Mapping[str, Any]) -> bool:
    """Whether this block has a faithful text form here (a reference needs the tool's name)."""
    return block.get("type") == "tool_reference" and isinstance(block.get("tool_name"), str) \
        and bool(block["tool_name"])


def _text_form(block: Any) -> Any:
    if isinstance(block, Mapping) and renders(block):
        return {"type": "text", "text": f"Tool {block['tool_name']} is now available."}
    return block


def _rendered_block(block: Any) -> Any:
    """The block in words, or a tool_result whose references are put in words."""
    if isinstance(block, Mapping) and block.get("type") == "tool_result" and isinstance(block.get("content"), list):
        inner = [_text_form(item) for item in block["content"]]
        return {**block, "content": inner} if inner != block["content"] else block
    return _text_form(block)


def rendered(messages: list[dict]) -> list[dict]:
    """The history with every block that has a text form put in words (a copy)."""
    out = []
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list):
            blocks = [_rendered_block(block) for block in content]
            if blocks != content:
                message = {**message, "content": blocks}
        out.append(message)
    return out
