"""What a provider family must answer, whatever its wire format.

A family is the kind of provider an entry of the providers secret names with
its `type`: which fields the entry must carry (and which of them are
credentials), the connection arguments a call to it gets, how its failures
read in Anthropic's terms, and whether a model of it takes Anthropic's
Messages body as it is. The gateway's pipeline asks the family; it never
branches on a family's name. Unknown types are litellm providers (`groq`,
`mistral`, ...) and get this base: an `api_key` and an optional `api_base`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Mapping

from ...protocol.errors import GatewayError, redact

if TYPE_CHECKING:
    from ..catalogue import Model, Provider

# litellm falls back to the environment's key when given none: a provider configured
# without a key (a local server) gets this instead.
NO_CREDENTIAL = "none"
# What litellm.acount_tokens takes: a family's other connection arguments are not for it.
COUNT_ARGUMENTS = ("model", "messages", "tools", "system", "api_key", "api_base")
# Fields every entry may carry, whatever its type.
COMMON_FIELDS = frozenset({"type", "api_base"})


class Family:
    type = ""
    # Fields the provider entry must set, and the optional ones its type understands.
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ("api_key",)
    # Fields whose values never leave the gateway: not logged, not shown, not relayed.
    credentials: tuple[str, ...] = ("api_key",)
    # Where calls go when the entry names no api_base. Always passing one keeps litellm
    # from reading *_BASE_URL from the environment (which, on a developer's machine, may
    # point back at this gateway).
    default_api_base: str | None = None
    # A self-hosted server of this dialect may need no key: an api_base then stands in for it.
    key_or_api_base = False

    def problems(self, conf: Mapping[str, Any]) -> list[str]:
        """Why an entry cannot be used, in words an operator can act on (empty: it can)."""
        if self.key_or_api_base and not conf.get("api_key") and not conf.get("api_base"):
            return [f"missing api_key (type {self.type!r} needs api_key, or api_base for a server without keys)"]
        missing = [name for name in self.required if conf.get(name) in (None, "", {})]
        if not missing:
            return []
        return [f"missing {', '.join(missing)} (type {self.type!r} needs {', '.join(self.required)})"]

    def unknown_fields(self, conf: Mapping[str, Any]) -> list[str]:
        """Fields this type does not read: a typo `providers set` refuses, the gateway ignores.
        The base (any litellm provider) cannot tell, so it never says."""
        if not self.type:
            return []
        return sorted(set(conf) - COMMON_FIELDS - set(self.required) - set(self.optional))

    def speaks_anthropic(self, model_name: str) -> bool:
        """Whether this model takes Anthropic's Messages body as the caller sent it."""
        return False

    # How many stop sequences a request may carry, where the provider limits them.
    max_stop_sequences: int | None = None
    # Whether the route takes system-role messages where they stand in the conversation (Chat
    # Completions does); else they join the system prompt and the response says so.
    system_messages_in_place = False

    def refused_fields(self, model: Model, body: Mapping[str, Any]) -> list[str]:
        """Request fields this model refuses with a 400 (adaptation lists them as dropped). For an
        Anthropic-type model these are the only top-level fields of the caller's left out: what
        its schema is known to refuse, from the target's own source of truth."""
        return []

    def moved_blocks(self, body: Mapping[str, Any], model: Model) -> tuple[str, ...]:
        """Blocks this model's route sends in another form (adaptation lists them as moved,
        `messages[0].content[1]->text`)."""
        return ()

    def refused_betas(self, model: Model, anthropic_beta: str) -> list[str]:
        """The caller's `anthropic-beta` values this model's platform refuses: its route leaves
        them out, and adaptation lists them as dropped (`anthropic_beta.<name>`)."""
        return []

    def model_arguments(self, model: Model) -> dict[str, Any]:
        """What a call to this model needs beyond the connection and the request (none for
        litellm, which works it out itself)."""
        return {}

    # What of Anthropic's web search tool reaches the provider where it searches (litellm
    # turns it into Gemini's googleSearch, which takes no settings).
    web_search_fields: frozenset[str] = frozenset({"type", "name"})

    def takes_web_search(self, model: Model) -> bool:
        """Whether Anthropic's web search tool has an equivalent here: litellm translates it
        where the price map says the model searches."""
        return model.info.get("supports_web_search") is True

    def connection(self, provider: Provider) -> dict[str, Any]:
        """Credential and endpoint of a litellm call: always from the providers secret."""
        connection: dict[str, Any] = {"api_key": provider.api_key or NO_CREDENTIAL}
        api_base = provider.api_base or self.default_api_base
        if api_base:
            connection["api_base"] = api_base
        return connection

    def unsendable(self, body: Mapping[str, Any], model: Model) -> str | None:
        """A part of the request this model's route would drop or fetch (None: it carries all)."""
        return None

    def status_of(self, exc: BaseException) -> int | None:
        """The status a failure really means, where the family's errors say more than their
        HTTP status (None: take the status as it is)."""
        return None

    async def send(self, call: dict[str, Any]) -> Any:
        """One upstream attempt: litellm's Anthropic interface unless the family overrides it."""
        return await litellm_route().create(call)

    async def count_tokens(self, call: dict[str, Any]) -> tuple[int, str]:
        """Input tokens and how they were counted: litellm's counting (the provider's own API
        where litellm has one, else a local tokenizer) unless the family overrides it."""
        result = await litellm_route().count_tokens({k: call[k] for k in COUNT_ARGUMENTS if k in call})
        if getattr(result, "error", False):
            message = redact(str(result.error_message), [call.get("api_key")])
            raise GatewayError(502, f"Token counting failed: {message}", error_type="api_error")
        return int(result.total_tokens), str(result.tokenizer_type or "unknown")


def litellm_route():
    """handler.providers.litellm_route, imported on first use (it imports litellm): a gateway
    whose providers all have direct routes never pays for it."""
    return importlib.import_module("..litellm_route", __package__)


GENERIC = Family()
