"""Claude Code 2.1.332's tool search, as its requests carry it (tests/data/claude-code-2.1.332.jsonl):
tools sent with `defer_loading: true`, a `ToolSearch` call, and its result naming the tools it
loads with `tool_reference` blocks, under the `advanced-tool-use-2025-11-20` beta."""

from __future__ import annotations

TOOL_SEARCH_BETA = "advanced-tool-use-2025-11-20"
DEFERRED_TOOLS = [
    {"name": "ToolSearch", "description": "Find tools", "input_schema": {
        "type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}},
    {"name": "CronList", "description": "List cron jobs", "input_schema": {"type": "object", "properties": {}},
     "defer_loading": True},
]


def tool_search_turns(result_content):
    return [{"role": "user", "content": "which cron jobs run?"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_01", "name": "ToolSearch", "input": {"query": "cron"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": result_content}]}]


TOOL_REFERENCE = [{"type": "tool_reference", "tool_name": "CronList"}]


