"""What a request cost, from litellm's local price map (or the providers secret's prices).

Anthropic's `input_tokens` excludes cache reads and writes, so each of the
four figures is priced once at its own rate; litellm's own cost helpers
expect prompt tokens that include the cached ones, which double counts them.
Decimal arithmetic keeps sums across millions of requests exact to the cent.

Server tools are priced per use: a web search at the map's
`search_context_cost_per_query` (what litellm charges), else at Anthropic's
published $10 per 1,000 searches. Web fetch has no fee of its own (its
content is billed as input tokens); code execution is billed by container
hour per organization, with a free daily allowance, so no request can be
charged for it and it stays unpriced here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Mapping

from ..protocol.usage import Usage

# USD amounts are kept to the picodollar (DynamoDB numbers, the ledger's sums).
USD_QUANTUM = Decimal("1e-12")
# Anthropic's published web search price, for models the price map gives none.
DEFAULT_WEB_SEARCH_PRICE = Decimal("0.01")


@dataclass(frozen=True)
class Price:
    input: Decimal
    output: Decimal
    cache_write: Decimal
    cache_read: Decimal
    web_search: Decimal = DEFAULT_WEB_SEARCH_PRICE

    def per_use(self, tool_use: str) -> Decimal:
        """The fee of one use of a server tool, by its usage name (web_search_requests, ...)."""
        return self.web_search if tool_use == "web_search_requests" else Decimal(0)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


# Prices already read from a catalogue's model entries, by the entry (held, so its id is not
# reused): each request prices its model, and five Decimals and a Price cost more than its own
# planning. Only read-only entries (the catalogue's MappingProxyType) are kept, a few thousand at
# most: a catalogue reloaded with other prices has new entries, read afresh.
_READ: dict[int, tuple[Mapping[str, Any], Price | None]] = {}
_MAX_READ = 4096


def price_of(info: Mapping[str, Any]) -> Price | None:
    """Per-token prices; None when the model has no input or output price (unpriced)."""
    if type(info) is not MappingProxyType:
        return _price_of(info)
    read = _READ.get(id(info))
    if read is not None and read[0] is info:
        return read[1]
    price = _price_of(info)
    if len(_READ) >= _MAX_READ:
        _READ.clear()
    _READ[id(info)] = (info, price)
    return price


def _price_of(info: Mapping[str, Any]) -> Price | None:
    input_price = _decimal(info.get("input_cost_per_token"))
    output_price = _decimal(info.get("output_cost_per_token"))
    if input_price is None or output_price is None:
        return None
    # Without explicit cache prices a cache token costs what an input token does.
    cache_write = _decimal(info.get("cache_creation_input_token_cost"))
    cache_read = _decimal(info.get("cache_read_input_token_cost"))
    search = info.get("search_context_cost_per_query")
    web_search = _decimal(search.get("search_context_size_medium")) if isinstance(search, Mapping) else None
    return Price(input_price, output_price,
                 input_price if cache_write is None else cache_write,
                 input_price if cache_read is None else cache_read,
                 web_search or DEFAULT_WEB_SEARCH_PRICE)


def cost_of(usage: Usage, price: Price | None) -> Decimal:
    if price is None:
        return Decimal(0)
    total = (usage.input_tokens * price.input
             + usage.output_tokens * price.output
             + usage.cache_creation_input_tokens * price.cache_write
             + usage.cache_read_input_tokens * price.cache_read
             + sum((uses * price.per_use(name) for name, uses in usage.server_tool_use.items()), Decimal(0)))
    return total.quantize(USD_QUANTUM)
