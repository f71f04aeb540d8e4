"""Provider credentials and the model catalogue, from the providers secret.

Pure functions: the secret's document and litellm's local price map in, an
immutable catalogue out. A model id is `provider/model`; the provider's
`type` (default: its own name) is the litellm provider that speaks its
dialect, so `{"my-vllm": {"type": "openai", "api_base": ...}}` serves any
OpenAI-compatible server. What each type needs and does is its family's
(handler/families/): an entry its family cannot use is left out, logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from .errors import GatewayError
from .families import Family, family

log = logging.getLogger(__name__)

EDENAI_ROUTER = "@edenai"


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

        def collect(value: Any) -> None:
            if isinstance(value, str):
                found.append(value)
            elif isinstance(value, Mapping):
                for item in value.values():
                    collect(item)

        for name in self.family.credentials:
            collect(self.api_key if name == "api_key" else self.settings.get(name))
        return tuple(found)


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

    def resolve(self, requested: str) -> Model:
        """A catalogue id, or a bare model name when exactly one provider has it."""
        if requested in self.models:
            return self.models[requested]
        provider, slash, name = requested.partition("/")
        if slash:
            if not provider or not name:
                raise GatewayError(400, f"Malformed model id {requested!r}: expected 'provider/model'.")
            if provider not in self.providers:
                raise GatewayError(400, f"Model {requested!r}: provider {provider!r} is not configured.")
            raise GatewayError(400, f"Model {requested!r} is not in this gateway's catalogue.")
        matches = [m for m in self.models.values() if m.name == requested]
        if len(matches) == 1:
            return matches[0]
        if matches:
            ids = ", ".join(sorted(m.id for m in matches))
            raise GatewayError(400, f"Model {requested!r} is ambiguous: use one of {ids}.")
        raise GatewayError(400, f"Model {requested!r} is not in this gateway's catalogue.")


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
    return Catalogue(MappingProxyType(providers), MappingProxyType(models))
