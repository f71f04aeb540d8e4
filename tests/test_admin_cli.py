"""gateway-admin manages keys against whatever AWS endpoint boto3 is configured for.

Run as a real subprocess against the moto server; the key it creates then
authenticates against a gateway reading the same secret.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import anthropic
import pytest

from handler import aws
from handler.keys.store import hash_key
from tests.support.stack import new_stack, serve

CONSOLE_SCRIPT = Path(sys.executable).with_name("gateway-admin")


def admin(*args: str, secret_id: str, entry=(sys.executable, "-m", "handler.admin")) -> subprocess.CompletedProcess:
    env = {**os.environ, "GATEWAY_KEYS_SECRET_ID": secret_id}
    return subprocess.run([*entry, *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def secret_id(moto_endpoint):
    return f"admin-test/{uuid.uuid4().hex[:8]}/keys"


def test_keys_create_prints_the_key_once_and_stores_only_its_hash(secret_id):
    result = admin("keys", "create", "--name", "team-a", "--models", "anthropic/*", "openai/gpt-4o*",
                   "--rpm", "60", "--monthly-usd", "50", "--json", secret_id=secret_id)
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["key"].startswith("egw_")
    stored = aws.read_json_secret(secret_id)["keys"]
    assert stored == [{
        "key_id": created["key_id"], "hash": hash_key(created["key"]), "name": "team-a", "status": "active",
        "created_at": created["created_at"], "models": ["anthropic/*", "openai/gpt-4o*"],
        "limits": {"rpm": 60, "monthly_usd": 50.0}, "default_fallbacks": True,
    }]
    assert created["key"] not in json.dumps(stored)


def test_keys_list_never_shows_secrets_or_hashes(secret_id):
    key = json.loads(admin("keys", "create", "--name", "a", "--json", secret_id=secret_id).stdout)["key"]
    listing = admin("keys", "list", "--json", secret_id=secret_id)
    entries = json.loads(listing.stdout)
    assert [e["name"] for e in entries] == ["a"]
    assert key not in listing.stdout and "sha256:" not in listing.stdout
    assert "a" in admin("keys", "list", secret_id=secret_id).stdout


def test_keys_revoke_marks_the_key_revoked(secret_id):
    created = json.loads(admin("keys", "create", "--name", "a", "--json", secret_id=secret_id).stdout)
    assert admin("keys", "revoke", created["key_id"], secret_id=secret_id).returncode == 0
    assert aws.read_json_secret(secret_id)["keys"][0]["status"] == "revoked"


def test_revoking_an_unknown_key_fails_clearly(secret_id):
    admin("keys", "create", "--name", "a", secret_id=secret_id)
    result = admin("keys", "revoke", "k_missing", secret_id=secret_id)
    assert result.returncode == 1
    assert "no key with id 'k_missing'" in result.stderr


def test_an_unreachable_aws_endpoint_fails_without_a_traceback(secret_id):
    env = {**os.environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}
    result = subprocess.run([sys.executable, "-m", "handler.admin", "keys", "list"], capture_output=True,
                            text=True, env={**env, "GATEWAY_KEYS_SECRET_ID": secret_id}, timeout=60)
    assert result.returncode == 2
    assert "AWS call failed" in result.stderr and "Traceback" not in result.stderr


def test_a_created_key_authenticates_at_the_gateway(moto_endpoint, fake):
    stack = new_stack(fake.url)
    created = json.loads(admin("keys", "create", "--name", "cli", "--json",
                               secret_id=stack.settings.keys_secret_id).stdout)
    with serve(stack) as server:
        client = anthropic.Anthropic(api_key=created["key"], base_url=server.url + "/v3", max_retries=0)
        message = client.messages.create(model="anthropic/claude-sonnet-4-5", max_tokens=10,
                                         messages=[{"role": "user", "content": "hi"}])
    assert message.content


@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason="package not installed (scripts/test installs it)")
def test_the_console_script_is_installed(secret_id):
    result = admin("keys", "create", "--name", "script", secret_id=secret_id, entry=(str(CONSOLE_SCRIPT),))
    assert result.returncode == 0, result.stderr
    assert "egw_" in result.stdout


def test_providers_set_checks_the_document_then_stores_it(moto_endpoint, tmp_path):
    secret_id = f"admin-test/{uuid.uuid4().hex[:8]}/providers"
    document = {"providers": {"anthropic": {"api_key": "sk-ant-operator-secret"}},
                "models": {"anthropic/claude-sonnet-4-5": {}}}
    path = tmp_path / "providers.json"
    path.write_text(json.dumps(document))
    env = {**os.environ, "GATEWAY_PROVIDERS_SECRET_ID": secret_id}
    result = subprocess.run([sys.executable, "-m", "handler.admin", "providers", "set", "--file", str(path), "--json"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["models"] == ["anthropic/claude-sonnet-4-5"]
    assert aws.read_json_secret(secret_id) == document
    shown = subprocess.run([sys.executable, "-m", "handler.admin", "providers", "show"],
                           capture_output=True, text=True, env=env, timeout=60)
    assert "provider anthropic" in shown.stdout and "sk-ant-operator-secret" not in shown.stdout + result.stdout


def test_providers_show_says_what_signs_each_providers_calls_by_name_only(moto_endpoint, tmp_path):
    """A Vertex provider's credential is a service account key, Bedrock's the function's role:
    `providers show` names what is set for each type, never a value."""
    from tests.support.fake_vertex import FakeVertex

    vertex = FakeVertex(project="p", location="us-east5")
    document = {"providers": {
        "anthropic": {"api_key": "sk-ant-operator-secret"},
        "local": {"type": "openai", "api_base": "http://127.0.0.1:9/v1"},
        "bedrock": {"type": "bedrock", "aws_region": "us-east-1"},
        "vertex": {"type": "vertex_ai", "vertex_project": "p", "vertex_location": "us-east5",
                   "credentials": vertex.service_account}},
        "models": {"anthropic/claude-sonnet-4-5": {}, "local/my-model": {}, "vertex/claude-sonnet-4-5@20250929": {},
                   "bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0": {}}}
    secret_id = f"admin-test/{uuid.uuid4().hex[:8]}/providers"
    aws.write_json_secret(secret_id, document)
    env = {**os.environ, "GATEWAY_PROVIDERS_SECRET_ID": secret_id}
    shown = subprocess.run([sys.executable, "-m", "handler.admin", "providers", "show"],
                           capture_output=True, text=True, env=env, timeout=60)
    assert shown.returncode == 0, shown.stderr
    lines = {line.split(":")[0]: line for line in shown.stdout.splitlines()}
    assert lines["provider anthropic"].endswith("credentials=api_key")
    assert lines["provider local"].endswith("credentials=none")
    assert lines["provider bedrock"].endswith("credentials=iam-role")
    assert lines["provider vertex"].endswith("credentials=credentials"), "a Vertex key was shown as missing"
    assert "sk-ant-operator-secret" not in shown.stdout and "PRIVATE KEY" not in shown.stdout


def test_providers_set_refuses_a_document_that_serves_nothing(moto_endpoint, tmp_path):
    path = tmp_path / "providers.json"
    path.write_text(json.dumps({"providers": {}}))
    env = {**os.environ, "GATEWAY_PROVIDERS_SECRET_ID": f"admin-test/{uuid.uuid4().hex[:8]}/providers"}
    result = subprocess.run([sys.executable, "-m", "handler.admin", "providers", "set", "--file", str(path)],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1 and "no provider" in result.stderr


def test_concurrent_creates_and_revokes_lose_no_write(moto_endpoint, secret_id):
    """Ten creates and ten revokes at once: every key created is stored, every revoked key stays revoked."""
    from threading import Barrier
    from concurrent.futures import ThreadPoolExecutor

    from handler.keys.admin import KeysAdmin

    keys = KeysAdmin(secret_id)
    existing = [keys.create(name=f"old-{i}")[0] for i in range(10)]
    start = Barrier(20)

    def create(i: int) -> dict:
        start.wait()
        return keys.create(name=f"new-{i}")[0]

    def revoke(entry: dict) -> dict:
        start.wait()
        return keys.revoke([entry["key_id"]])[0]

    with ThreadPoolExecutor(20) as pool:
        creating, revoking = pool.map(create, range(10)), pool.map(revoke, existing)
        created, revoked = list(creating), list(revoking)
    stored = {entry["key_id"]: entry for entry in aws.read_json_secret(secret_id)["keys"]}
    assert {c["key_id"] for c in created} <= set(stored), "a key the CLI printed as created is missing"
    assert all(stored[r["key_id"]]["status"] == "revoked" for r in revoked), "a key the CLI printed as revoked is active"
    assert len(stored) == 20


def test_a_revoke_whose_entry_left_its_secret_before_the_write_fails_naming_the_key(secret_id, monkeypatch, capsys):
    """Between `keys revoke` reading the entries and writing, the key's entry is gone from where the write
    lands (and no moved_to mark says where it went): the command must say so, not exit 0 printing nothing."""
    from dataclasses import replace

    from handler import admin as cli
    from handler.config import Settings
    from handler.keys.admin import KeysAdmin

    created = json.loads(admin("keys", "create", "--name", "a", "--json", secret_id=secret_id).stdout)

    def entry_leaves(step: str, detail: str) -> None:
        if step == "read":
            aws.write_json_secret(secret_id, {"keys": []})
    monkeypatch.setattr(cli, "_keys", lambda settings: KeysAdmin(settings.keys_secret_id, checkpoint=entry_leaves))
    code = cli.run(["keys", "revoke", created["key_id"]], replace(Settings.from_env(), keys_secret_id=secret_id))
    out, err = capsys.readouterr()
    assert code == 1, f"keys revoke exited {code} and printed {out!r} though it revoked nothing"
    assert created["key_id"] in err and "run the command again" in err
