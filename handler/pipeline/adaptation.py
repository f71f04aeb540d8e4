"""What one model is sent from a caller's body, and what it cannot be sent.

Pure. Two things change a body on its way to a model, and both are said in a
response header rather than done silently:

- `max_tokens` above the serving model's output limit (the catalogue's
  `max_output_tokens`) is lowered to it: Claude Code asks 32000 of every
  model, gpt-4o-mini takes 16384, and a real provider answers 400, so a
  fallback from Claude to it would fail. Header `x-edenai-max-tokens-clamped`.
- A provider that does not speak Anthropic's API gets what litellm can
  translate: `output_config.format` (or the beta `output_format`) becomes a
  JSON-schema response format, `output_config.effort` and `thinking` become
  reasoning effort where the model reasons. Everything else (top_k,
  context_management, cache_control, service_tier, container, mcp_servers,
  speed, fields the gateway has never heard of, ...) has no equivalent there
  and is listed in `x-edenai-dropped-fields`, as are `thinking.display` and
  tool search's `tools[].defer_loading` (every tool goes as an ordinary one);
  so is a server tool (code execution, web fetch, ...) the model cannot run,
  as `tools.<name>`, and web search where its provider has none.

Anthropic-type providers get every field as sent (pipeline/calls.py), except
what the platform's schema is known to refuse (family.refused_fields, e.g. a
key InvokeModel does not take for Claude on Bedrock) and the `anthropic-beta`
values it does not take (family.refused_betas, listed as
`anthropic_beta.<name>`); metadata beyond `user_id` stays at the gateway.
All of these are listed too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from ..providers.catalogue import Model

DROPPED_HEADER = "x-edenai-dropped-fields"
MOVED_HEADER = "x-edenai-moved-fields"
CLAMPED_HEADER = "x-edenai-max-tokens-clamped"
DEFAULT_MAX_TOKENS = 1024  # the seed's default

# Never upstream, never "dropped": they are addressed to the gateway.
GATEWAY_FIELDS = frozenset({"fallbacks", "router_candidates", "extra_headers"})
# Fields litellm translates into Chat Completions as they are given to it...
LITELLM_AS_IS = ("temperature", "top_p", "stop_sequences", "tools", "tool_choice")
# ...and with the ones the call builds itself (calls.translated_arguments).
TRANSLATED_FIELDS = frozenset({"model", "messages", "system", "max_tokens", "stream", "metadata", *LITELLM_AS_IS})
# Anthropic thinking budgets as OpenAI reasoning effort (litellm's buckets).
_EFFORT_BY_BUDGET = ((4096, "low"), (16384, "medium"))
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "max": "high", "xhigh": "high"}
# What of `thinking` reasoning effort carries (the rest, `display` for one, is listed as dropped).
THINKING_AS_EFFORT = frozenset({"type", "budget_tokens"})
# Tool search's flag, as x-edenai-dropped-fields names it.
DEFERRED_TOOLS = "tools[].defer_loading"


def max_output(model: Model) -> int | None:
    for name in ("max_output_tokens", "max_tokens"):
        value = model.info.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def clamped_max_tokens(model: Model, requested: int | None) -> int:
    limit, wanted = max_output(model), requested or DEFAULT_MAX_TOKENS
    return min(wanted, limit) if limit else wanted


def structured_format(body: Mapping[str, Any]) -> Any:
    """The JSON-schema format the caller asked for, in either of Anthropic's two places."""
    config = body.get("output_config")
    for form in (body.get("output_format"), config.get("format") if isinstance(config, dict) else None):
        if isinstance(form, dict):
            return form
    return None


def can_structure(model: Model) -> bool | None:
    """Whether the model takes a JSON-schema output format (None: the catalogue does not say)."""
    flag = model.info.get("supports_response_schema")
    return None if flag is None else bool(flag)


def _reasoning_effort(body: Mapping[str, Any]) -> str | None:
    """`output_config.effort`, else the thinking budget bucketed; None when no reasoning is asked."""
    thinking = body.get("thinking") if isinstance(body.get("thinking"), dict) else {}
    config = body.get("output_config") if isinstance(body.get("output_config"), dict) else {}
    effort = _EFFORTS.get(str(config.get("effort")))
    if thinking.get("type") == "disabled":
        return None
    if effort:
        return effort
    if thinking.get("type") == "adaptive":
        return "medium"
    if thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens") if isinstance(thinking.get("budget_tokens"), int) else 0
        return next((name for limit, name in _EFFORT_BY_BUDGET if budget < limit), "high")
    return None


