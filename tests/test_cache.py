"""RefreshingValue: a fake clock drives the TTL, the refresh gap and the staleness bound."""

from __future__ import annotations

import asyncio

import pytest

from handler.cache import RefreshingValue
from handler.protocol.errors import GatewayError


class Store:
    def __init__(self) -> None:
        self.now, self.value, self.failing, self.reads = 0.0, "v1", False, 0

    def load(self) -> str:
        self.reads += 1
        if self.failing:
            raise ConnectionError("store down")
        return self.value


def cache(store: Store, **options) -> RefreshingValue[str]:
    return RefreshingValue(store.load, name="keys", clock=lambda: store.now, **options)


def test_a_value_is_served_for_its_whole_ttl_even_when_the_staleness_bound_is_shorter():
    store = Store()
    value = cache(store, ttl=300, min_gap=5, max_staleness=60)
    assert asyncio.run(value.get()) == "v1"
    store.now = 100
    assert asyncio.run(value.get()) == "v1", "a value inside its TTL was refused as stale"
    assert store.reads == 1


def test_no_value_is_served_past_the_staleness_bound_even_within_the_refresh_gap():
    store = Store()
    value = cache(store, ttl=1, min_gap=50, max_staleness=10)
    asyncio.run(value.get())
    store.failing, store.value = True, "v2"
    store.now = 5
    assert asyncio.run(value.get()) == "v1"  # stale within the bound: the store is down
    store.now = 10.5
    with pytest.raises(GatewayError) as refused:
        asyncio.run(value.get())
    assert refused.value.status == 503
    store.failing, store.now = False, 60
    assert asyncio.run(value.get()) == "v2"
