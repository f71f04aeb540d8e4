"""boto3 clients, made lazily and once per process.

boto3 reads AWS_ENDPOINT_URL and AWS_DEFAULT_REGION itself, so the same code
talks to AWS in production and to a moto server locally. Clients are created
on first use, never at import, so nothing touches the network at init and a
SnapStart snapshot holds no connection (`reset_clients` drops them on restore).
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from functools import lru_cache
from typing import Callable, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
    max_pool_connections=32,
)
_lock = threading.Lock()
T = TypeVar("T")
# The staging label a compare-and-swap writes its new version under before moving AWSCURRENT onto it.
PENDING_STAGE = "GATEWAY_PENDING"


# The ledger's writes are built by the gateway (metering/items.py), never from caller input:
# botocore's check of each call against the service model walked every attribute of every item
# of a transaction, a quarter of a ledger write's CPU (measured with cProfile's thread clock). A
# malformed call is still refused, by DynamoDB (a ValidationException), and the ledger keeps
# the entry (the fallback queue, then the log) as it did for botocore's ParamValidationError.
_UNCHECKED = _CONFIG.merge(Config(parameter_validation=False))
_SERVICES_UNCHECKED = frozenset({"dynamodb"})


@lru_cache(maxsize=None)
def _client(service: str):
    with _lock:  # boto3's default session is not thread-safe to create clients from
        config = _UNCHECKED if service in _SERVICES_UNCHECKED else _CONFIG
        return boto3.session.Session().client(service, config=config)


def client(service: str):
    return _client(service)


def reset_clients() -> None:
    _client.cache_clear()


def read_json_secret(secret_id: str) -> dict:
    value = client("secretsmanager").get_secret_value(SecretId=secret_id)
    return json.loads(value["SecretString"])


def write_json_secret(secret_id: str, document: dict) -> None:
    """Create the secret or store a new version of it."""
    sm = client("secretsmanager")
    payload = json.dumps(document, indent=1, sort_keys=True)
    try:
        sm.put_secret_value(SecretId=secret_id, SecretString=payload)
    except sm.exceptions.ResourceNotFoundException:
        sm.create_secret(Name=secret_id, SecretString=payload)


class SecretConflict(RuntimeError):
    """A compare-and-swap kept losing to other writers."""


def _code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def read_json_secret_version(secret_id: str) -> tuple[dict | None, str | None]:
    """(document, version id) of AWSCURRENT; (None, None) when the secret does not exist."""
    try:
        value = client("secretsmanager").get_secret_value(SecretId=secret_id)
    except client("secretsmanager").exceptions.ResourceNotFoundException:
        return None, None
    return json.loads(value["SecretString"]), value["VersionId"]


def _swap(secret_id: str, payload: str, version: str | None) -> bool:
    """Make `payload` AWSCURRENT only if AWSCURRENT is still `version` (None: the secret is new).

    Secrets Manager has no conditional put, but UpdateSecretVersionStage
    refuses to move AWSCURRENT off a version that no longer holds it: the new
    version is stored under a private label first, then swapped in.
    """
    sm = client("secretsmanager")
    if version is None:
        try:
            sm.create_secret(Name=secret_id, SecretString=payload)
            return True
        except sm.exceptions.ResourceExistsException:
            return False
    new_version = str(uuid.uuid4())
    sm.put_secret_value(SecretId=secret_id, SecretString=payload, ClientRequestToken=new_version,
                        VersionStages=[PENDING_STAGE])
    try:
        sm.update_secret_version_stage(SecretId=secret_id, VersionStage="AWSCURRENT",
                                       MoveToVersionId=new_version, RemoveFromVersionId=version)
    except ClientError as exc:
        if _code(exc) in ("InvalidParameterException", "InvalidRequestException"):
            return False  # another writer moved AWSCURRENT since we read it
        raise
    return True


def secret_payload(document: dict) -> str:
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


def update_json_secret(secret_id: str, change: Callable[[dict], T], *, empty: Callable[[], dict],
                       attempts: int = 12, sleep: Callable[[float], None] = time.sleep,
                       max_bytes: int = 65536) -> T:
    """Read-modify-write of a JSON secret that loses no concurrent write.

    `change` edits the document in place and returns the call's result; on a
    lost race it runs again on the newer document, so it must derive everything
    from what it is given.
    """
    for attempt in range(attempts):
        document, version = read_json_secret_version(secret_id)
        document = empty() if document is None else document
        result = change(document)
        payload = secret_payload(document)
        if len(payload.encode()) > max_bytes:
            raise ValueError(f"{secret_id} would hold {len(payload.encode())} bytes, over Secrets Manager's "
                             f"{max_bytes}: spread the keys over more shards (gateway-admin keys reshard)")
        if _swap(secret_id, payload, version):
            return result
        sleep(random.uniform(0, 0.02 * 2 ** min(attempt, 6)))  # jittered, so racing writers spread out
    raise SecretConflict(f"{secret_id} kept changing during {attempts} attempts; try again")


def read_json_secrets(secret_ids: list[str]) -> dict[str, dict | None]:
    """Many secrets in batches of 20 (BatchGetSecretValue); None for one that does not exist."""
    sm = client("secretsmanager")
    found: dict[str, dict | None] = {}
    for start in range(0, len(secret_ids), 20):
        wanted = secret_ids[start:start + 20]
        answer = sm.batch_get_secret_value(SecretIdList=wanted)
        for value in answer.get("SecretValues", []):
            document = json.loads(value["SecretString"])
            for name in (value.get("Name"), value.get("ARN")):
                if name in wanted:
                    found[name] = document
        for error in answer.get("Errors", []):
            if error.get("ErrorCode") != "ResourceNotFoundException":
                raise ClientError({"Error": {"Code": error.get("ErrorCode", ""), "Message": error.get("Message", "")}},
                                  "BatchGetSecretValue")
    return {secret_id: found.get(secret_id) for secret_id in secret_ids}


def ensure_json_secret(secret_id: str, document: dict) -> bool:
    """Create the secret with `document` unless it exists; True if created."""
    sm = client("secretsmanager")
    try:
        sm.create_secret(Name=secret_id, SecretString=secret_payload(document))
        return True
    except sm.exceptions.ResourceExistsException:
        return False
