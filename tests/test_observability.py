"""What an operator reads in CloudWatch: one JSON line per request, which carries its metrics (EMF).

Read from stdout, where Lambda's log pipeline takes them: through the Lambda
handler with API Gateway events (buffered mode), and through the app under
uvicorn driven by the SDK. Never in either: the caller's key, a provider
credential, the prompt.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import replace

import anthropic
import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from handler import aws
from handler.app import app as module_app
from handler.lambda_function import lambda_handler
from handler.metering.ledger import Ledger
from handler.observe.observation import METRIC_UNITS
from tests.support.lambda_events import LambdaContext, http_api_event
from tests.support.prompt_places import PROMPT_PLACES, prompt_everywhere
from tests.support.stack import ANTHROPIC_TEST_KEY, OPENAI_TEST_KEY, Stack, new_stack, providers_document, serve

CLAUDE = "anthropic/claude-sonnet-4-5"
HAIKU = "anthropic/claude-haiku-4-5"
MESSAGES = "/v3/v1/messages"


def written(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def request_lines(docs: list[dict]) -> list[dict]:
    return [doc for doc in docs if doc.get("message") == "request"]


def metrics_of(line: dict) -> list[dict]:
    """Each EMF directive of a line as {metric: value, "dimensions": [[...]], plus its dimension values},
    read as CloudWatch reads it: the values are the line's top-level fields the directive names."""
    found = []
    for directive in line.get("_aws", {}).get("CloudWatchMetrics", []):
        assert directive["Namespace"] == module_app.state.settings.metrics_namespace
        values = {m["Name"]: line[m["Name"]] for m in directive["Metrics"]}
        assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {n: METRIC_UNITS[n] for n in values}
        found.append({**values, "dimensions": directive["Dimensions"],
                      **{name: line[name] for dims in directive["Dimensions"] for name in dims}})
    return found


def series(line: dict) -> set[tuple]:
    """The CloudWatch metrics a line adds to: (name, ((dimension, value), ...)) for each."""
    return {(name, tuple((dim, metric[dim]) for dim in dims))
            for metric in metrics_of(line) for dims in metric["dimensions"]
            for name in metric if name[0].isupper()}


class Output:
    """Everything written to stdout so far (the server writes from its own threads)."""

    def __init__(self, capsys) -> None:
        self.capsys = capsys
        self.text = ""

    def wait_for(self, request_id: str | None, timeout: float = 10.0, **fields) -> tuple[dict, list[dict]]:
        """The request's line (by id, or by other fields) and the metrics it carries."""
        fields = {"request_id": request_id} if request_id else fields
        deadline = time.monotonic() + timeout
        while True:
            self.text += self.capsys.readouterr().out
            docs = written(self.text)
            lines = [d for d in request_lines(docs) if all(d.get(k) == v for k, v in fields.items())]
            if lines or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert len(lines) == 1, f"expected one request line for {request_id}, found {lines}"
        return lines[0], metrics_of(lines[0])


def main_metrics(documents: list[dict]) -> dict:
    [main] = [d for d in documents if d["dimensions"] == [["service"]]]
    return main


# --------------------------------------------------------------------------- the Lambda path

@pytest.fixture(scope="module")
def lambda_key(moto_endpoint, _fake_session):
    """A key for the module-level app (the one Lambda serves), beside any other module's.

    Its keys cache is emptied before and after: tests/test_lambda.py writes that secret too."""
    settings = module_app.state.settings
    Ledger(settings.usage_table).create_table()
    stack = Stack(settings, _fake_session.url)
    try:
        stack.keys = aws.read_json_secret(settings.keys_secret_id)["keys"]
    except ClientError:
        pass
    stack.put_providers(providers_document(_fake_session.url))
    key = stack.add_key(name="observed")
    module_app.state.keys.invalidate()
    yield stack, key
    module_app.state.keys.invalidate()


