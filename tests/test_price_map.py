"""The price map is litellm's, read without importing litellm.

Every entry must equal what `litellm.model_cost` holds after litellm's own
loading (offline mode, the bundled file), aliases included: if a litellm
upgrade changes how it loads the map, this fails before prices drift.
"""

from __future__ import annotations

import litellm

from handler.providers.price_map import expand_aliases, load


def test_every_entry_equals_litellms_own():
    ours = load()
    assert set(ours) == set(litellm.model_cost)
    different = [name for name, info in litellm.model_cost.items() if dict(info) != ours[name]]
    assert different == []


def test_aliases_serve_their_owner_and_never_replace_a_real_row():
    entries = expand_aliases({
        "model-a": {"price": 1, "aliases": ["a-alias", "model-b"]},
        "model-b": {"price": 2},
        "pointer": {"alias_of": "model-b"},
        "dangling": {"alias_of": "nowhere"},
    })
    assert entries["a-alias"] is entries["model-a"] and entries["model-a"] == {"price": 1}
    assert entries["model-b"] == {"price": 2}  # a real row keeps its own price
    assert entries["pointer"] is entries["model-b"]
    assert "dangling" not in entries
