"""Provider credentials and the model catalogue, from the providers secret.

Pure functions: the secret's document and litellm's local price map in, an
immutable catalogue out. A model id is `provider/model`; the provider's
`type` (default: its own name) is the litellm provider that speaks its
dialect, so `{"my-vllm": {"type": "openai", "api_base": ...}}` serves any
OpenAI-compatible server. What each type needs and does is its family's
(handler/providers/families/): an entry its family cannot use is left out, logged.

Names resolve as Anthropic's API resolves them: a dated id
(`claude-haiku-4-5-20251001`) and its undated alias (`claude-haiku-4-5`) are
the same model, whichever of the two the catalogue lists, because clients
(Claude Code among them) send either. The secret's `aliases` add names of the
operator's own (`{"opus": "anthropic/claude-opus-4-5"}`); an alias ending in
`*` is a prefix pattern (`{"claude-opus-*": "anthropic/claude-opus-4-8"}`) for
the names clients invent release after release. Precedence: a catalogue id,
then an exact alias, then a name (bare or `provider/name`, dated or not) that
exactly one model answers to, then the longest matching pattern; else 404.

The secret's `fallbacks` maps a model id, an alias or an alias pattern to the
operator's default chain (`{"claude-opus-*": ["bedrock/...", "vertex/..."]}`):
catalogue ids tried in order when the model fails, for a request that names
`"default"` or sends no `fallbacks` with a key that runs default chains.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping

from ..protocol.errors import GatewayError
from .families import Family, family

log = logging.getLogger(__name__)

EDENAI_ROUTER = "@edenai"
# An alias ending in this matches every name that begins with the rest of it.
PATTERN = "*"
# At most this many models in a chain, as in a request's own `fallbacks`.
MAX_CHAIN = 3
# Anthropic's snapshot suffix: `claude-sonnet-4-5-20250929` is a snapshot of `claude-sonnet-4-5`.
_DATED = re.compile(r"^(?P<base>.+)-(?P<date>20\d{6})$")


def undated(name: str) -> str:
    match = _DATED.match(name)
    return match["base"] if match else name


def same_model(listed: str, requested: str) -> bool:
    """One name is the other's dated snapshot: two different dates are two different models."""
    return listed != requested and undated(listed) == undated(requested) \
        and (undated(listed) == listed or undated(requested) == requested)