@pytest.mark.parametrize("stream", [False, True], ids=["message", "stream"])
def test_the_lambda_handler_writes_one_request_line_and_its_metrics(lambda_key, capsys, monkeypatch, stream):
    stack, key = lambda_key
    secrets = {place: f"{place}-{uuid.uuid4().hex}" for place in PROMPT_PLACES}
    body = {"model": CLAUDE, "max_tokens": 40, "stream": stream, **prompt_everywhere(secrets)}
    capsys.readouterr()
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-6759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
    response = lambda_handler(http_api_event("POST", MESSAGES, body=body, headers={"x-api-key": key}),
                              LambdaContext(aws_request_id="lambda-req-1"))
    assert response["statusCode"] == 200, response
    out = capsys.readouterr().out
    docs = written(out)

    [line] = request_lines(docs)
    assert line["request_id"] == response["headers"]["request-id"]
    assert (line["lambda_request_id"], line["api_gateway_request_id"]) == ("lambda-req-1", "Jd9sQgk1IAMEVxw=")
    assert line["trace_id"] == "1-6759e988-bd862e3fe1be46a994272793"
    assert line["key_id"] == stack.key_id(key) and line["status"] == 200 and line["stream"] is stream
    assert (line["requested_model"], line["served_model"], line["provider"]) == (CLAUDE, CLAUDE, "anthropic")
    assert line["ledger"] == "written" and line["fallbacks"] == 0
    assert [(a["model"], a["status"]) for a in line["attempts"]] == [(CLAUDE, 200)]
    assert line["latency_ms"] >= line["ttfb_ms"] >= 0 and line["level"] == "INFO"
    [record] = [r for r in stack.items(key, "REQ#") if r["request_id"] == line["request_id"]]
    assert line["outcome"] == record["status"]  # the table's word (a stream's has a known race: see README)
    if not stream:
        assert line["outcome"] == "ok"
    for field in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
        assert line[field] == int(record[field]), field
    assert line["cost_usd"] == pytest.approx(float(record["cost_usd"]))

    assert [doc for doc in docs if "_aws" in doc] == [line], "the metrics ride in the request line: one document"
    [main] = metrics_of(line)
    assert main["dimensions"] == [["service"]] and main["service"] == "edenai-gateway"
    assert main["Requests"] == 1 and main["Errors"] == 0 and main["LedgerSpills"] == 0
    assert main["Latency"] == line["latency_ms"] and main["TTFB"] == line["ttfb_ms"]
    assert main["AddedLatency"] == line["added_latency_ms"] <= line["ttfb_ms"]

    for secret in (key, ANTHROPIC_TEST_KEY, OPENAI_TEST_KEY):
        assert secret not in out, "a key or a provider credential reached the logs"
    for place, secret in secrets.items():
        assert secret not in out, f"the prompt's {place} reached the logs"


# --------------------------------------------------------------------------- through the SDK

def sdk(server, key) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=server.url + "/v3", max_retries=0, timeout=20)


def test_a_fallback_is_in_the_line_under_the_model_that_served(server, api_key, fake, capsys):
    fake.fail("claude-sonnet-4-5", status=529)
    output = Output(capsys)
    response = sdk(server, api_key).messages.with_raw_response.create(
        model=CLAUDE, max_tokens=20, messages=[{"role": "user", "content": "hi"}],
        extra_body={"fallbacks": [HAIKU]})
    line, documents = output.wait_for(response.headers["request-id"])
    assert line["served_model"] == HAIKU and line["fallbacks"] == 1
    assert [(a["model"], a["status"]) for a in line["attempts"]] == [(CLAUDE, 529), (HAIKU, 200)]
    assert main_metrics(documents)["Errors"] == 0, "a request a fallback saved is not an error"