@dataclass(frozen=True)
class Adaptation:
    """How one model's call departs from the caller's body."""

    max_tokens: int
    requested_max_tokens: int
    dropped: tuple[str, ...] = ()
    reasoning_effort: str | None = None
    keeps_format: bool = False
    # A thinking budget lowered with max_tokens (Anthropic wants it below max_tokens).
    budget_tokens: int | None = None
    # Anthropic's server tools this model cannot run, by name: left out of its call.
    dropped_tools: frozenset[str] = frozenset()
    # How many stop sequences the provider takes, where it limits them (the rest are listed).
    stop_limit: int | None = None
    # Parts of the request sent elsewhere than the caller put them (`messages[3]->system`).
    moved: tuple[str, ...] = ()
    # `fallbacks` as the provider takes it: "default" to Anthropic's API when the operator has no
    # chain for the model (its own server-side fallback runs it).
    upstream_fallbacks: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.max_tokens != self.requested_max_tokens:
            headers[CLAMPED_HEADER] = f"{self.max_tokens}; requested={self.requested_max_tokens}"
            if self.budget_tokens is not None:
                headers[CLAMPED_HEADER] += f"; thinking.budget_tokens={self.budget_tokens}"
        if self.dropped:
            headers[DROPPED_HEADER] = dropped_header(self.dropped)
        if self.moved:
            headers[MOVED_HEADER] = ", ".join(self.moved)  # the gateway's own words: plain ASCII
        return headers


_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
MAX_DROPPED_HEADER = 1000


def dropped_header(names: tuple[str, ...]) -> str:
    """The dropped fields as one header value: unknown fields are the caller's own names, so
    any but plain ones go JSON-quoted in ASCII (never a character a header cannot carry), and
    a body of thousands of unknown fields cannot make a header a proxy refuses."""
    shown = [name if _PLAIN_NAME.match(name) else json.dumps(name) for name in names]
    value = ", ".join(shown)
    if len(value) <= MAX_DROPPED_HEADER:
        return value
    kept: list[str] = []
    for name in shown:
        if len(", ".join([*kept, name])) > MAX_DROPPED_HEADER - 20:
            break
        kept.append(name)
    return ", ".join(kept) + f", ... (+{len(shown) - len(kept)} more)"


def _extra_metadata(body: Mapping[str, Any]) -> list[str]:
    metadata = body.get("metadata")
    return [f"metadata.{name}" for name in metadata if name != "user_id"] if isinstance(metadata, dict) else []


def _lowered_budget(body: Mapping[str, Any], max_tokens: int, requested: int) -> int | None:
    """The thinking budget our clamp still leaves room for, when the caller's no longer fits
    (a caller's own budget above its own max_tokens goes as sent: Anthropic's 400 is theirs)."""
    thinking = body.get("thinking")
    budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
    if max_tokens == requested or not isinstance(budget, int) or budget < max_tokens \
            or thinking.get("type") != "enabled":
        return None
    return max_tokens - 1


def is_server_tool(tool: Any) -> bool:
    """One of Anthropic's own tools (web search, code execution, ...), which it runs itself."""
    return isinstance(tool, Mapping) and tool.get("type") not in (None, "custom")


def _unrunnable_tools(body: Mapping[str, Any], model: Model) -> list[str]:
    """Server tools a non-Anthropic model has no equivalent for: web search where its
    provider family searches (family.takes_web_search), nothing else."""
    tools = body.get("tools") if isinstance(body.get("tools"), list) else []
    return [str(tool.get("name") or tool.get("type")) for tool in tools if is_server_tool(tool)
            and not (str(tool.get("type")).startswith("web_search") and model.provider.family.takes_web_search(model))]


def _lost_search_settings(body: Mapping[str, Any], model: Model, unrunnable: list[str]) -> list[str]:
    """The settings of a web search tool the model does run that its provider has no place
    for (max_uses, domain lists, ...: family.web_search_fields says what it carries)."""
    carried = model.provider.family.web_search_fields
    return [f"tools.{tool.get('name') or tool.get('type')}.{field}" for tool in body.get("tools") or []
            if is_server_tool(tool) and str(tool.get("type")).startswith("web_search")
            and str(tool.get("name") or tool.get("type")) not in unrunnable
            for field, value in tool.items() if field not in carried and value is not None]


