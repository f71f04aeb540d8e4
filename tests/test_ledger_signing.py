"""The ledger's usage write is signed as botocore signs it (handler/sigv4.py).

The write's SigV4 signature is computed by the ledger itself (the signing key
kept per secret key and day, the canonical request built from the headers the
`before-call` hooks leave), so these pin that it is botocore's: equal headers,
in the same order, to `SigV4Auth.add_auth`'s over endpoints, credentials,
dates and header sets; and a DynamoDB that checks signatures takes every
write, credentials that refresh included.
"""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timedelta, timezone

import anthropic
import pytest
from botocore import auth as botocore_auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, RefreshableCredentials

from handler import aws
from handler.sigv4 import Signer
from tests.support.dynamodb_faults import WRITTEN, FaultyDynamoDB
from tests.support.stack import serve

CLAUDE = "anthropic/claude-sonnet-4-5"
HELLO = [{"role": "user", "content": "hello"}]
ENDPOINTS = ["http://127.0.0.1:8000", "https://dynamodb.us-east-1.amazonaws.com", "https://localhost:443",
             "http://LocalStack:80", "https://dynamodb.eu-west-3.amazonaws.com:8443", "http://[::1]:4566",
             "http://127.0.0.1:8000/", "https://vpce-0a1b.dynamodb.us-east-1.vpce.amazonaws.com/prefix/a b"]
CREDENTIALS = [Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
               Credentials("ASIAROLE", "role secret", "IQoJb3JpZ2luX2VjE//token  with   spaces=="),
               Credentials("ASIAROLE", "rotated secret", "a-new-token")]
# Across midnight UTC (a new signing key), a month's and a year's end, the same second twice.
TIMES = [datetime(2026, 12, 7, 23, 59, 59), datetime(2026, 12, 8, 0, 0, 0), datetime(2026, 12, 8, 0, 0, 0),
         datetime(2026, 12, 31, 23, 59, 59, 999999), datetime(2027, 1, 1, 0, 0, 1), datetime(2024, 2, 29, 12, 0)]
BASE = {"X-Amz-Target": "DynamoDB_20120810.TransactWriteItems", "Content-Type": "application/x-amz-json-1.0",
        "User-Agent": "Botocore/1.44.8 edenai-gateway-ledger"}
HEADER_SETS = [
    BASE,
    {**BASE, "X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"},
    {**BASE, "X-Custom": "  padded   value  with\tspaces ", "Accept-Encoding": "identity"},
    # SigV4's own headers, or names that differ only in case: left to SigV4Auth itself
    {**BASE, "Host": "elsewhere.example:9000"},
    {**BASE, "X-Amz-Date": "20200101T000000Z"},
    {**BASE, "Date": "Wed, 01 Jan 2020 00:00:00 GMT"},
    {**BASE, "Authorization": "stale"},
    {**BASE, "X-Amz-Security-Token": "stale"},
    {**BASE, "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"},
    {**BASE, "x-amz-target": "DynamoDB_20120810.TransactWriteItems"},
    {**BASE, " X-Padded-Name ": "value"},
    {**BASE, "X-Not-Ascii": "caf\u00e9"},
]
BODIES = [b'{"TransactItems":[]}', b"", '{"S":"caf\u00e9 \u2603"}'.encode()]


def botocore_signed(url: str, region: str, headers: dict, body: bytes, credentials: Credentials,
                    at: datetime, monkeypatch) -> list[tuple[str, str]]:
    monkeypatch.setattr(botocore_auth, "get_current_datetime", lambda: at)
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(credentials, "dynamodb", region).add_auth(request)
    return list(request.headers.items())


@pytest.mark.parametrize("url", ENDPOINTS)
def test_the_ledgers_signature_is_botocores_for_every_endpoint_credential_time_and_header_set(url, monkeypatch):
    """One signer signs a run of writes whose secret, session token and UTC day change between
    them (a refreshed role, midnight): each one's headers are add_auth's, name for name, in order."""
    now = [TIMES[0]]
    signer = Signer(url, "eu-west-3", "dynamodb", clock=lambda: now[0].replace(tzinfo=timezone.utc).timestamp())
    cases = itertools.product(TIMES, CREDENTIALS, HEADER_SETS, BODIES)
    for at, credentials, headers, body in cases:
        now[0] = at
        frozen = credentials.get_frozen_credentials()
        ours = signer.signed(dict(headers), body, frozen)
        theirs = botocore_signed(url, "eu-west-3", dict(headers), body, frozen, at, monkeypatch)
        assert list(ours.items()) == theirs, \
            f"DynamoDB would see other headers than botocore's for {url} at {at} with {sorted(headers)}"


def test_the_headers_the_hooks_left_are_not_changed_in_place():
    headers = dict(BASE)
    Signer("http://127.0.0.1:8000", "us-east-1", "dynamodb").signed(headers, b"{}", CREDENTIALS[1])
    assert headers == BASE, "the hooks' dict is the request's: a retry signs it afresh"


# ------------------------------------------------------------------ through the gateway


def rotating_role(secrets: list[tuple[str, str, str]]) -> RefreshableCredentials:
    """Role credentials that expire within botocore's refresh window: each use refreshes them,
    handing out the next of `secrets` (access key, secret key, token), as a role's credentials rotate."""
    issued = itertools.cycle(secrets)

    def refresh() -> dict:
        access_key, secret_key, token = next(issued)
        expiry = datetime.now(timezone.utc) + timedelta(minutes=5)  # inside the 15-minute advisory window
        return {"access_key": access_key, "secret_key": secret_key, "token": token,
                "expiry_time": expiry.isoformat()}

    return RefreshableCredentials.create_from_metadata(refresh(), refresh, "assume-role")


def test_usage_writes_are_taken_by_a_dynamodb_that_checks_signatures_as_role_credentials_rotate(
        stack, dynamodb_at):
    """Served requests' usage reaches a DynamoDB that checks each write's SigV4 signature and session
    token, while the client's role credentials refresh between writes (a new secret and token each)."""
    key = stack.add_key()
    roles = [("ASIAFIRST", "first secret", "first-token"), ("ASIASECOND", "second secret", "second token  =="),
             ("ASIATHIRD", "third secret", "third-token")]
    with FaultyDynamoDB([WRITTEN], signers={access: (secret, token) for access, secret, token in roles}) as dynamodb:
        dynamodb_at(dynamodb.url)
        aws.client("dynamodb")._request_signer._credentials = rotating_role(roles)  # noqa: SLF001
        with serve(stack) as server:
            client = anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0, timeout=20)
            for served in range(1, 5):  # one at a time: each write refreshes the credentials once
                client.messages.create(model=CLAUDE, max_tokens=10, messages=HELLO)
                writes = wait_for_writes(dynamodb, served)
    assert dynamodb.refused == [], f"DynamoDB refused the ledger's writes: {dynamodb.refused}"
    used = [call.headers["authorization"].partition("Credential=")[2].partition("/")[0] for call in writes]
    assert len(used) == 4 and len(set(used)) == 3, \
        f"each write is signed with the role's credentials as they refresh: {used}"


def wait_for_writes(dynamodb: FaultyDynamoDB, count: int, timeout: float = 10.0) -> list:
    """The TransactWriteItems calls, once `count` came (metering runs after the response)."""
    deadline = time.monotonic() + timeout
    while True:
        writes = [call for call in dynamodb.calls if call.headers["x-amz-target"].endswith("TransactWriteItems")]
        if len(writes) >= count or time.monotonic() > deadline:
            return writes
        time.sleep(0.02)