def test_errors_are_counted_for_the_service_and_the_line_names_their_type_and_model(server, api_key, fake, capsys):
    fake.fail("claude-sonnet-4-5", status=529)
    output = Output(capsys)
    with pytest.raises(anthropic.APIStatusError) as failed:
        sdk(server, api_key).messages.create(model=CLAUDE, max_tokens=20, messages=[{"role": "user", "content": "hi"}])
    line, documents = output.wait_for(failed.value.response.headers["request-id"])
    assert (line["status"], line["error_type"], line["outcome"]) == (529, "overloaded_error", "error")
    assert line["attempts"][-1]["model"] == CLAUDE and line["provider"] == "anthropic"  # Logs Insights' view
    [main] = documents
    assert (main["Requests"], main["Errors"], main["dimensions"]) == (1, 1, [["service"]])

    bad_key = httpx.post(server.url + "/v3" + "/v1/messages", headers={"x-api-key": "egw_not_a_key"},
                         json={"model": "made-up-model-" + uuid.uuid4().hex, "max_tokens": 5, "messages": []})
    line, documents = output.wait_for(bad_key.headers["request-id"])
    assert line["error_type"] == "authentication_error" and "key_id" not in line
    assert "egw_not_a_key" not in output.text
    # A model name a caller typed never becomes a metric dimension (no one can mint metrics).
    assert [d["dimensions"] for d in documents] == [[["service"]]]


