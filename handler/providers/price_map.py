"""litellm's bundled price map, read without importing litellm.

`import litellm` costs about 2 s and 150 MB; the gateway needs its price map
for every request (the catalogue, costs, routing) but litellm itself only
for providers that do not speak Anthropic's API, so litellm is imported on
the first such call and the map is read here: the same JSON file litellm
loads offline (LITELLM_LOCAL_MODEL_COST_MAP), its aliases expanded as
litellm expands them. A test compares every entry with `litellm.model_cost`.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

FILE_NAME = "model_prices_and_context_window_backup.json"
# A top-level key that holds litellm's fallback rules, not a model.
RULES_KEY = "fallback_generalizations"


def bundled_path() -> Path:
    """The file inside the installed litellm package, found without importing it."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("litellm is not installed: its price map is part of it")
    return Path(next(iter(spec.submodule_search_locations))) / FILE_NAME


def expand_aliases(entries: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rows named by another row's `aliases`, or pointing with `alias_of`, served as that row (pure).

    An alias never replaces a real row, the first claim to a name wins, and a
    pointer to nothing is dropped: litellm's rules.
    """
    pointers = {name: info["alias_of"] for name, info in entries.items() if isinstance(info.get("alias_of"), str)}
    owners: dict[str, str] = {}
    for name, info in entries.items():
        aliases = info.pop("aliases", None) if name not in pointers else None
        for alias in aliases if isinstance(aliases, list) else ():
            if (alias not in entries or alias in pointers) and alias not in owners:
                owners[alias] = name
    for alias, target in pointers.items():
        if target in entries and target not in pointers and alias not in owners:
            owners[alias] = target
    for alias in pointers.keys() - owners.keys():
        del entries[alias]
    for alias, owner in owners.items():
        entries[alias] = entries[owner]
    return entries


@functools.cache
def load() -> dict[str, dict[str, Any]]:
    """Every priced model, by litellm's key ("claude-sonnet-4-5", "openai/gpt-4o", ...)."""
    entries = json.loads(bundled_path().read_bytes())
    entries.pop(RULES_KEY, None)
    return expand_aliases(entries)
