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

from handler.runtime import snapstart
from handler.metering.items import TABLE_KEYS, TTL_ATTRIBUTE

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

print(json.dumps(transform(template, json.loads(sys.argv[2]), NoManagedPolicies())))
"""
DIGEST = "5" * 64  # what scripts/deploy passes as ConfigDigest (no default: a deploy cannot skip it)


def translate(sam_python, parameters: dict) -> dict:
    """template.yaml as SAM's translator hands it to CloudFormation for these parameter values."""
    result = subprocess.run([str(sam_python), "-c", TRANSLATE, str(TEMPLATE), json.dumps(parameters)],
                            capture_output=True, text=True, env=SAM_ENV, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


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
        cfn = translate(sam_python, {"StreamingMode": mode, "ConfigDigest": DIGEST})
        path = tmp_path_factory.mktemp(mode) / "template.json"
        path.write_text(json.dumps(cfn))
        out[mode] = (cfn, path)
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
                  "SnapStartOn": True, "HasAlarmTopic": False, "HasNamePrefix": False, "HasBedrockModels": True,
                  "HasReservedConcurrency": False, "TracingActive": True,
                  "CreatesApiGatewayLogRole": mode == "streaming"}
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
    granted = [s for policy in function["Policies"] for s in policy["Statement"] if s.get("Action") == "sqs:SendMessage"]
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
        assert "handler.runtime.snapstart:streaming_app" in RUN_SCRIPT


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
            if not a.startswith(("secretsmanager:", "dynamodb:", "bedrock:"))] == ["sqs:SendMessage"]
    assert all("*" not in str(s["Resource"]).replace("/keys/shard-*", "") for s in statements(resources))
    # CloudWatch Logs, and X-Ray's write-only access for Tracing: Active.
    assert sorted(arn.rsplit(":policy/", 1)[1] for arn in role["ManagedPolicyArns"]) == \
        ["AWSXrayWriteOnlyAccess", "service-role/AWSLambdaBasicExecutionRole"]


def test_bedrock_is_invoked_only_on_the_model_arns_the_operator_lists(deployed, template):
    _, resources = deployed
    [granted] = [s for s in statements(resources) if any(a.startswith("bedrock:") for a in actions(s))]
    assert set(actions(granted)) == {"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream", "bedrock:CountTokens"}
    assert granted["Resource"] == {"Fn::Split": [",", {"Ref": "BedrockModelArns"}]}
    pattern = re.compile(template["Parameters"]["BedrockModelArns"]["AllowedPattern"])
    listed = ("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0,"
              "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert pattern.match(listed) and pattern.match("")
    for wildcard in ("*", "arn:aws:bedrock:*::foundation-model/*", "arn:aws:bedrock:us-east-1::foundation-model/*",
                     listed + ",*"):
        assert not pattern.match(wildcard), f"the template would grant Bedrock on {wildcard!r}"


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
               for a in of_type(resources, "AWS::CloudWatch::Alarm").values() if "MetricName" in a["Properties"]}
    function_dimension = json.dumps([{"Name": "FunctionName", "Value": {"Ref": "GatewayFunction"}}])
    assert {("Errors", function_dimension), ("Throttles", function_dimension)} <= alarmed


def test_the_outputs_name_what_an_operator_needs(translated):
    for cfn, _ in translated.values():
        assert {"ApiUrl", "UsageTableName", "KeysSecretId", "ProvidersSecretId",
                "LedgerFallbackQueueUrl"} <= set(cfn["Outputs"])


# --------------------------------------------------------------------------- deploys and deletes

PACKAGER = _load_packager()


def version_ids(cfn) -> list[str]:
    return [name for name, r in cfn["Resources"].items() if r["Type"] == "AWS::Lambda::Version"]