def test_more_models_keys_and_errors_add_no_metric_the_per_model_view_is_in_the_line(stack, fake, capsys,
                                                                                       monkeypatch):
    """CloudWatch bills each metric (name and dimension values) per month it is sent, whatever the traffic:
    the set is the service's few series plus one per function version, however many models answer,
    keys call or errors happen. Who, which model and what it cost are the line's fields."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "5")
    fake.fail("claude-sonnet-4-5", status=529)
    keys = [stack.add_key(), stack.add_key(limits={"monthly_usd": 1000})]
    output = Output(capsys)
    lines = []
    with serve(stack) as server:
        for key in keys:
            for model in (CLAUDE, HAIKU, "openai/gpt-4o-mini"):
                response = httpx.post(server.url + MESSAGES, headers={"x-api-key": key}, timeout=20,
                                      json={"model": model, "max_tokens": 5,
                                            "messages": [{"role": "user", "content": "hi"}]})
                lines.append(output.wait_for(response.headers["request-id"])[0])
    assert {line["status"] for line in lines} == {200, 529}
    assert {(line["attempts"][-1]["model"], line["provider"]) for line in lines} == {
        (CLAUDE, "anthropic"), (HAIKU, "anthropic"), ("openai/gpt-4o-mini", "openai")}
    assert len({line["key_id"] for line in lines}) == 2 and all("cost_usd" in line for line in lines)
    emitted = set().union(*(series(line) for line in lines))
    service = (("service", "edenai-gateway"),)
    assert emitted == {(name, service) for name in METRIC_UNITS} | {
        ("AddedLatency", (("service", "edenai-gateway"), ("version", "5")))}, \
        f"{len(emitted)} metrics billed monthly for 3 models and 2 keys: {sorted(emitted)}"


def test_a_limit_refusal_is_counted_with_the_key_in_the_line_only(stack, fake, capsys):
    key = stack.add_key(limits={"rpm": 1})
    output = Output(capsys)
    with serve(stack) as server:
        client = sdk(server, key)
        client.messages.create(model=CLAUDE, max_tokens=20, messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(anthropic.RateLimitError) as refused:
            client.messages.create(model=CLAUDE, max_tokens=20, messages=[{"role": "user", "content": "hi"}])
    line, documents = output.wait_for(refused.value.response.headers["request-id"])
    assert line["limit_refused"] is True and line["key_id"] == stack.key_id(key) and "attempts" not in line
    assert main_metrics(documents)["Errors"] == 1
    assert all(d["dimensions"] == [["service"]] for d in documents), "keys are never a metric dimension"


def test_an_opened_circuit_is_named_in_the_line(moto_endpoint, fake, capsys):
    stack = new_stack(fake.url, breaker_threshold=1)
    key = stack.add_key()
    fake.fail("claude-sonnet-4-5", status=500)
    output = Output(capsys)
    with serve(stack) as server:
        response = sdk(server, key).messages.with_raw_response.create(
            model=CLAUDE, max_tokens=20, messages=[{"role": "user", "content": "hi"}],
            extra_body={"fallbacks": [HAIKU]})
    line, documents = output.wait_for(response.headers["request-id"])
    assert line["breakers_opened"] == [CLAUDE]
    assert main_metrics(documents)["Errors"] == 0, "a fallback answered"


def test_usage_that_misses_the_table_is_counted_as_a_ledger_spill(moto_endpoint, fake, capsys):
    queue = boto3.client("sqs").create_queue(QueueName=f"spill-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    stack = new_stack(fake.url, ledger_queue_url=queue)
    dead = boto3.client("dynamodb", endpoint_url="http://127.0.0.1:9",
                        config=Config(retries={"max_attempts": 1}, connect_timeout=0.2, read_timeout=0.2))
    ledger = Ledger(stack.settings.usage_table, queue_url=queue, dynamodb=lambda: dead, backoff=0.001)
    key = stack.add_key()
    output = Output(capsys)
    with serve(stack, ledger=ledger) as server:
        with sdk(server, key).messages.stream(model=CLAUDE, max_tokens=20,
                                              messages=[{"role": "user", "content": "hi"}]) as stream:
            stream.get_final_message()
            request_id = stream.response.headers["request-id"]
    line, documents = output.wait_for(request_id)
    assert line["ledger"] == "queued" and line["stream"] is True and line["output_tokens"] > 0
    assert main_metrics(documents)["LedgerSpills"] == 1


def test_a_key_past_its_share_of_its_monthly_cap_is_flagged(moto_endpoint, fake, capsys):
    stack = new_stack(fake.url)
    stack.settings = replace(stack.settings, key_spend_alert_share=0.5)
    roomy, tight = stack.add_key(limits={"monthly_usd": 1000}), stack.add_key(limits={"monthly_usd": 0.0006})
    output = Output(capsys)
    seen = {}
    with serve(stack) as server:
        for name, key in (("roomy", roomy), ("tight", tight)):
            response = sdk(server, key).messages.with_raw_response.create(
                model=CLAUDE, max_tokens=20, messages=[{"role": "user", "content": "hi"}])
            seen[name] = output.wait_for(response.headers["request-id"])
    (roomy_line, roomy_docs), (tight_line, tight_docs) = seen["roomy"], seen["tight"]
    assert roomy_line["month_cap_share"] < 0.5 and roomy_line["key_over_spend_share"] is False
    assert main_metrics(roomy_docs)["KeySpendOverShare"] == 0
    assert tight_line["month_cap_share"] >= 0.5 and tight_line["key_over_spend_share"] is True
    assert tight_line["key_id"] == stack.key_id(tight)
    assert main_metrics(tight_docs)["KeySpendOverShare"] == 1


def test_a_line_still_waiting_for_its_entry_is_written_when_the_invocation_ends(capsys):
    """The Lambda handler flushes after draining: nothing is left for a frozen environment."""
    from handler.observe.observation import Observation
    from handler.observe.telemetry import Telemetry

    telemetry = Telemetry(service="edenai-gateway", namespace="EdenAIGateway", spend_share=0.8)
    waiting = Observation("POST", MESSAGES, 0.0, request_id="req_waiting", status=200, latency_ms=5,
                          served_model=CLAUDE, expects_entry=True)
    telemetry.started(waiting)
    telemetry.response_ended(waiting)
    assert request_lines(written(capsys.readouterr().out)) == [], "written before its entry came"
    telemetry.flush()
    telemetry.flush()
    [line] = request_lines(written(capsys.readouterr().out))
    assert line["request_id"] == "req_waiting" and "outcome" not in line


def test_fields_the_serving_provider_cannot_take_are_named_in_the_line(server, api_key, capsys):
    output = Output(capsys)
    response = sdk(server, api_key).messages.with_raw_response.create(
        model="openai/gpt-4o-mini", max_tokens=20, messages=[{"role": "user", "content": "hi"}],
        extra_body={"top_k": 5})
    line, documents = output.wait_for(response.headers["request-id"])
    assert line["dropped_fields"] == ["top_k"] and line["provider"] == "openai"
    assert line["served_model"] == "openai/gpt-4o-mini"

    response = sdk(server, api_key).messages.with_raw_response.create(
        model=CLAUDE, max_tokens=20, messages=[{"role": "user", "content": "hi"}], extra_body={"top_k": 5})
    line, _ = output.wait_for(response.headers["request-id"])
    assert "dropped_fields" not in line, "Anthropic models take top_k"


class BrokenLedger(Ledger):
    """A bug in the gateway's own code: the limit check raises something nobody handles."""

    def reserve(self, *args, **kwargs):
        raise RuntimeError("a bug")


