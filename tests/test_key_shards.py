"""Keys spread over shard secrets: every key found in its shard, one read per unknown key.

Keys are made with gateway-admin (a subprocess against the moto server) and
presented to the gateway under uvicorn; Secrets Manager reads are counted with
a botocore hook on the gateway's client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import boto3
import httpx
import pytest

from handler import aws
from handler.keys import shards as key_shards
from handler.keys.store import hash_key, new_key
from tests.support.stack import new_stack, serve

SHARDS = 4


def admin(stack, *args: str, shards: int = SHARDS) -> subprocess.CompletedProcess:
    env = {**os.environ, "GATEWAY_KEYS_SECRET_ID": stack.settings.keys_secret_id, "GATEWAY_KEY_SHARDS": str(shards)}
    result = subprocess.run([sys.executable, "-m", "handler.admin", *args], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def sm_calls():
    """Secrets Manager calls about keys (the providers secret's reads are not counted)."""
    counted: Counter = Counter()

    def count(event_name, params=None, **_):
        body = (params or {}).get("body") or b"{}"
        if "/providers" not in json.loads(body).get("SecretId", ""):
            counted[event_name.rsplit(".", 1)[1]] += 1

    sm = aws.client("secretsmanager")
    sm.meta.events.register("before-call.secretsmanager.*", count)
    yield counted
    sm.meta.events.unregister("before-call.secretsmanager.*", count)


@pytest.fixture
def sharded(moto_endpoint, fake):
    """A stack configured for 4 shards, resharded by the CLI, with 24 keys made in one bulk call
    (random keys: about one run in 250 leaves a shard empty, so a key is added until none is)."""
    stack = new_stack(fake.url, key_shards=SHARDS)
    admin(stack, "keys", "reshard")
    created = json.loads(admin(stack, "keys", "create", "--name", "bulk", "--count", "24", "--json").stdout)
    while len({shard_of(stack, c["key"]) for c in created}) < SHARDS:
        created.append(json.loads(admin(stack, "keys", "create", "--name", "top-up", "--json").stdout))
    return stack, created


def shard_of(stack, key: str, count: int = SHARDS) -> str:
    return key_shards.shard_of(stack.settings.keys_secret_id, count, hash_key(key))


def models(server, key: str) -> httpx.Response:
    return httpx.get(f"{server.url}/v3/v1/models", headers={"x-api-key": key})


def test_shards_split_the_digest_space_into_equal_ranges():
    assert [key_shards.shard_index("sha256:" + prefix + "0" * 56, 4) for prefix in
            ("00000000", "3fffffff", "40000000", "bfffffff", "c0000000", "ffffffff")] == [0, 0, 1, 2, 3, 3]
    assert key_shards.shard_index("sha256:ffffffff" + "0" * 56, 1) == 0
    assert key_shards.shard_secret_id("gateway/keys", 1, 0) == "gateway/keys", "one shard is the keys secret itself"
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/keys-AbC123"
    assert key_shards.shard_secret_id(arn, 64, 7) == "prod/keys/shard-0007-of-0064"


def test_bulk_create_writes_each_key_into_the_shard_its_digest_names(sharded):
    stack, created = sharded
    per_shard = Counter(shard_of(stack, c["key"]) for c in created)
    assert len(per_shard) == SHARDS, "24 random keys should touch all 4 shards"
    for secret_id, expected in per_shard.items():
        stored = aws.read_json_secret(secret_id)["keys"]
        assert len(stored) == expected and all(shard_of(stack, c["key"]) == secret_id
                                               for c in created if hash_key(c["key"]) in {e["hash"] for e in stored})
    assert aws.read_json_secret(stack.settings.keys_secret_id) == {"keys": [], "moved_to": SHARDS}
    assert {c["name"] for c in created if c["name"] != "top-up"} == {f"bulk-{n:02d}" for n in range(1, 25)}


def test_a_key_in_each_shard_is_served_and_a_cold_start_reads_only_the_shards_it_touches(sharded, sm_calls):
    stack, created = sharded
    one_per_shard = {shard_of(stack, c["key"]): c["key"] for c in created}
    with serve(stack) as server:
        sm_calls.clear()
        first = next(iter(one_per_shard.values()))
        assert models(server, first).status_code == 200
        assert sm_calls == Counter({"GetSecretValue": 1}), "a cold start read more than the one shard it needed"
        for key in one_per_shard.values():
            assert models(server, key).status_code == 200
        assert sm_calls["GetSecretValue"] == SHARDS
        sm_calls.clear()
        for c in created:
            assert models(server, c["key"]).status_code == 200
        assert sm_calls == Counter(), "warm requests read Secrets Manager"


def test_an_unknown_key_costs_at_most_one_read_of_its_shard_and_bursts_are_rate_limited(sharded, sm_calls):
    stack, created = sharded
    with serve(stack) as server:
        assert models(server, created[0]["key"]).status_code == 200
        sm_calls.clear()
        unknown = new_key()
        assert models(server, unknown).status_code == 401
        assert sm_calls["GetSecretValue"] <= 1, "an unknown key cost more than one read of its shard"
        sm_calls.clear()
        statuses = Counter(models(server, new_key()).status_code for _ in range(40))
    assert statuses == Counter({401: 40})
    # 40 random keys land in every shard: each shard's first read, and no refresh within the gap.
    assert sm_calls["GetSecretValue"] <= SHARDS + 1


def test_a_new_key_is_found_by_one_read_of_its_shard(moto_endpoint, fake, sm_calls):
    stack = new_stack(fake.url, key_shards=SHARDS, secret_refresh_gap=0.0)
    admin(stack, "keys", "reshard")
    with serve(stack) as server:
        warm = json.loads(admin(stack, "keys", "create", "--name", "warm", "--json").stdout)["key"]
        assert models(server, warm).status_code == 200
        later = json.loads(admin(stack, "keys", "create", "--name", "later", "--json").stdout)["key"]
        sm_calls.clear()
        assert models(server, later).status_code == 200
        assert sm_calls["GetSecretValue"] == 1, "a new key cost more than one read of its shard"


def test_a_revoked_key_in_a_shard_that_fails_to_load_is_refused_and_other_shards_serve(sharded):
    stack, created = sharded
    victim = created[0]
    admin(stack, "keys", "revoke", victim["key_id"])
    broken = shard_of(stack, victim["key"])
    boto3.client("secretsmanager").delete_secret(SecretId=broken, ForceDeleteWithoutRecovery=True)
    elsewhere = next(c["key"] for c in created if shard_of(stack, c["key"]) != broken)
    with serve(stack) as server:
        refused = models(server, victim["key"])
        assert refused.status_code == 503, f"a revoked key in an unreadable shard got {refused.status_code}"
        assert refused.json()["error"]["message"] == "The keys store is unavailable; try again shortly."
        assert models(server, elsewhere).status_code == 200


def test_a_single_secret_deployment_keeps_working_through_its_migration(moto_endpoint, fake, sm_calls):
    stack = new_stack(fake.url)  # GATEWAY_KEY_SHARDS=1: the keys secret alone, as before sharding
    before = [stack.add_key(name=f"old-{n}") for n in range(12)]
    with serve(stack) as old_config:
        assert all(models(old_config, key).status_code == 200 for key in before)
        moved = json.loads(admin(stack, "keys", "reshard", "--shards", "8", "--json", shards=1).stdout)
        assert moved == {"from": 1, "to": 8, "moved": 12}
        created = json.loads(admin(stack, "keys", "create", "--name", "new", "--json", shards=1).stdout)["key"]
        old_config.app.state.keys.invalidate()  # as a new instance of the old configuration would start
        sm_calls.clear()
        assert all(models(old_config, key).status_code == 200 for key in [*before, created])
        assert sm_calls["GetSecretValue"] <= 1 + 8, "the old configuration follows the base secret's mark"
    assert aws.read_json_secret(stack.settings.keys_secret_id) == {"keys": [], "moved_to": 8}
    stack.settings = stack.settings.__class__(**{**stack.settings.__dict__, "key_shards": 8})
    with serve(stack) as new_config:
        assert all(models(new_config, key).status_code == 200 for key in [*before, created])
    listed = json.loads(admin(stack, "keys", "list", "--json", shards=8).stdout)
    assert sorted(e["name"] for e in listed) == sorted([*(f"old-{n}" for n in range(12)), "new"])


def test_a_second_reshard_is_followed_by_gateways_still_on_the_first_layout(moto_endpoint, fake):
    stack = new_stack(fake.url, key_shards=SHARDS)
    admin(stack, "keys", "reshard")
    created = json.loads(admin(stack, "keys", "create", "--name", "k", "--count", "12", "--json").stdout)
    assert json.loads(admin(stack, "keys", "reshard", "--shards", "16", "--json").stdout)["to"] == 16
    with serve(stack) as server:  # still configured for 4 shards: each follows its shard's moved_to mark
        assert {models(server, c["key"]).status_code for c in created} == {200}
    listed = json.loads(admin(stack, "keys", "list", "--json", shards=16).stdout)
    assert len(listed) == 12


def test_a_write_that_finds_its_shard_moved_goes_to_the_new_layout(moto_endpoint, fake, monkeypatch):
    """An admin that read the layout just before a reshard finished still writes where readers look."""
    from handler.keys.admin import KeysAdmin

    stack = new_stack(fake.url)
    keys = KeysAdmin(stack.settings.keys_secret_id)
    keys.reshard(SHARDS)
    monkeypatch.setattr(KeysAdmin, "layout", lambda self: 1)  # the stale view: the keys secret alone
    [created] = keys.create(name="late")
    assert aws.read_json_secret(stack.settings.keys_secret_id) == {"keys": [], "moved_to": SHARDS}
    stored = aws.read_json_secret(shard_of(stack, created["key"]))["keys"]
    assert [entry["key_id"] for entry in stored] == [created["key_id"]]
