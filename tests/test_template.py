"""template.yaml and the code agree: table keys and TTL, environment, handler, permissions.

Read with cfn-lint's own decoder (it understands !Ref and friends), and
linted, without AWS.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.decode import decode

from handler.metering import TABLE_KEYS, TTL_ATTRIBUTE

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"


@pytest.fixture(scope="module")
def template():
    decoded, problems = decode(str(TEMPLATE))
    assert not problems
    return decoded


@pytest.fixture(scope="module")
def function(template):
    return template["Resources"]["GatewayFunction"]["Properties"]


def statements(function):
    return [s for policy in function["Policies"] for s in policy["Statement"]]


def test_cfn_lint_passes():
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_table_keys_and_ttl_match_the_code(template):
    table = template["Resources"]["UsageTable"]["Properties"]
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == TABLE_KEYS
    assert {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]} == \
        dict.fromkeys(TABLE_KEYS, "S")
    assert table["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"


def test_the_handler_is_the_lambda_entry_point(function):
    module, _, name = function["Handler"].rpartition(".")
    assert (module, name) == ("handler.lambda_function", "lambda_handler")


def test_every_environment_variable_is_one_the_code_reads(function):
    config = (ROOT / "handler" / "config.py").read_text()
    variables = function["Environment"]["Variables"]
    assert {"GATEWAY_KEYS_SECRET_ID", "GATEWAY_PROVIDERS_SECRET_ID", "GATEWAY_USAGE_TABLE",
            "GATEWAY_LEDGER_QUEUE_URL"} <= set(variables)
    for name in variables:
        assert re.search(rf'"{name}"', config), f"{name} is set by the template but never read"


def test_secrets_manager_access_is_only_get_secret_value_on_the_two_secrets(function):
    granted = [s for s in statements(function) if any(str(a).startswith("secretsmanager:") for a in
                                                     (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))]
    assert [s["Action"] for s in granted] == ["secretsmanager:GetSecretValue"]
    assert sorted(r["Ref"] for r in granted[0]["Resource"]) == ["KeysSecret", "ProvidersSecret"]


def test_dynamodb_access_covers_what_the_ledger_calls_on_the_table_only(function):
    [granted] = [s for s in statements(function) if "dynamodb:PutItem" in s["Action"]]
    # TransactWriteItems is authorised per item action (Put, Update); reports Query and GetItem.
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:Query"} <= set(granted["Action"])
    assert not any(action in granted["Action"] for action in ("dynamodb:*", "dynamodb:DeleteItem", "dynamodb:Scan"))
    assert granted["Resource"] == {"Fn::GetAtt": ["UsageTable", "Arn"]}


def test_the_fallback_queue_is_wired(function, template):
    [granted] = [s for s in statements(function) if s["Action"] == "sqs:SendMessage"]
    assert granted["Resource"] == {"Fn::GetAtt": ["LedgerFallbackQueue", "Arn"]}
    assert function["Environment"]["Variables"]["GATEWAY_LEDGER_QUEUE_URL"] == {"Ref": "LedgerFallbackQueue"}
