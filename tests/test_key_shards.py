"""Keys spread over shard secrets: every key found in its shard, one read per unknown key.

Keys are made with gateway-admin (a subprocess against the moto server) and
presented to the gateway under uvicorn; Secrets Manager reads are counted with
a botocore hook on the gateway's client.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import boto3
import httpx
import pytest

from handler import aws
from handler.keys import admin as keys_admin
from handler.keys import shards as key_shards
from handler.keys.admin import KeysAdmin
from handler.keys.store import KeyStore, hash_key, new_key
from handler.protocol.errors import GatewayError
from tests.support.interleave import Held, at
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


def test_a_write_that_finds_its_shard_moved_goes_to_the_new_layout(moto_endpoint, fake):
    """Every write starts at the keys secret and follows its mark: it lands where readers look."""
    stack = new_stack(fake.url)
    keys = KeysAdmin(stack.settings.keys_secret_id)
    keys.reshard(SHARDS)
    [created] = keys.create(name="late")
    assert aws.read_json_secret(stack.settings.keys_secret_id) == {"keys": [], "moved_to": SHARDS}
    stored = aws.read_json_secret(shard_of(stack, created["key"]))["keys"]
    assert [entry["key_id"] for entry in stored] == [created["key_id"]]


# ------------------------------------------------------------------ admin writes racing a reshard
#
# Each interleaving is fixed by checkpoints (KeysAdmin's `checkpoint`), never by timing: the racing
# command runs in a thread held at its own checkpoint (Held), and the reshard lets it go on at one of its
# steps (at).

OLD, NEW = SHARDS, 8


def old_shard(stack, index: int) -> str:
    return key_shards.shard_secret_id(stack.settings.keys_secret_id, OLD, index)


@pytest.fixture
def old_layout(moto_endpoint, fake, monkeypatch):
    """A deployment on 4 shards, with `make(index, **options)` creating a key whose entry is in old shard `index`."""
    stack = new_stack(fake.url, key_shards=OLD)
    KeysAdmin(stack.settings.keys_secret_id).reshard(OLD)

    def make(index: int, **options) -> dict:
        key = next(k for k in iter(new_key, None) if key_shards.shard_index(hash_key(k), OLD) == index)
        with monkeypatch.context() as patch:
            patch.setattr(keys_admin, "new_key", lambda: key)
            [created] = KeysAdmin(stack.settings.keys_secret_id).create(name=options.pop("name", "k"), **options)
        return created
    return stack, make


def holders(stack, key: str) -> list[str]:
    """Every shard secret, in every layout, whose entries hold this key's value."""
    digest, base = hash_key(key), stack.settings.keys_secret_id
    ids = [base, *(key_shards.shard_secret_id(base, count, index) for count in (OLD, NEW) for index in range(count))]
    return [secret_id for secret_id, document in aws.read_json_secrets(ids).items()
            if any(entry.get("hash") == digest for entry in (document or {}).get("keys", []))]


def gateway(stack, key: str, shards: int) -> str:
    """What a gateway instance starting now, configured for `shards`, answers this key: "ok" or its 401."""
    store = KeyStore(aws.read_json_secret, secret_id=stack.settings.keys_secret_id, shards=shards, ttl=60,
                     min_gap=0, max_staleness=60)
    try:
        asyncio.run(store.authenticate(key))
        return "ok"
    except GatewayError as exc:
        return exc.message


@pytest.mark.parametrize("released_at", [0, 3], ids=["before-its-shard-moved", "after-its-shard-moved"])
def test_a_revoke_that_read_the_old_layout_while_a_reshard_ran_is_kept(old_layout, released_at):
    """The revoke reads the 4-shard layout; the reshard marks shard 0 (or also the victim's shard 3, which the
    revoke's write then meets and follows); the revoke writes. The victim must end refused on either layout."""
    stack, make = old_layout
    victim, bystander = make(3, name="victim"), make(0, name="bystander")
    revoke = Held("read")
    revoke.start(KeysAdmin(stack.settings.keys_secret_id, checkpoint=revoke.checkpoint).revoke, [victim["key_id"]])
    revoked = []
    KeysAdmin(stack.settings.keys_secret_id,
              checkpoint=at("marked", old_shard(stack, released_at),
                            lambda: revoked.extend(revoke.finish()))).reshard(NEW)
    assert [entry["key_id"] for entry in revoked] == [victim["key_id"]], \
        f"`keys revoke` printed {revoked} for a key it was asked to revoke"
    for shards in (OLD, NEW):
        assert gateway(stack, victim["key"], shards) == "This API key has been revoked.", \
            f"a gateway on {shards} shards still accepts the revoked key"
        assert gateway(stack, bystander["key"], shards) == "ok"
    assert holders(stack, victim["key"]) == [key_shards.shard_of(stack.settings.keys_secret_id, NEW,
                                                                 hash_key(victim["key"]))]