def test_a_parameter_only_redeploy_publishes_a_new_version_and_moves_the_alias(sam_python, tmp_path):
    """Switching modes (or memory, or SnapStart) must change what `live` runs: SAM names the
    version after ConfigDigest, which scripts/deploy computes from the build and the settings."""
    artifact = tmp_path / "artifact"
    (artifact / "handler").mkdir(parents=True)
    (artifact / "handler" / "app.py").write_text("app = None\n")
    settings = {mode: [f"StreamingMode={mode}", "FunctionMemorySize=1024", "EnableSnapStart=true"]
                for mode in MODES}
    digests = {mode: PACKAGER.config_digest(artifact, TEMPLATE, parameters)
               for mode, parameters in settings.items()}
    assert digests["buffered"] != digests["streaming"]
    assert PACKAGER.config_digest(artifact, TEMPLATE, settings["buffered"][::-1]) == digests["buffered"], \
        "the same settings in another order must not publish a new version"
    bigger = PACKAGER.config_digest(artifact, TEMPLATE, [*settings["buffered"][:1], "FunctionMemorySize=2048",
                                                         *settings["buffered"][2:]])
    (artifact / "handler" / "app.py").write_text("app = 'changed'\n")
    new_code = PACKAGER.config_digest(artifact, TEMPLATE, settings["buffered"])
    assert len({digests["buffered"], digests["streaming"], bigger, new_code}) == 4

    ids = {}
    for name, (mode, digest) in {"buffered": ("buffered", digests["buffered"]),
                                 "streaming": ("streaming", digests["streaming"]),
                                 "buffered, 2 GB": ("buffered", bigger),
                                 "buffered again": ("buffered", digests["buffered"])}.items():
        cfn = translate(sam_python, {"StreamingMode": mode, "ConfigDigest": digest})
        [ids[name]] = version_ids(cfn)
        [alias] = [r for r in cfn["Resources"].values() if r["Type"] == "AWS::Lambda::Alias"]
        assert alias["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [ids[name], "Version"]}
    assert len({ids["buffered"], ids["streaming"], ids["buffered, 2 GB"]}) == 3, \
        f"a redeploy with other settings would leave `live` on the old version: {ids}"
    assert ids["buffered again"] == ids["buffered"], "an unchanged redeploy must not publish a version"


def test_the_config_digest_is_required_so_no_deploy_can_skip_it(template):
    parameter = template["Parameters"]["ConfigDigest"]
    assert "Default" not in parameter
    assert re.fullmatch(parameter["AllowedPattern"], PACKAGER.config_digest(ROOT / "scripts", TEMPLATE, []))
    function = template["Resources"]["GatewayFunction"]["Properties"]
    assert function["AutoPublishCodeSha256"] == {"Ref": "ConfigDigest"}
    deploy = (ROOT / "scripts" / "deploy").read_text()
    assert '"ConfigDigest=$DIGEST"' in deploy and "_package.py\" digest" in deploy


def test_what_holds_keys_and_usage_survives_a_delete_but_not_a_failed_first_create(template):
    """Retain on a fixed name made a retry after a failed create fail ("already exists");
    the fallback queue holds usage not yet in the table, so it is kept like the table."""
    resources = template["Resources"]
    for name in ("KeysSecret", "ProvidersSecret", "UsageTable", "LedgerFallbackQueue"):
        assert resources[name]["DeletionPolicy"] == "RetainExceptOnCreate", name
        assert resources[name]["UpdateReplacePolicy"] == "Retain", name
    assert "DeletionPolicy" not in resources["GatewayLogGroup"]


def test_buffered_mode_cannot_be_given_a_timeout_longer_than_the_http_api_waits(template):
    parameters = template["Parameters"]
    assert parameters["FunctionTimeout"]["MaxValue"] == 30
    assert parameters["RequestDeadlineSeconds"]["Default"] < parameters["FunctionTimeout"]["Default"]
    assert parameters["StreamingFunctionTimeout"]["MaxValue"] == 900


def test_the_adapter_layer_is_refused_where_it_is_not_published(template):
    function = template["Resources"]["GatewayFunction"]["Properties"]
    layer = function["Layers"][0]["Fn::If"][1]["Fn::Sub"]
    assert layer.startswith("arn:aws:lambda:${AWS::Region}:753240598075:")  # commercial partition only
    rule = template["Rules"]["AdapterLayerRegion"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "StreamingMode"}, "streaming"]}
    [assertion] = rule["Assertions"]
    refused = assertion["Assert"]["Fn::Not"][0]["Fn::Contains"][0]
    assert {"me-south-1", "me-central-1"} <= set(refused)
    for region in refused:  # scripts/deploy says so before building anything
        result = subprocess.run([str(ROOT / "scripts" / "deploy"), "--region", region, "--mode", "streaming"],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 2 and f"not published in {region}" in result.stderr, result.stderr


def test_deploy_refuses_a_stack_name_too_long_for_the_function_name():
    result = subprocess.run([str(ROOT / "scripts" / "deploy"), "--region", "eu-west-1",
                             "--stack-name", "s" * 57], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "at most 56" in result.stderr and "--name-prefix" in result.stderr


def test_deploy_refuses_a_name_prefix_the_template_would_refuse(template):
    """template.yaml's NamePrefix allows 40 characters: a longer --name-prefix is refused before
    anything is built, not by CloudFormation after the build."""
    pattern = template["Parameters"]["NamePrefix"]["AllowedPattern"]
    assert pattern == "^[a-zA-Z0-9-]{0,40}$", "the deploy script's check mirrors this pattern"
    for prefix in ("p" * 41, "has_underscore"):
        result = subprocess.run([str(ROOT / "scripts" / "deploy"), "--region", "eu-west-1", "--name-prefix", prefix],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 2 and "at most 40" in result.stderr, (prefix, result.stderr)


def test_deploy_help_names_the_command_and_describes_every_option():
    result = subprocess.run([str(ROOT / "scripts" / "deploy"), "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout.startswith("usage: scripts/deploy")
    script = (ROOT / "scripts" / "deploy").read_text()
    options = set(re.findall(r"^\s+(--[a-z-]+)\)", script, re.M))
    assert options >= {"--stack-name", "--region", "--mode", "--name-prefix"}
    for option in options:
        assert re.search(rf"^  {option}\b.*\S", result.stdout, re.M), f"--help does not describe {option}"


def test_deploy_names_a_missing_prerequisite_before_building_anything(tmp_path):
    bin_dir = tmp_path / "bin"  # a PATH with what the script needs to start, and no make
    bin_dir.mkdir()
    (bin_dir / "dirname").symlink_to(subprocess.run(["sh", "-c", "command -v dirname"], capture_output=True,
                                                   text=True, check=True).stdout.strip())
    result = subprocess.run(["/bin/bash", str(ROOT / "scripts" / "deploy"), "--region", "eu-west-1"],
                            capture_output=True, text=True, timeout=30, env={"PATH": str(bin_dir)})
    assert result.returncode == 2 and "make is needed" in result.stderr, result.stderr


# --------------------------------------------------------------------------- operating it

from handler.observe.observation import METRIC_UNITS  # noqa: E402


def dashboard_metric_names(body: str, namespace_placeholder: str = "${Namespace}") -> set[str]:
    """Every metric of the gateway's namespace the dashboard draws: listed ones and SEARCH expressions."""
    document = json.loads(body)
    names = set()
    for widget in document["widgets"]:
        for row in widget["properties"].get("metrics", []):
            if isinstance(row[0], str) and row[0] == namespace_placeholder:
                names.add(row[1])
            for part in row:
                if isinstance(part, dict) and "expression" in part:
                    assert namespace_placeholder in part["expression"], part
                    names.update(re.findall(r'MetricName="(\w+)"', part["expression"]))
    return names


def test_the_dashboard_draws_exactly_the_metrics_the_gateway_emits(template):
    body, variables = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert variables["Namespace"] == {"Ref": "MetricsNamespace"}
    assert variables["Service"] == {"Ref": "GatewayFunction"}  # the function name, GATEWAY_SERVICE_NAME's value
    assert dashboard_metric_names(body) == set(METRIC_UNITS)
    document = json.loads(body)
    queries = {w["properties"]["title"]: w["properties"]["query"] for w in document["widgets"] if w["type"] == "log"}
    assert any("by key_id" in q and "month_cap_share" in q for q in queries.values()), queries
    assert any("by served_model" in q and "cost_usd" in q for q in queries.values()), queries
    assert not any("SEARCH(" in json.dumps(w) for w in document["widgets"]), \
        "a SEARCH over per-model metrics needs a metric per model, billed monthly"


def test_alarms_on_gateway_metrics_name_only_metrics_it_emits(template):
    alarms = {name: r["Properties"] for name, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    ours = {name: a for name, a in alarms.items() if a.get("Namespace") == {"Ref": "MetricsNamespace"}}
    assert {a["MetricName"] for a in ours.values()} == {"TTFB", "AddedLatency", "LedgerSpills", "KeySpendOverShare",
                                                         "Errors"}
    assert set(a["MetricName"] for a in ours.values()) <= set(METRIC_UNITS)
    for alarm in ours.values():
        assert {"Name": "service", "Value": {"Ref": "GatewayFunction"}} in alarm["Dimensions"]
    assert {"Name": "error_type", "Value": "unhandled_exception"} in ours["CanaryUnhandledErrorsAlarm"]["Dimensions"]
    assert {"ApiServerErrorsAlarm", "LatencyAlarm", "LedgerSpillsAlarm", "KeySpendAlarm",
            "FunctionErrorsAlarm", "FunctionThrottlesAlarm", "LedgerFallbackAlarm"} <= set(alarms)


LINE_FIELDS = {"served_model", "provider", "key_id", "cost_usd", "input_tokens", "output_tokens", "ttfb_ms",
               "error_type", "fallbacks", "breakers_opened", "month_cap_share", "limit_refused"}


def test_per_model_provider_and_key_views_are_saved_queries_on_the_request_lines(template):
    """Views a metric per model, provider or key would have given, billed every month whatever the
    traffic: saved Logs Insights queries instead, on the function's log group, by the line's fields."""
    resources = template["Resources"]
    saved = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::Logs::QueryDefinition"}
    by = {field for q in saved.values() for field in re.findall(r" by ([\w, ]+)", q["QueryString"])}
    grouped = {field.strip() for group in by for field in group.split(",")}
    assert {"served_model", "provider", "key_id", "error_type"} <= grouped, grouped
    for name, query in saved.items():
        assert query["LogGroupNames"] == [{"Ref": "GatewayLogGroup"}], name
        assert query["QueryString"].startswith("filter message = 'request'"), name
        assert "-gateway/" in json.dumps(query["Name"]), name
    read = {f for q in saved.values() for f in re.findall(r"[a-z_]+", q["QueryString"]) if f in LINE_FIELDS}
    assert read == LINE_FIELDS, LINE_FIELDS - read
    assert not [r for r in resources.values() if r["Type"] == "AWS::CloudWatch::InsightRule"], \
        "a Contributor Insights rule is billed every month; the saved queries are not"


def test_the_settings_the_gateway_reads_for_its_metrics_come_from_the_template(function):
    variables = function["Environment"]["Variables"]
    assert variables["GATEWAY_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}
    assert variables["GATEWAY_KEY_SPEND_ALERT_SHARE"] == {"Ref": "KeySpendAlertShare"}
    assert variables["GATEWAY_SERVICE_NAME"] == function["FunctionName"]
    assert function["LoggingConfig"]["LogFormat"] == "JSON"
    assert function["Tracing"] == {"Ref": "TracingMode"}


def test_a_release_goes_out_gradually_and_rolls_back_on_its_alarms_in_both_modes(deployed):
    mode, resources = deployed
    [group] = of_type(resources, "AWS::CodeDeploy::DeploymentGroup").values()
    alarms = {a["Name"]["Ref"] for a in group["Properties"]["AlarmConfiguration"]["Alarms"]}
    assert alarms == {"CanaryFunctionErrorsAlarm", "CanaryUnhandledErrorsAlarm", "CanaryAddedLatencyAlarm"}
    assert group["Properties"]["AlarmConfiguration"]["Enabled"] is True
    assert set(group["Properties"]["AutoRollbackConfiguration"]["Events"]) >= {"DEPLOYMENT_FAILURE",
                                                                                "DEPLOYMENT_STOP_ON_ALARM"}
    [alias] = of_type(resources, "AWS::Lambda::Alias").values()
    assert "CodeDeployLambdaAliasUpdate" in alias["UpdatePolicy"]
    # The API in front calls that alias in either mode, so the canary's share is real traffic.
    [permission] = of_type(resources, "AWS::Lambda::Permission").values()
    assert permission["Properties"]["FunctionName"]["Ref"] in of_type(resources, "AWS::Lambda::Alias")


def test_a_release_is_rolled_back_by_its_own_version_s_faults_only(deployed):
    """The alias's metrics hold every version behind it (the old one's errors, a slow model):
    each release alarm selects the version being published, and none watches the providers' time."""
    mode, resources = deployed
    [version_id] = of_type(resources, "AWS::Lambda::Version")
    new_version = {"Fn::GetAtt": [version_id, "Version"]}
    [group] = of_type(resources, "AWS::CodeDeploy::DeploymentGroup").values()
    for ref in group["Properties"]["AlarmConfiguration"]["Alarms"]:
        alarm = resources[ref["Name"]["Ref"]]["Properties"]
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        assert new_version in dimensions.values(), f"{ref} watches every version behind the alias: {dimensions}"
        assert alarm["MetricName"] not in ("TTFB", "Latency"), f"{ref} rolls back on a slow model or a long answer"
    lambda_errors = resources["CanaryFunctionErrorsAlarm"]["Properties"]
    assert (lambda_errors["Namespace"], lambda_errors["MetricName"]) == ("AWS/Lambda", "Errors")
    assert {d["Name"]: d["Value"] for d in lambda_errors["Dimensions"]} == {
        "FunctionName": {"Ref": "GatewayFunction"}, "Resource": {"Fn::Sub": "${GatewayFunction}:live"},
        "ExecutedVersion": new_version}
    unhandled = {d["Name"]: d["Value"] for d in resources["CanaryUnhandledErrorsAlarm"]["Properties"]["Dimensions"]}
    assert unhandled == {"service": {"Ref": "GatewayFunction"}, "error_type": "unhandled_exception",
                         "version": new_version}
    added = resources["CanaryAddedLatencyAlarm"]["Properties"]
    assert (added["MetricName"], added["ExtendedStatistic"]) == ("AddedLatency", "p99")
    assert {d["Name"]: d["Value"] for d in added["Dimensions"]} == {"service": {"Ref": "GatewayFunction"},
                                                                    "version": new_version}
    assert added["Threshold"] == {"Ref": "AddedLatencyAlarmMilliseconds"}
    assert "LatencyAlarm" in resources, "the providers' TTFB still tells the operator"


def test_api_access_logs_are_json_and_the_stage_is_throttled(deployed):
    mode, resources = deployed
    if mode == "buffered":
        [overrides] = of_type(resources, "AWS::ApiGatewayV2::ApiGatewayManagedOverrides").values()
        stage = overrides["Properties"]["Stage"]
        access = stage["AccessLogSettings"]
        assert stage["DefaultRouteSettings"] == {"ThrottlingRateLimit": {"Ref": "ThrottleRateLimit"},
                                                 "ThrottlingBurstLimit": {"Ref": "ThrottleBurstLimit"}}
    else:
        [stage] = of_type(resources, "AWS::ApiGateway::Stage").values()
        access = stage["Properties"]["AccessLogSetting"]
        [settings] = stage["Properties"]["MethodSettings"]
        assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == \
            ({"Ref": "ThrottleRateLimit"}, {"Ref": "ThrottleBurstLimit"})
        assert stage["Properties"]["TracingEnabled"] is True
        assert resources["ApiGatewayAccount"]["Properties"]["CloudWatchRoleArn"] == \
            {"Fn::GetAtt": ["ApiGatewayLogRole", "Arn"]}
        # Set once the function's version is published, not right after its new role (aws-cdk #2194).
        assert resources["ApiGatewayAccount"]["DependsOn"] in of_type(resources, "AWS::Lambda::Alias")
    fields = json.loads(access["Format"])
    assert {"requestId", "status", "responseLatency", "integrationLatency"} <= set(fields)
    assert not [v for v in fields.values() if "header" in v.lower()], "headers carry keys: never logged"
    assert access["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}


def test_the_memory_size_and_snapstart_defaults_are_the_measured_choice(template):
    """512 MB: the smallest size whose added latency stays within half of LiteLLM Proxy's, with twice
    the peak RSS (scripts/benchmark/cost.py); SnapStart off: its snapshots are billed at rest."""
    from scripts.benchmark.cost import BENCH
    from scripts.benchmark.cost_model import smallest_memory

    parameters = template["Parameters"]
    chosen = smallest_memory(cpu_ms=BENCH["cpu_ms"], added_ms=BENCH["added_ms"],
                             peer_added_ms=BENCH["peer_added_ms"], peak_rss_mb=BENCH["peak_rss_mb"])
    assert parameters["FunctionMemorySize"]["Default"] == chosen == 512
    assert parameters["EnableSnapStart"]["Default"] == "false"
    deploy = (ROOT / "scripts" / "deploy").read_text()
    assert f'MEMORY="{chosen}"' in deploy and 'SNAPSTART="false"' in deploy, "scripts/deploy's defaults differ"


def test_reserved_concurrency_is_a_parameter(template):
    function = template["Resources"]["GatewayFunction"]["Properties"]
    assert function["ReservedConcurrentExecutions"] == \
        {"Fn::If": ["HasReservedConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]}


# --------------------------------------------------------------------------- region and account settings

def test_snapstart_is_refused_where_it_is_not_offered(template):
    """AWS: "Lambda SnapStart is available in all commercial Regions except Asia Pacific (New Zealand)
    and Asia Pacific (Taipei)" (ap-southeast-6, ap-east-2). Said before anything is built, and by the
    template to a direct `sam deploy`."""
    rule = template["Rules"]["SnapStartRegion"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "EnableSnapStart"}, "true"]}
    [assertion] = rule["Assertions"]
    refused = assertion["Assert"]["Fn::Not"][0]["Fn::Contains"][0]
    assert set(refused) == {"ap-southeast-6", "ap-east-2"}
    for region in refused:
        result = subprocess.run([str(ROOT / "scripts" / "deploy"), "--region", region, "--snapstart", "true"],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 2 and f"SnapStart is not offered in {region}" in result.stderr \
            and "--snapstart false" in result.stderr, result.stderr
    result = subprocess.run([str(ROOT / "scripts" / "deploy"), "--region", "eu-west-1", "--snapstart", "yes"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "--snapstart is true or false" in result.stderr


def test_the_api_gateway_logs_role_is_set_outside_the_stack_and_never_deleted_with_it(template):
    """The region's setting (one per account and region) names a role; a stack that sets it right after
    creating the role races IAM (aws-cdk #2194), and one that deletes the role leaves the setting naming
    nothing. scripts/deploy sets it before the stack needs it; the stack only does when asked, and
    then keeps the role."""
    assert template["Parameters"]["CreateApiGatewayLogRole"]["Default"] == "false"
    role = template["Resources"]["ApiGatewayLogRole"]
    assert (role["DeletionPolicy"], role["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert template["Resources"]["ApiGatewayAccount"]["DeletionPolicy"] == "Retain"
    script = (ROOT / "scripts" / "deploy").read_text()
    assert script.count("\nensure_log_role\n") == 2, "set before the deploy (the stage needs it) and after it"
    assert script.index("\nensure_log_role\n") < script.index('"$SAM_VENV/bin/sam" deploy')


def _log_role_script():
    spec = importlib.util.spec_from_file_location("_apigw_log_role", ROOT / "scripts" / "_apigw_log_role.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _NotPropagatedYet:
    """API Gateway while IAM has not propagated a new role: refuses it `times` times (aws-cdk #2194's error)."""

    def __init__(self, apigateway, times: int) -> None:
        self._apigateway, self.refusals = apigateway, times

    def __getattr__(self, name):
        return getattr(self._apigateway, name)

    def update_account(self, **kwargs):
        from botocore.exceptions import ClientError
        if self.refusals:
            self.refusals -= 1
            raise ClientError({"Error": {"Code": "BadRequestException", "Message": (
                "The role ARN does not have required permissions set to API Gateway")}}, "UpdateAccount")
        return self._apigateway.update_account(**kwargs)


def test_the_logs_role_is_set_once_retried_while_iam_propagates_and_an_existing_one_is_kept(moto_endpoint,
                                                                                           monkeypatch):
    import boto3
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    # IAM with AWS's managed policies (AmazonAPIGatewayPushToCloudWatchLogs among them), as in an account.
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    iam_backends[DEFAULT_ACCOUNT_ID]["global"].reset()
    script = _log_role_script()
    apigateway, iam = boto3.client("apigateway", region_name="eu-west-1"), boto3.client("iam", region_name="eu-west-1")
    apigateway.update_account(patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn",
                                                "value": "arn:aws:iam::123456789012:role/deleted-with-its-stack"}])
    pauses: list[float] = []
    racing = _NotPropagatedYet(apigateway, times=2)
    arn = script.ensure(racing, iam, sleep=pauses.append)
    assert racing.refusals == 0 and len(pauses) == 2, "the first deploy gave up while IAM propagated the role"
    assert arn.endswith(f":role/{script.ROLE_NAME}") and apigateway.get_account()["cloudwatchRoleArn"] == arn, \
        "the setting still names a deleted role"
    policies = iam.list_attached_role_policies(RoleName=script.ROLE_NAME)["AttachedPolicies"]
    assert [p["PolicyName"] for p in policies] == ["AmazonAPIGatewayPushToCloudWatchLogs"]

    other = iam.create_role(RoleName="the-accounts-own", AssumeRolePolicyDocument=script.TRUST)["Role"]["Arn"]
    apigateway.update_account(patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": other}])
    assert script.ensure(_NotPropagatedYet(apigateway, times=5), iam, sleep=pauses.append) == other
    assert apigateway.get_account()["cloudwatchRoleArn"] == other, "a role other APIs of the region use was replaced"


def test_the_benchmarks_deployed_targets_run_in_the_environment_lambda_gives_this_function(template, function):
    """scripts/bench's function processes get what Lambda sets for this template's function: the
    runtime (awslambdaric polls `next` from a thread of its own under a managed python3.12 or later)
    and the log format, whose application log level is INFO when none is set."""
    from scripts.benchmark.targets import LAMBDA_ENVIRONMENT

    runtime = template["Globals"]["Function"]["Runtime"]
    assert LAMBDA_ENVIRONMENT["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{runtime}"
    logging = function["LoggingConfig"]
    assert LAMBDA_ENVIRONMENT["AWS_LAMBDA_LOG_FORMAT"] == logging["LogFormat"]
    assert LAMBDA_ENVIRONMENT["AWS_LAMBDA_LOG_LEVEL"] == logging.get("ApplicationLogLevel", "INFO")
