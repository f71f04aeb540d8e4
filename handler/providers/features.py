"""What a served model can do with structured outputs, effort and adaptive thinking.

Pure data and one lookup. litellm's price map flags these per model
(`supports_native_structured_output`, `supports_output_config`, ...) when it
knows the model; an operator's `models` entry may set the same flags. Where
neither says, a Claude model's name says it: Anthropic documents each feature
for a tier from a version on (below), and every newer version keeps it. A model
that speaks another API gets what the gateway translates for it
(pipeline/adaptation.py): a JSON-schema format where litellm says the model
takes one, effort as reasoning effort where it reasons, never adaptive thinking.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from .catalogue import Model

# Any tier Anthropic names after the ones below (fable, mythos, ...): they arrived with
# Claude 5, after every feature here existed.
OTHER_TIERS = "*"

# The first version of each tier that has the feature, from Anthropic's documentation:
# - structured outputs: "generally available ... for Claude Opus 4.6, Claude Sonnet 4.6,
#   Claude Sonnet 4.5, Claude Opus 4.5, and Claude Haiku 4.5"
#   (https://platform.claude.com/docs/en/build-with-claude/structured-outputs);
# - effort: Claude Opus 4.5 first, `max` from Opus 4.6, `xhigh` from Opus 4.7; Sonnet 5 takes
#   low..max with xhigh (https://platform.claude.com/docs/en/build-with-claude/effort);
# - adaptive thinking: Claude Opus 4.6 and Sonnet 4.6 on; "older models (Sonnet 4.5, Opus
#   4.5, etc.) do not support adaptive thinking"; Fable 5, Mythos 5, Opus 5 and Sonnet 5 do
#   (https://platform.claude.com/docs/en/build-with-claude/adaptive-thinking, and Bedrock's
#   list of the same models: docs.aws.amazon.com/bedrock/latest/userguide/claude-messages-adaptive-thinking.html).
# Haiku has none of effort or adaptive thinking at 4.5 (litellm's flags agree); a Haiku 5
# is taken to have what every Claude 5 model has.
FIRST_VERSION: Mapping[str, Mapping[str, tuple[int, int]]] = {
    "structured_outputs": {"opus": (4, 5), "sonnet": (4, 5), "haiku": (4, 5), OTHER_TIERS: (5, 0)},
    "effort":             {"opus": (4, 5), "sonnet": (4, 6), "haiku": (5, 0), OTHER_TIERS: (5, 0)},
    "effort_max":         {"opus": (4, 6), "sonnet": (4, 6), "haiku": (5, 0), OTHER_TIERS: (5, 0)},
    "effort_xhigh":       {"opus": (4, 7), "sonnet": (5, 0), "haiku": (5, 0), OTHER_TIERS: (5, 0)},
    "adaptive_thinking":  {"opus": (4, 6), "sonnet": (4, 6), "haiku": (5, 0), OTHER_TIERS: (5, 0)},
}

# litellm's flags for the same features (any one true is enough: Bedrock's entries carry
# structured outputs under a flag of their own).
LITELLM_FLAGS: Mapping[str, tuple[str, ...]] = {
    "structured_outputs": ("supports_native_structured_output", "supports_bedrock_native_structured_output"),
    "effort": ("supports_output_config",),
    "effort_max": ("supports_max_reasoning_effort",),
    "effort_xhigh": ("supports_xhigh_reasoning_effort",),
    "adaptive_thinking": ("supports_adaptive_thinking",),
}

# `claude-opus-4-6`, `claude-haiku-4-5-20251001`, `anthropic.claude-opus-4-6-v1`,
# `claude-sonnet-4-5@20250929`, `claude-opus-4-20250514` (Opus 4.0): tier, major, minor.
# The old order (`claude-3-7-sonnet`) has no tier first and predates every feature here.
_CLAUDE_NAME = re.compile(r"claude-(?P<tier>[a-z]+)-(?P<major>\d+)(?:-(?P<minor>\d{1,2}))?(?!\d)")


@dataclass(frozen=True)
class Features:
    structured_outputs: bool = False
    effort_levels: tuple[str, ...] = ()  # of "low", "medium", "high", "max", "xhigh"
    adaptive_thinking: bool = False


def claude_version(name: str) -> tuple[str, tuple[int, int]] | None:
    """A Claude model name's tier and version; None for any other name."""
    match = _CLAUDE_NAME.search(name)
    if match is None:
        return None
    return match["tier"], (int(match["major"]), int(match["minor"] or 0))


def documented(feature: str, name: str) -> bool:
    """Whether Anthropic documents `feature` for the Claude model `name`."""
    version = claude_version(name)
    if version is None:
        return False
    tier, number = version
    table = FIRST_VERSION[feature]
    return number >= table.get(tier, table[OTHER_TIERS])


def _flagged(feature: str, info: Mapping[str, Any]) -> bool | None:
    flags = [info[flag] for flag in LITELLM_FLAGS[feature] if flag in info]
    return any(flag is True for flag in flags) if flags else None


def features(model: Model) -> Features:
    info = model.info
    if not model.speaks_anthropic:
        reasons = info.get("supports_reasoning") is True
        return Features(structured_outputs=info.get("supports_response_schema") is True,
                        effort_levels=("low", "medium", "high") if reasons else ())

    def has(feature: str) -> bool:
        flagged = _flagged(feature, info)
        return documented(feature, model.name) if flagged is None else flagged

    levels = ("low", "medium", "high") if has("effort") else ()
    levels += tuple(level for level in ("max", "xhigh") if levels and has(f"effort_{level}"))
    return Features(structured_outputs=has("structured_outputs"), effort_levels=levels,
                    adaptive_thinking=has("adaptive_thinking"))
