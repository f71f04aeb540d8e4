"""What Anthropic's Messages API refuses in the content blocks of a request, for the fakes.

A fake kinder than the real API hides bugs: a block the gateway passes on as
sent (protocol/content.py) must meet the provider's own judgement here, as it
would at api.anthropic.com.

- A block type Anthropic does not define is refused with a 400 naming where it
  is ("messages.N.content.M: ..."; Anthropic's message paths, as in its
  "messages.1.content.0: Invalid `signature` in `thinking` block",
  anthropics/claude-code#10627), worded as its validation of a tagged union.
- `tool_reference` (client-side tool search) is a `tool_result` content item,
  taken only under the `advanced-tool-use-2025-11-20` beta ("Tool search tool",
  platform.claude.com/docs/en/agents-and-tools/tool-use/tool-search-tool: the
  beta header for the Claude API; "implement client-side tool search by
  returning tool_reference blocks"), and only when the tool it names is in
  `tools`: "Tool reference 'DesignSync' not found in available tools"
  (invalid_request_error, 400; anthropics/claude-code#81863).
"""

from __future__ import annotations

from typing import Any, Iterator

TOOL_SEARCH_BETA = "advanced-tool-use-2025-11-20"

# Anthropic's request-side block types (anthropic SDK 2.17's Beta*BlockParam unions).
MESSAGE_BLOCKS = frozenset({
    "text", "image", "document", "search_result", "tool_use", "tool_result", "thinking",
    "redacted_thinking", "server_tool_use", "web_search_tool_result", "web_fetch_tool_result",
    "code_execution_tool_result", "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result", "tool_search_tool_result", "mcp_tool_use",
    "mcp_tool_result", "container_upload", "compaction",
})
# What a tool_result's content list may hold.
TOOL_RESULT_ITEMS = frozenset({"text", "image", "document", "search_result", "tool_reference"})


def _items(messages: Any) -> Iterator[tuple[str, dict, bool]]:
    """(where, block, inside a tool_result) for every block of the conversation."""
    for m, message in enumerate(messages if isinstance(messages, list) else []):
        content = message.get("content") if isinstance(message, dict) else None
        for b, block in enumerate(content if isinstance(content, list) else []):
            if not isinstance(block, dict):
                continue
            yield f"messages.{m}.content.{b}", block, False
            inner = block.get("content") if block.get("type") == "tool_result" else None
            for i, item in enumerate(inner if isinstance(inner, list) else []):
                if isinstance(item, dict):
                    yield f"messages.{m}.content.{b}.content.{i}", item, True


def content_problem(body: dict, anthropic_beta: str | None) -> str | None:
    """Why Anthropic would refuse this request's content with a 400 (None: it would not)."""
    betas = {beta.strip() for beta in (anthropic_beta or "").split(",")}
    tools = {tool.get("name") for tool in body.get("tools") or [] if isinstance(tool, dict)}
    for where, block, in_result in _items(body.get("messages")):
        kind = block.get("type")
        allowed = TOOL_RESULT_ITEMS - ({"tool_reference"} if TOOL_SEARCH_BETA not in betas else set()) \
            if in_result else MESSAGE_BLOCKS
        if kind not in allowed:
            return (f"{where}: Input tag {kind!r} found using 'type' does not match any of the expected tags: "
                    f"{', '.join(repr(tag) for tag in sorted(allowed))}")
        if kind == "tool_reference" and block.get("tool_name") not in tools:
            return f"Tool reference {block.get('tool_name')!r} not found in available tools"
    return None