def test_an_update_that_read_the_old_layout_while_a_reshard_ran_is_kept(old_layout):
    stack, make = old_layout
    victim = make(3, models=["openai/*"])
    update = Held("read")
    update.start(KeysAdmin(stack.settings.keys_secret_id, checkpoint=update.checkpoint).update, victim["key_id"],
                 models=["anthropic/*"], limits={"rpm": 5})
    KeysAdmin(stack.settings.keys_secret_id, checkpoint=at("marked", old_shard(stack, 0), update.finish)).reshard(NEW)
    [listed] = KeysAdmin(stack.settings.keys_secret_id).list()
    assert (listed["models"], listed.get("limits")) == (["anthropic/*"], {"rpm": 5}), \
        "the update's models and limits were lost in the reshard"
    assert len(holders(stack, victim["key"])) == 1


def test_a_rotation_that_read_the_old_layout_while_a_reshard_ran_keeps_its_grace(old_layout):
    """The old value must stop when its grace ends, not keep working without an expiry."""
    stack, make = old_layout
    victim = make(3)
    rotate = Held("read")
    rotate.start(KeysAdmin(stack.settings.keys_secret_id, checkpoint=rotate.checkpoint).rotate, victim["key_id"],
                 grace=timedelta(hours=1))
    rotated = []
    KeysAdmin(stack.settings.keys_secret_id,
              checkpoint=at("marked", old_shard(stack, 0), lambda: rotated.append(rotate.finish()))).reshard(NEW)
    shown = KeysAdmin(stack.settings.keys_secret_id).show(victim["key_id"])
    assert [value.get("expires_at") for value in shown["retired_values"]] == \
        [rotated[0]["previous_value_expires_at"]], "the rotated-out value lost its expiry in the reshard"
    assert shown["key_id"] == victim["key_id"] and "rotated_at" in shown
    assert gateway(stack, victim["key"], NEW) == "ok" and gateway(stack, rotated[0]["key"], NEW) == "ok"
    assert len(holders(stack, victim["key"])) == 1 and len(holders(stack, rotated[0]["key"])) == 1


@pytest.mark.parametrize("step", ["copied", "marked"])
def test_a_key_created_while_its_shard_is_resharded_is_kept(old_layout, step):
    """Created after its old shard's entries were copied (before or after the shard is marked moved)."""
    stack, make = old_layout
    make(2, name="already")
    created = []
    KeysAdmin(stack.settings.keys_secret_id,
              checkpoint=at(step, old_shard(stack, 2), lambda: created.append(make(2, name="racing")))).reshard(NEW)
    [racing] = created
    assert holders(stack, racing["key"]) == [key_shards.shard_of(stack.settings.keys_secret_id, NEW,
                                                                 hash_key(racing["key"]))], \
        "the key created during the reshard is not in exactly one shard of the new layout"
    assert gateway(stack, racing["key"], OLD) == "ok" and gateway(stack, racing["key"], NEW) == "ok"
    assert sorted(entry["name"] for entry in KeysAdmin(stack.settings.keys_secret_id).list()) == ["already", "racing"]


def test_a_rotated_value_still_in_its_grace_moves_with_its_expiry(old_layout):
    stack, make = old_layout
    victim = make(1)
    rotated = KeysAdmin(stack.settings.keys_secret_id).rotate(victim["key_id"], grace=timedelta(hours=1))
    KeysAdmin(stack.settings.keys_secret_id).reshard(NEW)
    for shards in (OLD, NEW):
        assert gateway(stack, victim["key"], shards) == "ok", "the value in its grace stopped working at the reshard"
        assert gateway(stack, rotated["key"], shards) == "ok"
    [retired] = KeysAdmin(stack.settings.keys_secret_id).show(victim["key_id"])["retired_values"]
    assert retired["expires_at"] == rotated["previous_value_expires_at"], "the grace's end changed in the move"
    KeysAdmin(stack.settings.keys_secret_id).revoke([victim["key_id"]])
    assert gateway(stack, victim["key"], NEW) == gateway(stack, rotated["key"], NEW) == "This API key has been revoked."


