"""The fake Bedrock runtime is faithful: botocore decodes its framing and litellm,
driven straight at it, gets the answers real Bedrock would give.

litellm's Bedrock code (its own SigV4 signing through botocore, its own
event-stream decoder, its own Converse and InvokeModel parsers) is the
reference here, not the gateway's.
"""

from __future__ import annotations

import asyncio
import base64
import json

import litellm
import pytest
from urllib.parse import unquote
from botocore.eventstream import EventStreamBuffer

from tests.support.fake_bedrock import FakeBedrock, chunk_event, exception_event

REGION = "eu-west-3"
CLAUDE = "anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-lite-v1:0"
TOOL = {"type": "function", "function": {"name": "lookup", "description": "Look a thing up.",
                                         "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}


@pytest.fixture(scope="module")
def bedrock():
    with FakeBedrock(access_key_id="AKIAFAKEBEDROCK01", secret_key="fake-secret", region=REGION) as fake:
        yield fake


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch, bedrock):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", bedrock.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", bedrock.secret_key)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bedrock.clear()
    bedrock.clear_faults()


# One loop for the module: litellm keeps its HTTP clients per process, bound to the first loop.
LOOP = asyncio.new_event_loop()


def run(coroutine):
    return LOOP.run_until_complete(coroutine)


def complete(bedrock, model, **kwargs):
    return run(litellm.acompletion(model=f"bedrock/{model}", api_base=bedrock.url, aws_region_name=REGION,
                                   max_tokens=50, num_retries=0, **kwargs))


async def collect(stream):
    return [chunk async for chunk in stream]


def test_event_stream_frames_decode_with_botocore_and_carry_anthropic_events():
    event = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}}
    decoder = EventStreamBuffer()
    decoder.add_data(chunk_event(event) + exception_event("ThrottlingException", "slow down"))
    chunk, failure = list(decoder)
    assert chunk.headers[":event-type"] == "chunk" and chunk.headers[":message-type"] == "event"
    assert json.loads(base64.b64decode(json.loads(chunk.payload)["bytes"])) == event
    assert failure.headers[":exception-type"] == "throttlingException"
    assert json.loads(failure.payload) == {"message": "slow down"}


def test_litellm_invokes_claude_with_anthropics_body_and_reads_the_answer(bedrock):
    response = complete(bedrock, f"invoke/{CLAUDE}", messages=[{"role": "user", "content": "hello there"}])
    assert response.choices[0].message.content == f"Hello from {CLAUDE}: hello there"
    assert response.usage.prompt_tokens == 2 and response.usage.completion_tokens == 5
    sent = bedrock.last()
    assert unquote(sent.path) == f"/model/{CLAUDE}/invoke"
    assert sent.body["anthropic_version"] == "bedrock-2023-05-31" and "model" not in sent.body


def test_litellm_reads_claudes_event_stream(bedrock):
    stream = complete(bedrock, f"invoke/{CLAUDE}", messages=[{"role": "user", "content": "hello there"}],
                      stream=True)
    chunks = run(collect(stream))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"Hello from {CLAUDE}: hello there"
    assert bedrock.last().path.endswith("/invoke-with-response-stream")


def test_litellm_speaks_converse_to_nova_with_tools_both_ways(bedrock):
    response = complete(bedrock, NOVA, messages=[{"role": "user", "content": "find cats"}], tools=[TOOL])
    call = response.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("lookup", {"query": "find cats"})
    assert response.choices[0].finish_reason == "tool_calls"
    assert unquote(bedrock.last().path) == f"/model/{NOVA}/converse"
    answered = complete(bedrock, NOVA, tools=[TOOL], messages=[
        {"role": "user", "content": "find cats"},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "three cats"}])
    assert answered.choices[0].message.content == "Tool said: three cats"


def test_litellm_reads_nova_converse_stream_with_usage(bedrock):
    stream = complete(bedrock, NOVA, messages=[{"role": "user", "content": "hello there"}], stream=True,
                      stream_options={"include_usage": True})
    chunks = run(collect(stream))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"Hello from {NOVA}: hello there"
    usage = next(c.usage for c in reversed(chunks) if getattr(c, "usage", None))
    assert (usage.prompt_tokens, usage.completion_tokens) == (2, 5)
    assert bedrock.last().path.endswith("/converse-stream")


