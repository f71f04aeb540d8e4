"""boto3 clients, made lazily and once per process.

boto3 reads AWS_ENDPOINT_URL and AWS_DEFAULT_REGION itself, so the same code
talks to AWS in production and to a moto server locally. Clients are created
on first use, never at import, so nothing touches the network at init and a
SnapStart snapshot holds no connection (`reset_clients` drops them on restore).
"""

from __future__ import annotations

import json
import threading
from functools import lru_cache

import boto3
from botocore.config import Config

_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
    max_pool_connections=32,
)
_lock = threading.Lock()


@lru_cache(maxsize=None)
def _client(service: str):
    with _lock:  # boto3's default session is not thread-safe to create clients from
        return boto3.session.Session().client(service, config=_CONFIG)


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
