"""Every place of a Messages request a prompt's words can be, for the checks that none of
them reaches a log line (a check planting its secret in one place misses a leak of another)."""

from __future__ import annotations

PROMPT_PLACES = ("first-message", "system", "later-message", "tool-result", "tool-description")


def prompt_everywhere(secrets: dict[str, str]) -> dict:
    """A conversation's system, tools and messages with secrets[place] in each of PROMPT_PLACES."""
    use = {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}
    return {"system": secrets["system"],
            "tools": [{"name": "lookup", "description": secrets["tool-description"],
                       "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": secrets["first-message"]},
                         {"role": "assistant", "content": [use]},
                         {"role": "user", "content": [
                             {"type": "tool_result", "tool_use_id": "toolu_1", "content": secrets["tool-result"]},
                             {"type": "text", "text": secrets["later-message"]}]}]}