def test_a_request_signed_with_another_secret_or_region_is_refused(bedrock, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(litellm.PermissionDeniedError) as refused:
        complete(bedrock, NOVA, messages=[{"role": "user", "content": "hi"}])
    assert "signature we calculated does not match" in str(refused.value)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", bedrock.secret_key)
    with pytest.raises(litellm.PermissionDeniedError):
        run(litellm.acompletion(model=f"bedrock/{NOVA}", api_base=bedrock.url, aws_region_name="us-west-2",
                                max_tokens=5, messages=[{"role": "user", "content": "hi"}], num_retries=0))


@pytest.mark.parametrize("name, error", [("ThrottlingException", litellm.RateLimitError),
                                         ("ValidationException", litellm.BadRequestError),
                                         ("ServiceUnavailableException", litellm.ServiceUnavailableError)])
def test_litellm_maps_bedrocks_named_errors(bedrock, name, error):
    bedrock.error(NOVA, name, f"fake {name} message")
    with pytest.raises(error) as raised:
        complete(bedrock, NOVA, messages=[{"role": "user", "content": "hi"}])
    assert f"fake {name} message" in str(raised.value)


PDF_BYTES = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def test_litellm_sends_a_pdf_to_nova_as_a_document_block_the_fake_takes(bedrock):
    data = base64.b64encode(PDF_BYTES).decode()
    response = complete(bedrock, NOVA, messages=[{"role": "user", "content": [
        {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{data}"}},
        {"type": "text", "text": "summarise this"}]}])
    assert response.choices[0].message.content == f"Hello from {NOVA}: summarise this"
    document = bedrock.last().body["messages"][0]["content"][0]["document"]
    assert document["format"] == "pdf" and base64.b64decode(document["source"]["bytes"]) == PDF_BYTES


@pytest.mark.parametrize("name, refused", [("report", False), ("Q3 report (final) [v2]", False),
                                           ("report_2026", False), ("report.pdf", True), ("a  b", True),
                                           ("../etc/passwd", True)])
def test_the_aws_sdk_meets_bedrocks_document_name_rules_at_the_fake(bedrock, name, refused):
    """boto3's own Converse call (the AWS SDK, not litellm): Bedrock's DocumentBlock name takes
    letters, digits, single spaces, hyphens, parentheses and brackets (and, measured by others,
    underscores); anything else is a ValidationException."""
    import boto3

    client = boto3.session.Session().client("bedrock-runtime", region_name=REGION, endpoint_url=bedrock.url,
                                              aws_access_key_id=bedrock.access_key_id,
                                              aws_secret_access_key=bedrock.secret_key)
    request = dict(modelId=NOVA, messages=[{"role": "user", "content": [
        {"document": {"format": "pdf", "name": name, "source": {"bytes": PDF_BYTES}}}, {"text": "summarise"}]}])
    if not refused:
        assert client.converse(**request)["output"]["message"]["content"][0]["text"].endswith("summarise")
        return
    with pytest.raises(client.exceptions.ValidationException) as raised:
        client.converse(**request)
    assert "document file name can only contain" in str(raised.value)


# --------------------------------------------------------------------------- botocore's own requests

def aws_sdk(bedrock):
    """boto3's bedrock-runtime client at the fake: botocore serializes each request from its
    service model, as it does for the real service."""
    import boto3

    return boto3.session.Session().client("bedrock-runtime", region_name=REGION, endpoint_url=bedrock.url,
                                          aws_access_key_id=bedrock.access_key_id,
                                          aws_secret_access_key=bedrock.secret_key)


CLAUDE_BODY = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50,
               "messages": [{"role": "user", "content": "one two three"}]}


def test_botocores_count_tokens_request_is_taken_and_its_answer_parsed(bedrock):
    """CountTokensInput.invokeModel.body is a blob: botocore sends it base64 in the JSON."""
    answer = aws_sdk(bedrock).count_tokens(modelId=CLAUDE,
                                           input={"invokeModel": {"body": json.dumps(CLAUDE_BODY).encode()}})
    assert answer["inputTokens"] == 3
    sent = bedrock.last()
    assert unquote(sent.path) == f"/model/{CLAUDE}/count-tokens"
    assert json.loads(base64.b64decode(sent.body["input"]["invokeModel"]["body"])) == CLAUDE_BODY


def test_a_count_tokens_body_sent_as_json_text_rather_than_a_blob_is_refused(bedrock):
    """What botocore never sends: the InvokeModel body as text in the JSON (not base64)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    import httpx

    url = f"{bedrock.url}/model/{CLAUDE}/count-tokens"
    data = json.dumps({"input": {"invokeModel": {"body": json.dumps(CLAUDE_BODY)}}}).encode()
    request = AWSRequest(method="POST", url=url, data=data, headers={"content-type": "application/json"})
    SigV4Auth(Credentials(bedrock.access_key_id, bedrock.secret_key), "bedrock", REGION).add_auth(request)
    response = httpx.post(url, content=data, headers=dict(request.headers.items()))
    assert response.status_code == 400 and response.headers["x-amzn-errortype"].startswith("ValidationException")


def test_botocores_invoke_model_request_is_taken_and_its_answer_parsed(bedrock):
    answer = aws_sdk(bedrock).invoke_model(modelId=CLAUDE, body=json.dumps(CLAUDE_BODY).encode(),
                                           contentType="application/json", accept="application/json")
    message = json.loads(answer["body"].read())
    assert message["content"][0]["text"] == f"Hello from {CLAUDE}: one two three"
    assert bedrock.last().body == CLAUDE_BODY


@pytest.mark.parametrize("field", ["cache_control", "speed", "inference_geo", "diagnostics", "output_format"])
def test_an_extraneous_key_is_botocores_validation_exception_in_bedrocks_words(bedrock, field):
    client = aws_sdk(bedrock)
    with pytest.raises(client.exceptions.ValidationException) as raised:
        client.invoke_model(modelId=CLAUDE, body=json.dumps({**CLAUDE_BODY, field: {}}).encode())
    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Message"] == (f"Malformed input request: #: extraneous key [{field}] is not permitted, "
                                         "please reformat your input and try again.")


def test_count_tokens_refuses_an_invoke_model_body_bedrock_would_refuse(bedrock):
    client = aws_sdk(bedrock)
    with pytest.raises(client.exceptions.ValidationException) as raised:
        client.count_tokens(modelId=CLAUDE, input={"invokeModel": {"body": json.dumps(
            {**CLAUDE_BODY, "cache_control": {"type": "ephemeral"}}).encode()}})
    assert "extraneous key [cache_control]" in str(raised.value)


def test_a_context_edit_bedrock_does_not_take_is_refused_in_its_words(bedrock):
    client = aws_sdk(bedrock)
    management = {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}
    with pytest.raises(client.exceptions.ValidationException) as raised:
        client.invoke_model(modelId=CLAUDE, body=json.dumps({**CLAUDE_BODY, "context_management": management}))
    assert raised.value.response["Error"]["Message"] == "context_management: Extra inputs are not permitted"
    taken = {"edits": [{"type": "clear_tool_uses_20250919"}]}
    aws_sdk(bedrock).invoke_model(modelId=CLAUDE, body=json.dumps({**CLAUDE_BODY, "context_management": taken}))


def test_the_fake_takes_every_beta_litellms_map_records_bedrock_taking_and_refuses_others(bedrock):
    from pathlib import Path

    document = json.loads((Path(litellm.__file__).parent / "anthropic_beta_headers_config.json").read_text())
    betas = sorted({name for name in document["bedrock"].values() if name})
    client = aws_sdk(bedrock)
    client.invoke_model(modelId=CLAUDE, body=json.dumps({**CLAUDE_BODY, "anthropic_beta": betas}))
    with pytest.raises(client.exceptions.ValidationException) as raised:
        client.invoke_model(modelId=CLAUDE,
                            body=json.dumps({**CLAUDE_BODY, "anthropic_beta": ["claude-code-20250219"]}))
    assert raised.value.response["Error"]["Message"] == "invalid beta flag"


def test_claude_on_bedrock_refuses_a_body_without_max_tokens_or_with_an_unanswered_tool_use(bedrock):
    client = aws_sdk(bedrock)
    without = {key: value for key, value in CLAUDE_BODY.items() if key != "max_tokens"}
    with pytest.raises(client.exceptions.ValidationException) as raised:
        client.invoke_model(modelId=CLAUDE, body=json.dumps(without).encode())
    assert raised.value.response["Error"]["Message"] == (
        "Malformed input request: #: required key [max_tokens] not found, please reformat your input and try again.")
    use = {"type": "tool_use", "id": "toolu_bdrk_1", "name": "lookup", "input": {}}
    unanswered = {**CLAUDE_BODY, "messages": [*CLAUDE_BODY["messages"], {"role": "assistant", "content": [use]},
                                              {"role": "user", "content": "and?"}]}
    with pytest.raises(client.exceptions.ValidationException) as raised:
        client.invoke_model(modelId=CLAUDE, body=json.dumps(unanswered).encode())
    assert raised.value.response["Error"]["Message"].startswith(
        "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_bdrk_1.")


def test_claude_on_bedrock_refuses_a_tool_result_that_answers_no_tool_use(bedrock):
    client = aws_sdk(bedrock)
    orphan = {**CLAUDE_BODY, "messages": [
        {"role": "user", "content": "look it up"},
        {"role": "assistant", "content": [{"type": "text", "text": "I will not."}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_bdrk_gone", "content": "42"}]}]}
    with pytest.raises(client.exceptions.ValidationException) as raised:
        client.invoke_model(modelId=CLAUDE, body=json.dumps(orphan).encode())
    assert raised.value.response["Error"]["Message"] == (
        "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_bdrk_gone. Each "
        "`tool_result` block must have a corresponding `tool_use` block in the previous message.")


# --------------------------------------------------------------------------- Converse's own rules, through boto3

def converse_request(messages, **extra):
    return {"modelId": NOVA, "messages": messages, **extra}


SPEC = {"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object"}}}}
ASKED = {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {}}}]}


@pytest.mark.parametrize("messages, extra, words", [
    ([{"role": "assistant", "content": [{"text": "hi"}]}], {}, "must start with a user message"),
    ([{"role": "user", "content": [{"text": "a"}]}, {"role": "user", "content": [{"text": "b"}]}], {},
     "must alternate between user and assistant roles"),
    ([{"role": "user", "content": [{"text": " "}]}], {}, "ContentBlock object at messages.0.content.0 is blank"),
    ([{"role": "user", "content": []}], {}, "Message object at messages.0 is empty"),
    ([{"role": "user", "content": [{"text": "a"}]}, ASKED,
      {"role": "user", "content": [{"toolResult": {"toolUseId": "t2", "content": [{"text": "x"}]}}]}],
     {"toolConfig": {"tools": [SPEC]}}, "exceeds the number of toolUse blocks of previous turn"),
    ([{"role": "user", "content": [{"text": "a"}]}, ASKED,
      {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "x"}]}}]}], {},
     "The toolConfig field must be defined when using toolUse and toolResult content blocks."),
    ([{"role": "user", "content": [{"text": "a"}, {"document": {"format": "txt", "name": "terms", "source": {
        "text": "the terms"}}}]}], {"modelId": "amazon.nova-micro-v1:0"},
     "This model doesn't support the document field for user messages."),
    ([{"role": "user", "content": [{"text": "a"}]}], {"inferenceConfig": {"maxTokens": 10001}},
     "exceeds the model limit of 10000"),
    ([{"role": "user", "content": [{"text": "a"}]}],
     {"toolConfig": {"tools": [{"toolSpec": {"name": "mcp__x.y", "inputSchema": {"json": {"type": "object"}}}}]}},
     "Member must satisfy regular expression pattern"),
], ids=["assistant-first", "two-user-turns", "blank-text", "empty-turn", "unanswered-result", "no-tool-config",
        "document-to-nova-micro", "max-tokens",
        "tool-name"])
def test_the_aws_sdk_meets_converses_refusals_at_the_fake_in_bedrocks_words(bedrock, messages, extra, words):
    client = aws_sdk(bedrock)
    with pytest.raises(client.exceptions.ValidationException) as raised:
        client.converse(**converse_request(messages, **extra))
    assert words in str(raised.value)


def test_the_aws_sdk_round_trips_a_tool_and_reads_reasoning_from_the_fakes_converse_stream(bedrock):
    client = aws_sdk(bedrock)
    answered = client.converse(**converse_request(
        [{"role": "user", "content": [{"text": "a"}]}, ASKED,
         {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "three cats"}]}}]}],
        toolConfig={"tools": [SPEC]}, inferenceConfig={"maxTokens": 10000}))
    assert answered["output"]["message"]["content"][0]["text"] == "Tool said: three cats"
    streamed = client.converse_stream(modelId="amazon.nova-2-lite-v1:0", messages=[{"role": "user", "content": [
        {"text": "why"}]}], additionalModelRequestFields={"reasoningConfig": {"type": "enabled",
                                                                              "maxReasoningEffort": "low"}})
    events = list(streamed["stream"])
    reasoning = "".join(e["contentBlockDelta"]["delta"]["reasoningContent"].get("text", "") for e in events
                        if "reasoningContent" in e.get("contentBlockDelta", {}).get("delta", {}))
    assert reasoning == "Let me think about: why"
    assert events[-2]["messageStop"]["stopReason"] == "end_turn" and events[-1]["metadata"]["usage"]["outputTokens"] > 0


def test_count_tokens_refuses_every_model_but_claude_in_bedrocks_words(bedrock):
    client = aws_sdk(bedrock)
    with pytest.raises(client.exceptions.ValidationException) as raised:
        client.count_tokens(modelId=NOVA, input={"converse": {
            "messages": [{"role": "user", "content": [{"text": "one two three"}]}]}})
    assert raised.value.response["Error"]["Message"] == "The provided model doesn't support counting tokens."


def test_botocores_count_tokens_with_a_converse_input_is_taken(bedrock):
    answer = aws_sdk(bedrock).count_tokens(modelId=CLAUDE, input={"converse": {
        "system": [{"text": "be brief"}], "messages": [{"role": "user", "content": [{"text": "one two three"}]}]}})
    assert answer["inputTokens"] == 2 + 3