@pytest.mark.parametrize("stream", [False, True], ids=["message", "stream"])
def test_a_slow_provider_makes_ttfb_large_but_not_the_latency_the_gateway_adds(server, api_key, fake, capsys,
                                                                                monkeypatch, stream):
    """A release is judged on AddedLatency (template.yaml's CanaryAddedLatencyAlarm), per version:
    the time to the first byte less every attempt's wait for its provider, a failed one included."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "7")
    fake.fail("claude-sonnet-4-5", status=529)
    fake.delay("claude-haiku-4-5", 2.0)
    output = Output(capsys)
    response = sdk(server, api_key).messages.with_raw_response.create(
        model=CLAUDE, max_tokens=20, stream=stream, messages=[{"role": "user", "content": "hi"}],
        extra_body={"fallbacks": [HAIKU]})
    if stream:
        assert [event.type for event in response.parse()][-1] == "message_stop"
    line, documents = output.wait_for(response.headers["request-id"])
    assert line["served_model"] == HAIKU and line["ttfb_ms"] >= 2000, line
    [added] = [d for d in documents if d["dimensions"] == [["service", "version"]]]
    assert added["AddedLatency"] == line["added_latency_ms"] == main_metrics(documents)["AddedLatency"]
    assert added["AddedLatency"] < 1000, f"the provider's 2 s counted as the gateway's own: {line}"
    assert added["version"] == "7"


def test_the_attempts_header_the_observation_reads_is_the_one_the_gateway_writes():
    from handler.observe.observation import ATTEMPTS_HEADER, upstream_wait_ms
    from handler.pipeline.gateway import ATTEMPTS_HEADER as WRITTEN, Attempt, attempts_header

    assert ATTEMPTS_HEADER == WRITTEN.encode()
    header = attempts_header([Attempt("anthropic/claude-sonnet-4-5", 529, 40), Attempt("openai/gpt-4o", 200, 812)])
    assert upstream_wait_ms(header.encode()) == 852


def test_an_unhandled_exception_is_the_error_type_a_release_rolls_back_on(stack, fake, capsys, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "12")
    key = stack.add_key(limits={"rpm": 10})
    output = Output(capsys)
    with serve(stack, ledger=BrokenLedger(stack.settings.usage_table)) as server:
        response = httpx.post(server.url + MESSAGES, headers={"x-api-key": key},
                              json={"model": CLAUDE, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 500 and response.json()["error"]["type"] == "api_error"
    line, documents = output.wait_for(None, exception="RuntimeError", key_id=stack.key_id(key))
    assert response.headers.get("request-id") == line["request_id"], "a 500 must carry its request-id too"
    assert (line["status"], line["error_type"], line["exception"]) == (500, "unhandled_exception", "RuntimeError")
    [errors] = [d for d in documents if "error_type" in d]
    # template.yaml's CanaryUnhandledErrorsAlarm watches exactly this series: the new version's only
    # (ExecutedVersion's counterpart).
    assert (errors["service"], errors["error_type"], errors["version"]) == ("edenai-gateway", "unhandled_exception", "12")
    assert errors["dimensions"] == [["service", "error_type", "version"]] and errors["Errors"] == 1


def test_under_the_lambda_web_adapter_the_line_carries_the_invocation_ids(server, api_key, capsys):
    """Streaming mode: the adapter passes Lambda's and API Gateway's contexts as JSON headers."""
    output = Output(capsys)
    headers = {"x-api-key": api_key,
               "x-amzn-lambda-context": json.dumps({"request_id": "lambda-42", "deadline": 0,
                                                    "xray_trace_id": "Root=1-5759e988-bd862e3fe1be46a994272793"}),
               "x-amzn-request-context": json.dumps({"requestId": "apigw-42", "stage": "prod"})}
    response = httpx.post(server.url + MESSAGES, headers=headers,
                          json={"model": CLAUDE, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
    line, _ = output.wait_for(response.headers["request-id"])
    assert (line["lambda_request_id"], line["api_gateway_request_id"]) == ("lambda-42", "apigw-42")
    assert line["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
