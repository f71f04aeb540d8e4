"""template.yaml and the code agree, in both modes: table keys and TTL,
environment, handler, permissions, the API in front, SnapStart.

Two readings, without AWS. The SAM source, decoded by cfn-lint (which also
lints it, every Fn::If branch included). And what CloudFormation would get:
the template translated by SAM's own translator for each StreamingMode, its
conditions resolved, then linted again. The translator pins pydantic below
our lock, so it runs from .venv-sam, which `scripts/deploy sam` creates from
the hashed scripts/sam.lock when it is missing (about a minute, once).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.decode import decode

from handler import snapstart
from handler.metering import TABLE_KEYS, TTL_ATTRIBUTE

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
MODES = ("buffered", "streaming")
NO_VALUE = {"Ref": "AWS::NoValue"}
SAM_ENV = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}


def _load_packager():
    """scripts/_package.py, which writes the streaming mode's run script."""
    spec = importlib.util.spec_from_file_location("_package", ROOT / "scripts" / "_package.py")
    module = sys.modules.setdefault("_package", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    return module


RUN_SCRIPT = _load_packager().RUN_SCRIPT

TRANSLATE = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

template = yaml_parse(open(sys.argv[1]).read())
for resource in template["Resources"].values():
    if resource["Type"] == "AWS::Serverless::Function":  # what `sam package` does to a local CodeUri
        resource["Properties"]["CodeUri"] = "s3://artifacts/gateway.zip"

class NoManagedPolicies:
    def load(self):
        return {}

print(json.dumps(transform(template, {"StreamingMode": sys.argv[2]}, NoManagedPolicies())))
"""


# --------------------------------------------------------------------------- readings

@pytest.fixture(scope="module")
def template():
    decoded, problems = decode(str(TEMPLATE))
    assert not problems
    return decoded


@pytest.fixture(scope="module")
def function(template):
    return template["Resources"]["GatewayFunction"]["Properties"]


@pytest.fixture(scope="module")
def sam_python():
    subprocess.run([str(ROOT / "scripts" / "deploy"), "sam", "--version"], check=True, env=SAM_ENV,
                   capture_output=True, timeout=600)
    return SAM_PYTHON


@pytest.fixture(scope="module")
def translated(sam_python, tmp_path_factory):
    """mode -> (CloudFormation template as SAM produces it, its file)."""
    out = {}
    for mode in MODES:
        result = subprocess.run([str(sam_python), "-c", TRANSLATE, str(TEMPLATE), mode],
                                capture_output=True, text=True, env=SAM_ENV, timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
        path = tmp_path_factory.mktemp(mode) / "template.json"
        path.write_text(result.stdout)
        out[mode] = (json.loads(result.stdout), path)
    return out


def resolve(node, conditions: dict[str, bool]):
    """`node` with Fn::If decided and AWS::NoValue dropped, as CloudFormation does."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, when_true, when_false = node["Fn::If"]
            return resolve(when_true if conditions[name] else when_false, conditions)
        resolved = {key: resolve(value, conditions) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value != NO_VALUE}
    if isinstance(node, list):
        return [item for item in (resolve(value, conditions) for value in node) if item != NO_VALUE]
    return node


@pytest.fixture(scope="module", params=MODES)
def deployed(request, translated):
    """The resources CloudFormation would create in one mode, properties resolved."""
    mode = request.param
    cfn, _ = translated[mode]
    conditions = {"IsStreaming": mode == "streaming", "IsBuffered": mode == "buffered",
                  "SnapStartOn": True, "HasAlarmTopic": False, "HasNamePrefix": False}
    resources = {name: resolve(resource, conditions) for name, resource in cfn["Resources"].items()
                 if conditions.get(resource.get("Condition"), True)}
    return mode, resources


def of_type(resources, kind):
    return {name: r for name, r in resources.items() if r["Type"] == kind}


def function_of(resources):
    return resources["GatewayFunction"]["Properties"]


def statements(resources):
    role = resources["GatewayFunctionRole"]["Properties"]
    return [s for policy in role.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]


def actions(statement) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


# --------------------------------------------------------------------------- lint

def cfn_lint(path: Path) -> subprocess.CompletedProcess:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    return subprocess.run([str(cfn_lint), str(path)], capture_output=True, text=True)


def test_cfn_lint_passes_on_the_sam_source():
    result = cfn_lint(TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("mode", MODES)
def test_cfn_lint_passes_on_what_cloudformation_gets_in_each_mode(translated, mode):
    result = cfn_lint(translated[mode][1])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("mode", MODES)
def test_sam_validate_lint_passes_in_each_mode(sam_python, tmp_path, mode):
    variant = tmp_path / "template.yaml"  # the mode as the default, so sam lints that configuration
    source = TEMPLATE.read_text()
    variant.write_text(source.replace("    Default: buffered\n", f"    Default: {mode}\n", 1))
    assert variant.read_text() != source or mode == "buffered"
    result = subprocess.run([str(ROOT / "scripts" / "deploy"), "sam", "validate", "--lint", "--template",
                             str(variant)], capture_output=True, text=True, env=SAM_ENV, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- the SAM source

def test_the_table_keys_and_ttl_match_the_code(template):
    table = template["Resources"]["UsageTable"]["Properties"]
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == TABLE_KEYS
    assert {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]} == \
        dict.fromkeys(TABLE_KEYS, "S")
    assert table["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}


def test_the_secrets_are_created_without_key_material(template):
    resources = template["Resources"]
    assert json.loads(resources["KeysSecret"]["Properties"]["SecretString"]) == {"keys": []}
    assert json.loads(resources["ProvidersSecret"]["Properties"]["SecretString"]) == {"providers": {}}


def test_every_gateway_variable_the_template_sets_is_one_the_code_reads(function):
    config = (ROOT / "handler" / "config.py").read_text()
    variables = function["Environment"]["Variables"]
    assert {"GATEWAY_KEYS_SECRET_ID", "GATEWAY_PROVIDERS_SECRET_ID", "GATEWAY_USAGE_TABLE",
            "GATEWAY_LEDGER_QUEUE_URL"} <= set(variables)
    for name in variables:
        if name.startswith("GATEWAY_"):
            assert re.search(rf'"{name}"', config), f"{name} is set by the template but never read"
        else:
            assert name.startswith(("AWS_LWA_", "AWS_LAMBDA_EXEC_WRAPPER")), name


def test_the_fallback_queue_is_wired(function, template):
    granted = [s for policy in function["Policies"] for s in policy["Statement"] if s["Action"] == "sqs:SendMessage"]
    assert [s["Resource"] for s in granted] == [{"Fn::GetAtt": ["LedgerFallbackQueue", "Arn"]}]
    assert function["Environment"]["Variables"]["GATEWAY_LEDGER_QUEUE_URL"] == {"Ref": "LedgerFallbackQueue"}


# --------------------------------------------------------------------------- what gets deployed, per mode

def test_the_handler_is_the_entry_point_of_the_mode(deployed):
    mode, resources = deployed
    handler = function_of(resources)["Handler"]
    if mode == "buffered":
        module, _, name = handler.rpartition(".")
        assert (module, name) == ("handler.lambda_function", "lambda_handler")
    else:
        assert handler == "run.sh"
        assert "handler.snapstart:streaming_app" in RUN_SCRIPT


def test_the_environment_matches_the_mode(deployed):
    mode, resources = deployed
    variables = function_of(resources)["Environment"]["Variables"]
    adapter = {name: value for name, value in variables.items() if not name.startswith("GATEWAY_")}
    if mode == "buffered":
        assert adapter == {}
        assert function_of(resources).get("Layers", []) == []
        return
    assert adapter["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert adapter["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert adapter["AWS_LWA_READINESS_CHECK_PATH"] == "/health"
    assert "${AWS_LWA_PORT:-8080}" in RUN_SCRIPT and adapter["AWS_LWA_PORT"] == "8080"
    assert adapter["AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH"] == snapstart.AFTER_RESTORE_PATH
    assert adapter["AWS_LWA_SNAPSTART_BEFORE_CHECKPOINT_PATH"] == snapstart.BEFORE_SNAPSHOT_PATH
    [layer] = function_of(resources)["Layers"]
    assert "layer:LambdaAdapterLayerArm64:" in layer["Fn::Sub"]
    assert function_of(resources)["Architectures"] == ["arm64"]


def test_secrets_manager_access_is_only_get_secret_value_on_the_two_secrets_and_the_key_shards(deployed):
    _, resources = deployed
    granted = [s for s in statements(resources) if any(a.startswith("secretsmanager:") for a in actions(s))]
    assert [actions(s) for s in granted] == [["secretsmanager:GetSecretValue"]]
    assert sorted(r["Ref"] for r in granted[0]["Resource"] if "Ref" in r) == ["KeysSecret", "ProvidersSecret"]
    [shards] = [r["Fn::Sub"][0] for r in granted[0]["Resource"] if "Ref" not in r]
    assert shards.endswith(":secret:${Prefix}/keys/shard-*"), "key shards are named <prefix>/keys/shard-NNNN-of-NNNN"


def test_dynamodb_access_is_what_the_ledger_calls_on_the_table_only(deployed):
    _, resources = deployed
    [granted] = [s for s in statements(resources) if any(a.startswith("dynamodb:") for a in actions(s))]
    # TransactWriteItems is authorised per item action (Put, Update, ConditionCheck); reports Query and GetItem.
    assert set(actions(granted)) == {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem",
                                     "dynamodb:Query", "dynamodb:ConditionCheckItem"}
    assert granted["Resource"] == {"Fn::GetAtt": ["UsageTable", "Arn"]}


def test_nothing_else_is_granted(deployed):
    _, resources = deployed
    role = resources["GatewayFunctionRole"]["Properties"]
    assert [a for s in statements(resources) for a in actions(s)
            if not a.startswith(("secretsmanager:", "dynamodb:"))] == ["sqs:SendMessage"]
    assert all("*" not in str(s["Resource"]).replace("/keys/shard-*", "") for s in statements(resources))
    [managed] = role["ManagedPolicyArns"]  # CloudWatch Logs only
    assert managed.endswith(":iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")


def test_snapstart_runs_on_a_published_version_that_the_api_calls(deployed):
    mode, resources = deployed
    fn = function_of(resources)
    assert fn["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    [(alias_name, alias)] = of_type(resources, "AWS::Lambda::Alias").items()
    assert alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0] in of_type(resources, "AWS::Lambda::Version")
    [permission] = of_type(resources, "AWS::Lambda::Permission").values()
    assert permission["Properties"]["FunctionName"] == {"Ref": alias_name}
    assert permission["Properties"]["Principal"] == "apigateway.amazonaws.com"


def test_buffered_mode_is_an_http_api_and_streaming_mode_a_rest_api_that_streams(deployed):
    mode, resources = deployed
    [(alias_name, _)] = of_type(resources, "AWS::Lambda::Alias").items()
    http_apis = of_type(resources, "AWS::ApiGatewayV2::Api")
    rest_apis = of_type(resources, "AWS::ApiGateway::RestApi")
    if mode == "buffered":
        assert not rest_apis
        [api] = http_apis.values()
        assert api["Properties"]["ProtocolType"] == "HTTP"
        assert api["Properties"]["Target"] == {"Ref": alias_name}
        return
    assert not http_apis
    [api] = rest_apis.values()
    assert api["Properties"]["EndpointConfiguration"]["Types"] == ["REGIONAL"]
    paths = api["Properties"]["Body"]["paths"]
    assert set(paths) == {"/", "/{proxy+}"}
    for path in paths.values():
        integration = path["x-amazon-apigateway-any-method"]["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy"
        assert integration["responseTransferMode"] == "STREAM"
        assert integration["timeoutInMillis"] == 900_000
        parts = integration["uri"]["Fn::Join"][1]
        assert ":lambda:path/2021-11-15/functions/" in parts and {"Ref": alias_name} in parts
        assert parts[-1] == "/response-streaming-invocations"
    assert function_of(resources)["Timeout"] == {"Ref": "StreamingFunctionTimeout"}


def test_logs_are_kept_for_a_while_and_errors_and_throttles_raise_alarms(deployed):
    _, resources = deployed
    fn = function_of(resources)
    assert fn["LoggingConfig"]["LogGroup"] == {"Ref": "GatewayLogGroup"}
    assert resources["GatewayLogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    alarmed = {(a["Properties"]["MetricName"], json.dumps(a["Properties"]["Dimensions"]))
               for a in of_type(resources, "AWS::CloudWatch::Alarm").values()}
    function_dimension = json.dumps([{"Name": "FunctionName", "Value": {"Ref": "GatewayFunction"}}])
    assert {("Errors", function_dimension), ("Throttles", function_dimension)} <= alarmed


def test_the_outputs_name_what_an_operator_needs(translated):
    for cfn, _ in translated.values():
        assert {"ApiUrl", "UsageTableName", "KeysSecretId", "ProvidersSecretId",
                "LedgerFallbackQueueUrl"} <= set(cfn["Outputs"])