def _chooses_a_server_tool(body: Mapping[str, Any], unrunnable: list[str]) -> bool:
    """Whether tool_choice can no longer be sent: it names a server tool (none is a function
    tool here), or every tool it could choose was left out."""
    choice, tools = body.get("tool_choice"), body.get("tools") or []
    if not isinstance(choice, Mapping):
        return False
    if unrunnable and len(unrunnable) == len(tools):
        return True
    named = choice.get("name") if choice.get("type") == "tool" else None
    return any(is_server_tool(tool) and named in (tool.get("name"), tool.get("type")) for tool in tools)


def _deferred_tools(body: Mapping[str, Any]) -> list[str]:
    """Tool search's `defer_loading`: a translated model cannot search tools, so every tool
    goes to it as an ordinary one (translation/text_forms.py) and the flag is listed."""
    tools = body.get("tools") if isinstance(body.get("tools"), list) else []
    deferred = any(isinstance(tool, Mapping) and tool.get("defer_loading") is not None for tool in tools)
    return [DEFERRED_TOOLS] if deferred else []


def _refused_by_platform(body: Mapping[str, Any], model: Model, anthropic_beta: str | None) -> list[str]:
    """What an Anthropic-type model's platform refuses: body keys, then betas."""
    family = model.provider.family
    fields = [name for name in family.refused_fields(model, body) if name not in GATEWAY_FIELDS]
    return fields + [f"anthropic_beta.{beta}" for beta in family.refused_betas(model, anthropic_beta or "")]


def moved_system_messages(body: Mapping[str, Any], model: Model) -> tuple[str, ...]:
    """System-role messages a route with no place for them in the conversation moves into the
    system prompt (family.system_messages_in_place says which routes have one; a model entry's
    `supports_mid_conversation_system: false`, litellm's name, says a server's chat template
    takes a system message only first, as many open-weight models' do)."""
    if model.speaks_anthropic or (model.provider.family.system_messages_in_place
                                  and model.info.get("supports_mid_conversation_system") is not False):
        return ()
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    return tuple(f"messages[{index}]->system" for index, message in enumerate(messages)
                 if isinstance(message, Mapping) and message.get("role") == "system")


def adapt(body: Mapping[str, Any], model: Model, anthropic_beta: str | None = None) -> Adaptation:
    requested = body.get("max_tokens") or DEFAULT_MAX_TOKENS
    max_tokens = clamped_max_tokens(model, requested)
    if model.speaks_anthropic:
        dropped = _extra_metadata(body) + _refused_by_platform(body, model, anthropic_beta)
        return Adaptation(max_tokens, requested, tuple(dropped),
                          budget_tokens=_lowered_budget(body, max_tokens, requested))
    reasons = model.info.get("supports_reasoning") is True
    effort = _reasoning_effort(body) if reasons else None
    keeps_format = structured_format(body) is not None and can_structure(model) is not False
    family = model.provider.family
    dropped = _extra_metadata(body) + family.refused_fields(model, body)
    unrunnable = _unrunnable_tools(body, model)
    dropped += [f"tools.{name}" for name in unrunnable] + _lost_search_settings(body, model, unrunnable)
    if _chooses_a_server_tool(body, unrunnable) and "tool_choice" not in dropped:
        dropped.append("tool_choice")
    stops = body.get("stop_sequences")
    stop_limit = family.max_stop_sequences
    if stop_limit is not None and "stop_sequences" not in dropped and isinstance(stops, list) \
            and len(stops) > stop_limit:
        dropped.append(f"stop_sequences[{stop_limit}:]")
    else:
        stop_limit = None
    dropped += _deferred_tools(body)
    for name, value in body.items():
        if name in GATEWAY_FIELDS or name in TRANSLATED_FIELDS or value is None:
            continue
        if name == "output_format" and keeps_format:
            continue
        if name == "thinking":
            if value.get("type") != "disabled" and not reasons:
                dropped.append(name)
            elif value.get("type") != "disabled":  # reasoning effort has no say in what is shown
                dropped += [f"thinking.{key}" for key in value if key not in THINKING_AS_EFFORT]
            continue
        if name == "output_config" and isinstance(value, dict):
            for key in value:
                if key == "format" and keeps_format or key == "effort" and reasons:
                    continue
                dropped.append(f"output_config.{key}")
            continue
        dropped.append(name)
    return Adaptation(max_tokens, requested, tuple(dropped), effort, keeps_format,
                      dropped_tools=frozenset(unrunnable), stop_limit=stop_limit,
                      moved=moved_system_messages(body, model) + family.moved_blocks(body, model))
