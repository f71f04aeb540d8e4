"""Conversation histories that cross providers.

A fallback or a routed call may send a history written by one provider to
another. Anthropic rejects thinking blocks whose signature it did not issue
(or that have none); OpenAI-compatible servers have no place for thinking at
all, nor does any translated route for a `fallback` block (the marker Anthropic's
server-side fallback puts where one model's output gives way to the next, which
the caller sends back with its turn and which is "not rendered into the prompt":
anthropic SDK BetaFallbackBlockParam). Such blocks are dropped rather than turned
into a 400, and an assistant turn left empty by that is dropped too. Tool ids the gateway gave an
OpenAI-compatible provider's calls go back to that kind of provider as its
own ids (translation/openai_shape.py), with the thought signature Gemini 3 gave a call
(translation/chat_completions.py sends it back as `extra_content`).

Tool calls and their results must pair up turn by turn, and every target
judges that differently: Anthropic refuses with a 400, litellm refuses a
Gemini call in the process before sending it (an error shaped like a failed
connection), an OpenAI-compatible server with its own words. So the gateway
judges the pairing itself, once, before any model is chosen or any rpm is
counted, in Anthropic's words: a caller's mistake never reaches a provider,
and never looks like one's failure to the shared circuit breaker.
"""

from __future__ import annotations

from typing import Any, Iterator

from ..translation.openai_shape import THOUGHT_SIGNATURE, provider_tool_id, thought_signature

THINKING_TYPES = frozenset({"thinking", "redacted_thinking"})
FALLBACK_TYPE = "fallback"


def _keeps(block: Any, *, anthropic: bool) -> bool:
    if isinstance(block, dict) and block.get("type") == FALLBACK_TYPE:
        return anthropic
    if not isinstance(block, dict) or block.get("type") not in THINKING_TYPES:
        return True
    if not anthropic:
        return False
    # Anthropic verifies signatures: an unsigned thinking block came from elsewhere.
    return bool(block.get("signature") if block["type"] == "thinking" else block.get("data"))


def _provider_ids(block: Any) -> Any:
    """A tool_use or tool_result block with the OpenAI-compatible provider's own tool id."""
    if not isinstance(block, dict):
        return block
    for key in ("id", "tool_use_id") if block.get("type") in ("tool_use", "tool_result") else ():
        if key in block and provider_tool_id(block[key]) != block[key]:
            mapped = {**block, key: provider_tool_id(block[key])}
            if key == "id" and thought_signature(block[key]):
                mapped[THOUGHT_SIGNATURE] = thought_signature(block[key])
            return mapped
    return block


def adapt_messages(messages: list[dict], *, anthropic: bool) -> list[dict]:
    """The history without content the target provider cannot accept (a copy; the input is kept)."""
    adapted = []
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            adapted.append(message)
            continue
        kept = [block for block in content if message.get("role") != "assistant" or _keeps(block, anthropic=anthropic)]
        if not anthropic:
            kept = [_provider_ids(block) for block in kept]
        if kept == content:
            adapted.append(message)
        elif kept:
            adapted.append({**message, "content": kept})
    return adapted


def _turns(messages: list[Any]) -> list[tuple[str, list[tuple[int, dict]]]]:
    """The conversation as turns: runs of messages of one role, each message with its index.
    System-role messages are left out (Claude Code puts them between turns) and consecutive
    messages of one role are one turn (Anthropic combines them), so the gateway refuses no
    history a provider might take; what it lets through, the provider still judges."""
    turns: list[tuple[str, list[tuple[int, dict]]]] = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            continue
        if turns and turns[-1][0] == message["role"]:
            turns[-1][1].append((index, message))
        else:
            turns.append((message["role"], [(index, message)]))
    return turns


def _blocks(message: dict, kind: str) -> Iterator[tuple[int, dict]]:
    content = message.get("content")
    for index, block in enumerate(content if isinstance(content, list) else ()):
        if isinstance(block, dict) and block.get("type") == kind:
            yield index, block


def _tool_use_ids(turn: list[tuple[int, dict]]) -> set[Any]:
    return {block.get("id") for _, message in turn for _, block in _blocks(message, "tool_use")}


def _unexpected_results(turn: list[tuple[int, dict]], offered: set[Any]) -> str | None:
    for m, message in turn:
        unexpected = [(b, block.get("tool_use_id")) for b, block in _blocks(message, "tool_result")
                      if block.get("tool_use_id") not in offered]
        if unexpected:
            return (f"messages.{m}.content.{unexpected[0][0]}: unexpected `tool_use_id` found in `tool_result` "
                    f"blocks: {', '.join(str(tool_id) for _, tool_id in unexpected)}. Each `tool_result` block "
                    "must have a corresponding `tool_use` block in the previous message.")
    return None


def _unanswered_uses(turn: list[tuple[int, dict]], answered: set[Any]) -> str | None:
    for m, message in turn:
        missing = [block.get("id") for _, block in _blocks(message, "tool_use") if block.get("id") not in answered]
        if missing:
            return (f"messages.{m}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                    f"{', '.join(str(tool_id) for tool_id in missing)}. Each `tool_use` block must have a "
                    "corresponding `tool_result` block in the next message.")
    return None


def tool_pairing_problem(messages: list[Any]) -> str | None:
    """Anthropic's refusal of a history whose tool calls and results do not pair up (None: they
    do), in its words: a `tool_result` answering no `tool_use` of the assistant turn before it
    ("messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: ...",
    anthropics/claude-code#13460), or a `tool_use` the next turn does not answer
    ("messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: ...",
    anthropics/claude-code#1237). A last assistant turn (a prefill) is left to the provider."""
    turns = _turns(messages)
    for position, (role, turn) in enumerate(turns):
        if role == "user":
            before = turns[position - 1] if position else None
            offered = _tool_use_ids(before[1]) if before is not None else set()
            problem = _unexpected_results(turn, offered)
        elif position + 1 < len(turns):
            after = turns[position + 1][1]
            answered = {block.get("tool_use_id") for _, message in after for _, block in _blocks(message, "tool_result")}
            problem = _unanswered_uses(turn, answered)
        else:
            problem = None
        if problem:
            return problem
    return None
