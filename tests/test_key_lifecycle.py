"""A key's lifecycle through gateway-admin: update, rotate with grace, expiry, show.

The CLI runs as a subprocess against the moto server (4 shards, so a rotated
value usually lands in another shard than the old one); the gateway under
uvicorn sees each change within its cache TTL (0.2 s here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import anthropic
import httpx
import pytest

from handler.keys.admin import KeysAdmin
from tests.support.interleave import Held
from tests.support.stack import new_stack, serve

CLAUDE = "anthropic/claude-sonnet-4-5"
GPT = "openai/gpt-4o-mini"
HELLO = [{"role": "user", "content": "hi"}]


def admin(stack, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "GATEWAY_KEYS_SECRET_ID": stack.settings.keys_secret_id, "GATEWAY_KEY_SHARDS": "4"}
    result = subprocess.run([sys.executable, "-m", "handler.admin", *args], capture_output=True, text=True,
                            env=env, timeout=60)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def admin_json(stack, *args: str) -> dict:
    return json.loads(admin(stack, *args, "--json").stdout)


@pytest.fixture
def stack(moto_endpoint, fake):
    stack = new_stack(fake.url, key_shards=4, key_cache_ttl=0.2, secret_refresh_gap=0.0)
    admin(stack, "keys", "reshard")
    return stack


def call(server, key: str, model: str = CLAUDE) -> httpx.Response:
    return httpx.post(f"{server.url}/v3/v1/messages", headers={"x-api-key": key},
                      json={"model": model, "max_tokens": 5, "messages": HELLO}, timeout=60)


def settle() -> None:
    time.sleep(0.3)  # past the gateway's key cache TTL


def in_seconds(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat()


def test_update_changes_models_limits_and_name_and_the_gateway_follows(stack):
    created = admin_json(stack, "keys", "create", "--name", "team", "--models", "openai/*")
    key = created["key"]
    with serve(stack) as server:
        assert call(server, key, GPT).status_code == 200
        assert call(server, key, CLAUDE).status_code == 403
        updated = admin_json(stack, "keys", "update", created["key_id"], "--name", "team-b",
                             "--models", "anthropic/*", "--rpm", "2", "--monthly-usd", "5")
        assert updated["name"] == "team-b" and updated["models"] == ["anthropic/*"]
        assert updated["limits"] == {"rpm": 2, "monthly_usd": 5.0} and "hash" not in updated
        settle()
        assert call(server, key, GPT).status_code == 403, "the old allow-list still applied after update"
        assert [call(server, key).status_code for _ in range(3)] == [200, 200, 429], "the new rpm did not apply"
        cleared = admin_json(stack, "keys", "update", created["key_id"], "--rpm", "none", "--all-models")
        assert cleared["limits"] == {"monthly_usd": 5.0} and "models" not in cleared
        settle()
        assert call(server, key, GPT).status_code == 200


def test_rotate_issues_a_new_value_for_the_same_id_and_the_old_one_stops_after_its_grace(stack):
    created = admin_json(stack, "keys", "create", "--name", "svc")
    old = created["key"]
    with serve(stack) as server:
        assert call(server, old).status_code == 200
        rotated = admin_json(stack, "keys", "rotate", created["key_id"], "--grace", "3s")
        new = rotated["key"]
        assert rotated["key_id"] == created["key_id"] and new != old
        settle()
        assert call(server, new).status_code == 200
        assert call(server, old).status_code == 200, "the old value stopped before its grace ended"
        time.sleep(max(0.0, datetime.fromisoformat(rotated["previous_value_expires_at"]).timestamp()
                       - time.time() + 0.2))
        expired = call(server, old)
        assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]
        assert call(server, new).status_code == 200
        usage = httpx.get(f"{server.url}/v3/usage", headers={"x-api-key": new}).json()
    assert usage["key_id"] == created["key_id"]
    shown = admin_json(stack, "keys", "show", created["key_id"])
    assert shown["name"] == "svc" and len(shown["retired_values"]) == 1 and "hash" not in json.dumps(shown)
    assert [e["key_id"] for e in admin_json(stack, "keys", "list")] == [created["key_id"]]


def test_rotate_without_grace_stops_the_old_value_at_once(stack):
    created = admin_json(stack, "keys", "create", "--name", "svc")
    with serve(stack) as server:
        rotated = admin_json(stack, "keys", "rotate", created["key_id"])
        settle()
        assert call(server, created["key"]).status_code == 401
        assert call(server, rotated["key"]).status_code == 200


def test_revoking_a_rotated_key_revokes_the_value_still_in_grace_too(stack):
    created = admin_json(stack, "keys", "create", "--name", "svc")
    with serve(stack) as server:
        rotated = admin_json(stack, "keys", "rotate", created["key_id"], "--grace", "1h")
        admin(stack, "keys", "revoke", created["key_id"])
        settle()
        assert call(server, created["key"]).status_code == 401, "the old value outlived the revocation"
        assert call(server, rotated["key"]).status_code == 401


def test_an_expired_key_gets_401_like_a_revoked_one_and_update_can_extend_it(stack):
    created = admin_json(stack, "keys", "create", "--name", "temp", "--expires-at", in_seconds(8))
    assert created["expires_at"]
    with serve(stack) as server:
        client = anthropic.Anthropic(api_key=created["key"], base_url=server.url + "/v3", max_retries=0)
        assert client.messages.create(model=CLAUDE, max_tokens=5, messages=HELLO)
        time.sleep(max(0.0, datetime.fromisoformat(created["expires_at"]).timestamp() - time.time() + 0.1))
        with pytest.raises(anthropic.AuthenticationError, match="expired"):
            client.messages.create(model=CLAUDE, max_tokens=5, messages=HELLO)
        admin(stack, "keys", "update", created["key_id"], "--expires-at", "never")
        settle()
        assert client.messages.create(model=CLAUDE, max_tokens=5, messages=HELLO)


@pytest.mark.parametrize("args, message", [
    (("update", "k_missing", "--rpm", "5"), "no key with id 'k_missing'"),
    (("rotate", "k_missing"), "no key with id 'k_missing'"),
    (("show", "k_missing"), "no key with id 'k_missing'"),
    (("create", "--name", "x", "--expires-at", "next tuesday"), "Invalid isoformat"),
])
def test_lifecycle_commands_fail_clearly(stack, args, message):
    result = admin(stack, "keys", *args, ok=False)
    assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr


def test_a_bad_grace_and_a_revoked_key_cannot_rotate(stack):
    created = admin_json(stack, "keys", "create", "--name", "svc")
    bad = admin(stack, "keys", "rotate", created["key_id"], "--grace", "soon", ok=False)
    assert bad.returncode == 1 and "not a duration" in bad.stderr
    admin(stack, "keys", "revoke", created["key_id"])
    revoked = admin(stack, "keys", "rotate", created["key_id"], ok=False)
    assert revoked.returncode == 1 and "revoked" in revoked.stderr


def test_concurrent_updates_and_rotations_lose_nothing(stack):
    keys = KeysAdmin(stack.settings.keys_secret_id)
    created = keys.create(name="many", count=12)

    def change(number: int) -> None:
        entry = created[number]
        if number % 2:
            keys.update(entry["key_id"], limits={"rpm": 100 + number})
        else:
            keys.rotate(entry["key_id"], grace=timedelta(hours=1))

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(change, range(12)))
    listed = {entry["key_id"]: entry for entry in keys.list()}
    for number, entry in enumerate(created):
        shown = listed[entry["key_id"]]
        if number % 2:
            assert shown["limits"] == {"rpm": 100 + number}, f"update of {entry['key_id']} was lost"
        else:
            assert "rotated_at" in shown and len(keys.show(entry["key_id"])["retired_values"]) == 1


# A revoke or update racing a rotation, fixed by checkpoints (tests/support/interleave.py): the rotation's
# new value is a copy of the entry as the rotation read it, so a change made meanwhile must reach it too.

def test_a_revoke_made_while_a_rotation_ran_revokes_its_new_value(stack):
    """rotate reads; revoke runs whole; rotate writes its new value: that value must not outlive the revoke."""
    created = KeysAdmin(stack.settings.keys_secret_id).create(name="svc")[0]
    rotate = Held("read")
    rotate.start(KeysAdmin(stack.settings.keys_secret_id, checkpoint=rotate.checkpoint).rotate, created["key_id"],
                 grace=timedelta(hours=1))
    KeysAdmin(stack.settings.keys_secret_id).revoke([created["key_id"]])
    with pytest.raises(ValueError, match="revoked during the rotation: its new value is too"):
        rotate.finish()
    values = KeysAdmin(stack.settings.keys_secret_id).show(created["key_id"])
    assert values["status"] == "revoked", "the rotation's new value works though the key was revoked"
    assert {value["status"] for value in values["retired_values"]} == {"revoked"}


def test_a_revoke_that_read_before_a_rotation_wrote_revokes_its_new_value(stack):
    """revoke reads (the old value only); rotate writes its new value and retires the old; revoke writes."""
    created = KeysAdmin(stack.settings.keys_secret_id).create(name="svc")[0]
    rotate, revoke = Held("read"), Held("read")
    rotate.start(KeysAdmin(stack.settings.keys_secret_id, checkpoint=rotate.checkpoint).rotate, created["key_id"],
                 grace=timedelta(hours=1))
    revoke.start(KeysAdmin(stack.settings.keys_secret_id, checkpoint=revoke.checkpoint).revoke, [created["key_id"]])
    rotated = rotate.finish()
    assert [entry["key_id"] for entry in revoke.finish()] == [created["key_id"]]
    values = KeysAdmin(stack.settings.keys_secret_id).show(created["key_id"])
    assert values["status"] == "revoked", f"the new value {rotated['key'][:8]}... works after `keys revoke`"
    assert [value["status"] for value in values["retired_values"]] == ["revoked"]


def test_an_update_made_while_a_rotation_ran_reaches_its_new_value(stack):
    created = KeysAdmin(stack.settings.keys_secret_id).create(name="svc", models=["openai/*"])[0]
    rotate = Held("read")
    rotate.start(KeysAdmin(stack.settings.keys_secret_id, checkpoint=rotate.checkpoint).rotate, created["key_id"],
                 grace=timedelta(hours=1))
    KeysAdmin(stack.settings.keys_secret_id).update(created["key_id"], models=["anthropic/*"], limits={"rpm": 7})
    rotate.finish()
    shown = KeysAdmin(stack.settings.keys_secret_id).show(created["key_id"])
    assert (shown["models"], shown.get("limits")) == (["anthropic/*"], {"rpm": 7}), \
        "the update made during the rotation did not reach the new value"
