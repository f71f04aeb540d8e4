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
- No credentials: 401 authentication_error, "x-api-key header is required" (the API's
  answer without `x-api-key`, n8n-io/n8n#37930; an OAuth token goes in `Authorization:
  Bearer` instead, as Claude Code's subscription login sends it).
- A key Anthropic did not issue: 401 authentication_error, "invalid x-api-key" (cline/cline#12
  quotes the body); an OAuth token it did not issue, in `Authorization: Bearer`: 401
  authentication_error, "Invalid bearer token" (anthropics/claude-code#3624).
- No `anthropic-version` header: 400, "anthropic-version: header is required"
  (platform.claude.com/docs/en/api/versioning: "When making API requests, you must send
  an anthropic-version request header"; envoyproxy/ai-gateway#1909).
- No `max_tokens` on a Messages request: 400, "max_tokens: Field required" (the API
  reference lists it as required; Anthropic words a missing field as its validation does).
- An assistant `tool_use` not answered by a `tool_result` in the next (user) message: 400,
  "messages.22: `tool_use` ids were found without `tool_result` blocks immediately after:
  toolu_01..., toolu_01.... Each `tool_use` block must have a corresponding `tool_result`
  block in the next message." (anthropics/claude-code#5989, #1237).
- A `tool_result` whose `tool_use_id` no `tool_use` of the previous (assistant) message has: 400,
  "messages.48.content.1: unexpected `tool_use_id` found in `tool_result` blocks: toolu_01....
  Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
  (anthropics/claude-code#13460, #18947: `messages.0.content.0` when there is no message before).
- A prompt longer than Claude's context window (200,000 tokens; 1,000,000 under the
  `context-1m` beta) is refused, unbilled: 400 invalid_request_error "prompt is too long:
  219898 tokens > 200000 maximum" (earendil-works/pi#102; behind Bedrock a ValidationException
  "The model returned the following errors: prompt is too long: 200049 tokens > 200000
  maximum", daisuke-awaji/moca#254). Counted in the fake's tokens (media included).
"""

from __future__ import annotations

from typing import Any, Iterator

TOOL_SEARCH_BETA = "advanced-tool-use-2025-11-20"

# Anthropic's request-side block types (anthropic SDK 2.17's Beta*BlockParam unions), among
# them `fallback` (BetaFallbackBlockParam: "A `fallback` block echoed back from a prior
# response. Accepted in `messages[].content` and not rendered into the prompt").
MESSAGE_BLOCKS = frozenset({
    "text", "image", "document", "search_result", "tool_use", "tool_result", "thinking",
    "redacted_thinking", "server_tool_use", "web_search_tool_result", "web_fetch_tool_result",
    "code_execution_tool_result", "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result", "tool_search_tool_result", "mcp_tool_use",
    "mcp_tool_result", "container_upload", "compaction", "fallback",
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


def header_problem(headers: dict, keys=None) -> tuple[int, str] | None:
    """(status, message) of Anthropic's refusal of a request's headers (None: they are good);
    given the `keys` it issued (API keys and OAuth tokens), a credential outside them is refused."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" else ""
    if not headers.get("x-api-key") and not bearer:
        return 401, "x-api-key header is required"
    if keys is not None and headers.get("x-api-key") and headers["x-api-key"] not in keys:
        return 401, "invalid x-api-key"
    if keys is not None and not headers.get("x-api-key") and bearer not in keys:
        return 401, "Invalid bearer token"
    if not headers.get("anthropic-version"):
        return 400, "anthropic-version: header is required"
    return None


def unanswered_tool_uses(messages: list) -> str | None:
    """Anthropic's refusal of a `tool_use` the next message does not answer (Bedrock and Vertex
    pass Claude's conversation to the same validation)."""
    for m, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) and message.get("role") == "assistant" else None
        ids = [b.get("id") for b in content if isinstance(b, dict) and b.get("type") == "tool_use"] \
            if isinstance(content, list) else []
        if not ids:
            continue
        after = messages[m + 1] if m + 1 < len(messages) and isinstance(messages[m + 1], dict) else {}
        reply = after.get("content") if after.get("role") == "user" else None
        answered = {b.get("tool_use_id") for b in reply if isinstance(b, dict) and b.get("type") == "tool_result"} \
            if isinstance(reply, list) else set()
        missing = [str(i) for i in ids if i not in answered]
        if missing:
            return (f"messages.{m}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                    f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block in "
                    "the next message.")
    return None


def unexpected_tool_results(messages: list) -> str | None:
    """Anthropic's refusal of a `tool_result` that answers no `tool_use` of the message before it."""
    for m, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) and message.get("role") == "user" else None
        before = messages[m - 1] if m and isinstance(messages[m - 1], dict) else {}
        uses = before.get("content") if before.get("role") == "assistant" else None
        offered = {b.get("id") for b in uses if isinstance(b, dict) and b.get("type") == "tool_use"} \
            if isinstance(uses, list) else set()
        unexpected = [(b, block.get("tool_use_id")) for b, block in enumerate(content if isinstance(content, list) else [])
                      if isinstance(block, dict) and block.get("type") == "tool_result"
                      and block.get("tool_use_id") not in offered]
        if unexpected:
            return (f"messages.{m}.content.{unexpected[0][0]}: unexpected `tool_use_id` found in `tool_result` "
                    f"blocks: {', '.join(str(i) for _, i in unexpected)}. Each `tool_result` block must have a "
                    "corresponding `tool_use` block in the previous message.")
    return None


CONTEXT_WINDOW, LONG_CONTEXT_WINDOW = 200_000, 1_000_000


def prompt_too_long(prompt_tokens: int, anthropic_beta: str | None) -> str | None:
    """Claude's refusal of a prompt longer than its context window (None: it fits)."""
    window = LONG_CONTEXT_WINDOW if "context-1m" in (anthropic_beta or "") else CONTEXT_WINDOW
    return f"prompt is too long: {prompt_tokens} tokens > {window} maximum" if prompt_tokens > window else None


def request_problem(body: dict, anthropic_beta: str | None) -> str | None:
    """Why Anthropic would refuse this Messages request's body with a 400 (None: it would not)."""
    if "max_tokens" not in body:
        return "max_tokens: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list):
        return content_problem(body, anthropic_beta)
    return content_problem(body, anthropic_beta) or unanswered_tool_uses(messages) or unexpected_tool_results(messages)