@dataclass(frozen=True)
class Provider:
    name: str
    type: str
    api_key: str | None = field(default=None, repr=False)
    api_base: str | None = None
    # The type's other fields (aws_region, api_version, credentials, ...): never in repr,
    # as some are credentials; `family.credentials` names those.
    settings: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def family(self) -> Family:
        return family(self.type)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every credential string of this entry, for redaction (a service-account key's too)."""
        found: list[str] = []
        for name in self.family.credentials:
            _collect_strings(self.api_key if name == "api_key" else self.settings.get(name), found)
        return tuple(found)


def _collect_strings(value: Any, found: list[str]) -> None:
    """The strings in a value and the mappings in it. At module level: a nested function that
    calls itself is a reference cycle, left for the garbage collector each time it is made,
    and every request redacts with its provider's secrets."""
    if isinstance(value, str):
        found.append(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect_strings(item, found)


@dataclass(frozen=True)
class Model:
    id: str
    provider: Provider
    name: str
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def litellm_model(self) -> str:
        return f"{self.provider.type}/{self.name}"

    @property
    def speaks_anthropic(self) -> bool:
        return self.provider.family.speaks_anthropic(self.name)


@dataclass(frozen=True)
class Catalogue:
    providers: Mapping[str, Provider]
    models: Mapping[str, Model]
    aliases: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # The operator's default chains: a model id, alias or pattern -> catalogue ids.
    chains: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def chain_for(self, requested: str, model: Model) -> tuple[str, ...] | None:
        """The default chain for a request naming `requested` (resolved to `model`): the name
        as sent, then the model's catalogue id, then the longest pattern that the name as sent
        or the model's own name begins with. None: the operator configured none."""
        for name in (requested, model.id):
            if name in self.chains and not is_pattern(name):
                return self.chains[name]
        for name in (requested, model.name):
            pattern = longest_pattern(self.chains, name)
            if pattern is not None:
                return self.chains[pattern]
        return None

    def resolve(self, requested: str) -> Model:
        """A catalogue id, an operator's exact alias, a name (bare or `provider/name`, dated
        or not) that exactly one model answers to, or the longest alias pattern that matches.
        Unknown: 404, as Anthropic answers."""
        if requested in self.models:
            return self.models[requested]
        if requested in self.aliases and not is_pattern(requested):
            return self.models[self.aliases[requested]]
        try:
            return self._by_name(requested)
        except GatewayError as error:
            if error.status != 404:
                raise
            pattern = longest_pattern(self.aliases, requested)
            if pattern is None:
                raise
            return self.models[self.aliases[pattern]]

    def _by_name(self, requested: str) -> Model:
        provider, slash, name = requested.partition("/")
        if slash:
            if not provider or not name:
                raise GatewayError(400, f"Malformed model id {requested!r}: expected 'provider/model'.")
            if provider not in self.providers:
                raise GatewayError(404, f"Model {requested!r}: provider {provider!r} is not configured.")
            candidates = [m for m in self.models.values() if m.provider.name == provider]
        else:
            candidates, name = list(self.models.values()), requested
        matches = [m for m in candidates if m.name == name] or [m for m in candidates if same_model(m.name, name)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            ids = ", ".join(sorted(m.id for m in matches))
            raise GatewayError(400, f"Model {requested!r} is ambiguous: use one of {ids}.")
        raise GatewayError(404, f"Model {requested!r} is not in this gateway's catalogue.")


def is_pattern(alias: str) -> bool:
    return alias.endswith(PATTERN)


def longest_pattern(aliases: Mapping[str, str], name: str) -> str | None:
    """The pattern alias whose prefix is the longest one `name` begins with (None: no pattern matches)."""
    matching = [alias for alias in aliases if is_pattern(alias) and name.startswith(alias[:-len(PATTERN)])]
    return max(matching, key=len, default=None)


def pattern_problem(alias: str) -> str | None:
    """Why an alias with a `*` is not a pattern the gateway can apply (None: it is, or has no `*`)."""
    if PATTERN not in alias:
        return None
    if alias.count(PATTERN) > 1 or not is_pattern(alias):
        return "may have '*' only at its end, as a prefix pattern such as 'claude-opus-*'"
    if alias == PATTERN:
        return "would match every name, typos too: give a prefix, such as 'claude-opus-*'"
    if EDENAI_ROUTER.startswith(alias[:-len(PATTERN)]):
        return "would match @edenai, the router's name"
    return None


def checked_aliases(document: Mapping[str, Any], catalogue: Catalogue) -> tuple[dict[str, str], list[str]]:
    """The secret's `aliases` that resolve (alias -> catalogue id), and what is wrong with
    the others: an alias (exact or pattern) must name a model this catalogue resolves, may
    not hide a catalogue id or @edenai, and has `*` only at its end."""
    aliases = document.get("aliases")
    if aliases is None:
        return {}, []
    if not isinstance(aliases, Mapping):
        return {}, ["aliases: must be an object mapping a name (or a 'prefix-*' pattern) to a model id"]
    kept, problems = {}, []
    plain = replace(catalogue, aliases=MappingProxyType({}))  # a target is a model, never another alias
    for alias, target in aliases.items():
        if not alias or alias == EDENAI_ROUTER or alias in catalogue.models:
            problems.append(f"aliases: {alias!r} may not be an alias (empty, @edenai or a catalogue id)")
        elif pattern_problem(alias):
            problems.append(f"aliases: {alias!r} {pattern_problem(alias)}")
        elif not isinstance(target, str):
            problems.append(f"aliases: {alias!r} must name a model id")
        else:
            try:
                kept[alias] = plain.resolve(target).id
            except GatewayError as error:
                problems.append(f"aliases: {alias!r} -> {error.message} "
                                "An alias names a catalogue id: `gateway-admin providers show` lists them.")
    return kept, problems


def checked_chains(document: Mapping[str, Any], catalogue: Catalogue) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """The secret's `fallbacks` (default chains) that can run, and what is wrong with the
    others: a key is a model id, an alias or a 'prefix-*' pattern; a chain lists at most
    3 catalogue ids (exact ids: a chain says where a failed request goes, no guessing)."""
    chains = document.get("fallbacks")
    if chains is None:
        return {}, []
    if not isinstance(chains, Mapping):
        return {}, ["fallbacks: must be an object mapping a model, alias or 'prefix-*' pattern to a list of model ids"]
    kept, problems = {}, []
    for name, chain in chains.items():
        if not isinstance(name, str) or not name or name == EDENAI_ROUTER or pattern_problem(name):
            problems.append(f"fallbacks: {name!r} {pattern_problem(str(name)) or 'is not a model, alias or pattern'}")
        elif not isinstance(chain, list) or not 1 <= len(chain) <= MAX_CHAIN:
            problems.append(f"fallbacks: {name!r} must list 1 to {MAX_CHAIN} model ids")
        elif unknown := [target for target in chain if not isinstance(target, str) or target not in catalogue.models]:
            problems.append(f"fallbacks: {name!r} names {', '.join(map(repr, unknown))}, not catalogue ids "
                            "(`gateway-admin providers show` lists them)")
        else:
            kept[name] = tuple(chain)
    return kept, problems


def _chains(document: Mapping[str, Any], catalogue: Catalogue) -> dict[str, tuple[str, ...]]:
    kept, problems = checked_chains(document, catalogue)
    for problem in problems:
        log.error("%s: skipped", problem)
    return kept


def _aliases(document: Mapping[str, Any], catalogue: Catalogue) -> dict[str, str]:
    kept, problems = checked_aliases(document, catalogue)
    for problem in problems:
        log.error("%s: skipped", problem)
    return kept


def provider_problems(name: str, conf: Any) -> list[str]:
    """Why the entry `name` cannot be used as it is (empty: it can)."""
    if not isinstance(conf, Mapping):
        return ["configuration is not an object"]
    return family(str(conf.get("type") or name)).problems(conf)


def parse_providers(document: Mapping[str, Any]) -> dict[str, Provider]:
    providers = {}
    for name, conf in (document.get("providers") or {}).items():
        problems = provider_problems(name, conf)
        if problems:
            log.error("provider %r: %s; skipped", name, "; ".join(problems))
            continue
        providers[name] = Provider(
            name=name,
            type=str(conf.get("type") or name),
            api_key=conf.get("api_key"),
            api_base=conf.get("api_base"),
            settings=MappingProxyType({k: v for k, v in conf.items() if k not in ("type", "api_key", "api_base")}),
        )
    return providers


def _price_entry(cost_map: Mapping[str, Any], provider: Provider, name: str) -> Mapping[str, Any]:
    return cost_map.get(f"{provider.type}/{name}") or cost_map.get(name) or {}


def build_catalogue(document: Mapping[str, Any], cost_map: Mapping[str, Any]) -> Catalogue:
    """Explicit `models` if the secret lists them, else every priced chat model of a configured provider."""
    providers = parse_providers(document)
    models: dict[str, Model] = {}
    listed = document.get("models")
    if listed:
        for model_id, overrides in listed.items():
            provider_name, slash, name = model_id.partition("/")
            provider = providers.get(provider_name)
            if not slash or provider is None or not name:
                log.error("model %r: no configured provider, skipped", model_id)
                continue
            # An Azure deployment's name is the operator's: `base_model` names the priced model.
            priced_as = (overrides or {}).get("base_model") or name
            info = {**_price_entry(cost_map, provider, priced_as), **(overrides or {})}
            models[model_id] = Model(model_id, provider, name, MappingProxyType(info))
    else:
        by_type: dict[str, list[Provider]] = {}
        for provider in providers.values():
            by_type.setdefault(provider.type, []).append(provider)
        for key, info in cost_map.items():
            if not isinstance(info, Mapping) or info.get("mode") != "chat":
                continue
            for provider in by_type.get(info.get("litellm_provider"), ()):
                name = key.removeprefix(provider.type + "/")
                if "/" in name:
                    continue
                model_id = f"{provider.name}/{name}"
                models.setdefault(model_id, Model(model_id, provider, name, MappingProxyType(dict(info))))
    catalogue = Catalogue(MappingProxyType(providers), MappingProxyType(models))
    return replace(catalogue, aliases=MappingProxyType(_aliases(document, catalogue)),
                   chains=MappingProxyType(_chains(document, catalogue)))