def test_a_second_run_of_the_reshard_never_copies_an_entry_over_a_later_write(old_layout):
    """Two operators run the reshard at once: the slower one read shard 0 before the faster one moved it and a
    revoke followed the mark; its late copy must not bring the active entry back."""
    stack, make = old_layout
    victim = make(0)
    slower = Held("copying")
    slower.start(KeysAdmin(stack.settings.keys_secret_id, checkpoint=slower.checkpoint).reshard, NEW)
    KeysAdmin(stack.settings.keys_secret_id).reshard(NEW)
    KeysAdmin(stack.settings.keys_secret_id).revoke([victim["key_id"]])
    assert slower.finish() == {"from": OLD, "to": NEW, "moved": 0}
    for shards in (OLD, NEW):
        assert gateway(stack, victim["key"], shards) == "This API key has been revoked.", \
            f"a gateway on {shards} shards accepts the key again after a late copy"


class Interrupted(Exception):
    """The reshard's process stopped here."""


def test_a_reshard_that_stopped_midway_finishes_when_run_again(old_layout):
    stack, make = old_layout
    created = [make(index, name=f"in-{index}") for index in range(OLD)]

    def stop() -> None:
        raise Interrupted
    with pytest.raises(Interrupted):  # shard 1 copied, not yet marked
        KeysAdmin(stack.settings.keys_secret_id, checkpoint=at("copied", old_shard(stack, 1), stop)).reshard(NEW)
    for entry in created:  # meanwhile every key is found on either layout
        assert gateway(stack, entry["key"], OLD) == "ok"
        assert gateway(stack, entry["key"], NEW) == "ok", \
            f"{entry['name']}, not yet copied, is refused by a gateway already on the new count"
    again = KeysAdmin(stack.settings.keys_secret_id).reshard(NEW)
    assert again == {"from": OLD, "to": NEW, "moved": 3}, "running the reshard again did not finish it"
    for entry in created:
        assert holders(stack, entry["key"]) == [key_shards.shard_of(stack.settings.keys_secret_id, NEW,
                                                                    hash_key(entry["key"]))], \
            f"{entry['name']} is not in exactly one layout after the reshard was run again"
        assert gateway(stack, entry["key"], OLD) == gateway(stack, entry["key"], NEW) == "ok"
    assert all("moving_from" not in document for document in aws.read_json_secrets(
        [key_shards.shard_secret_id(stack.settings.keys_secret_id, NEW, index) for index in range(NEW)]).values()), \
        "the finished reshard left the new layout pointing at the old one"


def test_a_reshard_back_to_a_count_used_before_finishes_when_run_again(old_layout):
    """4 -> 8, then back to 4, stopped midway: the 4 secrets are reopened (their marks pointed to 8) and
    running the command again still finds the keys left in 8 and brings them back."""
    stack, make = old_layout
    created = [make(index, name=f"in-{index}") for index in range(OLD)]
    KeysAdmin(stack.settings.keys_secret_id).reshard(NEW)

    def stop() -> None:
        raise Interrupted
    first_new = key_shards.shard_secret_id(stack.settings.keys_secret_id, NEW, 0)
    with pytest.raises(Interrupted):
        KeysAdmin(stack.settings.keys_secret_id, checkpoint=at("marked", first_new, stop)).reshard(OLD)
    for entry in created:
        assert gateway(stack, entry["key"], NEW) == "ok", "a gateway on the layout being left lost a key"
        assert gateway(stack, entry["key"], OLD) == "ok", "a gateway on the layout being returned to lost a key"
    *kept, revoked = created  # in-3 is still in the layout being left
    assert [e["key_id"] for e in KeysAdmin(stack.settings.keys_secret_id).revoke([revoked["key_id"]])] == \
        [revoked["key_id"]], "a key not yet copied back could not be revoked"
    assert KeysAdmin(stack.settings.keys_secret_id).reshard(OLD)["to"] == OLD
    assert gateway(stack, revoked["key"], OLD) == gateway(stack, revoked["key"], NEW) == "This API key has been revoked."
    for entry in created:
        assert holders(stack, entry["key"]) == [key_shards.shard_of(stack.settings.keys_secret_id, OLD,
                                                                    hash_key(entry["key"]))], \
            f"{entry['name']} is not in exactly one layout after the reshard back was run again"
    for entry in kept:
        assert gateway(stack, entry["key"], OLD) == gateway(stack, entry["key"], NEW) == "ok"
    assert sorted(e["name"] for e in KeysAdmin(stack.settings.keys_secret_id).list()) == [f"in-{i}" for i in range(4)]
    assert all("moving_from" not in (document or {}) for document in aws.read_json_secrets(
        [key_shards.shard_secret_id(stack.settings.keys_secret_id, OLD, index) for index in range(OLD)]).values())
