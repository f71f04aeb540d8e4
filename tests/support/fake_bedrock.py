"""Fake Amazon Bedrock runtime speaking its real wire format over HTTP.

Built from the Bedrock Runtime API reference: Claude models answer
InvokeModel / InvokeModelWithResponseStream with Anthropic's body
(`anthropic_version: bedrock-2023-05-31`, no `model` or `stream` key); other
models (Amazon Nova, Meta Llama) answer Converse / ConverseStream; CountTokens
counts for Claude only, from either input. Streams use AWS's event-stream binary framing (prelude, CRC32s,
typed headers); a stream chunk carries one Anthropic event, base64-encoded;
errors are named in `x-amzn-ErrorType` (HTTP) or `:exception-type` (mid-stream).
Every request must be SigV4-signed for service `bedrock` with the configured
access key id and region, or it is refused as Bedrock refuses it (403).

    with FakeBedrock(access_key_id="testing", secret_key="testing") as bedrock:
        bedrock.error("anthropic.claude-x", "ThrottlingException")       # 429
        bedrock.error("anthropic.claude-x", "ModelNotReadyException")    # 429, named only in the header
        bedrock.stream_exception("anthropic.claude-x", "serviceUnavailableException", after_events=3)

The deterministic replies are the ones fake_upstream.py builds for every
dialect (same words, same token counts, same signed thinking).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
import time
import zlib
from urllib.parse import unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support import anthropic_rules
from tests.support.fake_upstream import (
    ANTHROPIC, FakeUpstream, ModelInPathHandler, Recorded, _anthropic_frames, _anthropic_message, _anthropic_prompt, _Fault,
    _fragments, _frame_json, _input_words, _int_or_none, _pieces, _Prompt, _picked_tool, _stop_list,
    _tool_json,
)

BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"
ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"
# The status Bedrock answers each named error with (API reference, "Errors").
ERROR_STATUS = {"ThrottlingException": 429, "ModelNotReadyException": 429, "ServiceUnavailableException": 503,
                "ValidationException": 400, "AccessDeniedException": 403, "ResourceNotFoundException": 404,
                "InternalServerException": 500, "ModelTimeoutException": 408, "ModelErrorException": 424,
                "ServiceQuotaExceededException": 400, "UnrecognizedClientException": 403}
# Fields of an Anthropic body InvokeModel accepts; any other is "extraneous" (Bedrock user guide,
# Anthropic Claude Messages API: "Request and Response" lists anthropic_version, anthropic_beta,
# max_tokens, system, messages, temperature, top_p, top_k, tools, tool_choice, stop_sequences; the
# "Extended thinking", "Get validated JSON results from models" and "Compaction" pages add
# thinking, output_config and context_management; metadata is Anthropic's common shape). Bedrock's
# answer to any other key, measured: 400 ValidationException, "Malformed input request: #:
# extraneous key [cache_control] is not permitted, please reformat your input and try again."
INVOKE_FIELDS = {"anthropic_version", "anthropic_beta", "max_tokens", "messages", "system", "stop_sequences",
                 "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "metadata",
                 "output_config", "context_management"}
MALFORMED = "Malformed input request, please reformat your input and try again."
# The context_management edits InvokeModel takes (user guide: "Tool use", clear_tool_uses_20250919;
# "Compaction", compact_20260112); any other is refused, "context_management: Extra inputs are not
# permitted" (measured: litellm issue #27532, Claude Code's clear_thinking_20251015).
CONTEXT_EDITS = {"clear_tool_uses_20250919", "compact_20260112"}
# The betas the fake's Claude takes: those of Bedrock's documentation for Claude's Messages API,
# and those litellm's beta map (anthropic_beta_headers_config.json, litellm 1.110.2, column
# `bedrock`) records Bedrock taking since. Bedrock refuses a request naming any other.
ACCEPTED_BETAS = {"computer-use-2025-01-24", "computer-use-2025-11-24", "context-1m-2025-08-07",
                  "context-management-2025-06-27", "effort-2025-11-24", "fine-grained-tool-streaming-2025-05-14",
                  "interleaved-thinking-2025-05-14", "output-128k-2025-02-19", "token-efficient-tools-2025-02-19",
                  "tool-search-tool-2025-10-19", "compact-2026-01-12", "compact-2026-09-04",
                  "dangerous-tool-use-2026-09-03", "mid-conversation-output-config-2026-07-01",
                  "mid-conversation-tool-changes-2026-07-01", "thinking-binding-controls-2026-08-01",
                  "thinking-display-updates-2026-08-18"}
# DocumentBlock (API reference): a format Bedrock knows; a name of letters, digits, single
# whitespace, hyphens, parentheses and brackets (underscores pass too, measured by others
# against the live API), at most 200 characters.
DOCUMENT_FORMATS = {"pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md"}
DOCUMENT_NAME = re.compile(r"^(?!.*\s\s)[A-Za-z0-9_ ()\[\]-]{1,200}$")
# Converse's output limit per model family (inferenceConfig.maxTokens): Amazon Nova's understanding
# models write at most 10,000 tokens (Amazon Nova user guide, "What is Amazon Nova"; a larger value
# fails, aws-solutions-library-samples/accelerated-intelligent-document-processing-on-aws#175), in
# Bedrock's words "The maximum tokens you requested exceeds the model limit of N" (ibid. #204).
CONVERSE_MAX_TOKENS = {"amazon.nova-micro": 10_000, "amazon.nova-lite": 10_000, "amazon.nova-pro": 10_000,
                       "amazon.nova-premier": 32_000, "amazon.nova-2-lite": 64_000, "meta.llama3": 8_192}
COUNT_TOKENS_REFUSED = "The provided model doesn't support counting tokens."
TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
CONVERSE_STOP = {"end_turn": "end_turn", "tool_use": "tool_use", "max_tokens": "max_tokens",
                 "stop_sequence": "stop_sequence"}


# --------------------------------------------------------------------------- AWS event-stream framing

def _header(name: str, value: str) -> bytes:
    """One string-typed header (type 7): name length, name, type, value length, value."""
    raw_name, raw_value = name.encode(), value.encode()
    return bytes([len(raw_name)]) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value


def event_message(headers: dict[str, str], payload: bytes) -> bytes:
    """prelude (total length, headers length, CRC32) + headers + payload + CRC32 of all before."""
    encoded = b"".join(_header(name, value) for name, value in headers.items())
    prelude = struct.pack(">II", 16 + len(encoded) + len(payload), len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def _padded(document: dict) -> bytes:
    # Bedrock pads every event with a `p` field so sizes do not leak the text.
    return json.dumps({**document, "p": "abcdefghijklmnopqrstuvwxyzABCDEF"[: 4 + len(json.dumps(document)) % 20]}).encode()


def chunk_event(anthropic_event: dict) -> bytes:
    """An InvokeModelWithResponseStream chunk: one Anthropic event, base64 in `bytes`."""
    data = base64.b64encode(json.dumps(anthropic_event).encode()).decode()
    return event_message({":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"},
                         _padded({"bytes": data}))


def converse_event(name: str, document: dict) -> bytes:
    return event_message({":event-type": name, ":content-type": "application/json", ":message-type": "event"},
                         _padded(document))


def exception_event(name: str, message: str) -> bytes:
    """A mid-stream failure: `:exception-type` in lowerCamelCase (throttlingException, ...)."""
    name = name[0].lower() + name[1:]
    return event_message({":exception-type": name, ":content-type": "application/json",
                          ":message-type": "exception"}, json.dumps({"message": message}).encode())


# --------------------------------------------------------------------------- SigV4

def signature_problem(method: str, url: str, headers: dict[str, str], body: bytes, *,
                      access_key_id: str, secret_key: str, region: str, service: str = "bedrock") -> str | None:
    """Why the request is not signed as Bedrock (or `service`) requires (None: it is)."""
    authorization = headers.get("authorization", "")
    if not authorization.startswith("AWS4-HMAC-SHA256 "):
        return "Missing Authentication Token" if not authorization else "Authorization is not AWS4-HMAC-SHA256"
    fields = dict(part.strip().split("=", 1) for part in authorization[len("AWS4-HMAC-SHA256 "):].split(","))
    key_id, _, region_got, scoped_service, terminator = (fields.get("Credential", "").split("/") + [""] * 5)[:5]
    if key_id != access_key_id:
        return f"The security token included in the request is invalid (access key {key_id!r})"
    if region_got != region or scoped_service != service or terminator != "aws4_request":
        return f"Credential should be scoped to a valid region/service: got {region_got}/{scoped_service}"
    signed = fields.get("SignedHeaders", "").split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        return "SignedHeaders must include host and x-amz-date"
    request = AWSRequest(method=method, url=url, data=body,
                         headers={name: headers[name] for name in signed if name in headers})
    request.context["timestamp"] = headers.get("x-amz-date", "")
    signer = SigV4Auth(Credentials(access_key_id, secret_key, headers.get("x-amz-security-token")),
                       service, region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if expected != fields.get("Signature"):
        return ("The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method.")
    return None


# --------------------------------------------------------------------------- Converse request/response

def _converse_texts(content) -> list[str]:
    out = []
    for block in content or []:
        if isinstance(block, dict) and isinstance(block.get("text"), str):
            out.append(block["text"])
        elif isinstance(block, dict) and isinstance(block.get("toolResult"), dict):
            out.extend(_converse_texts(block["toolResult"].get("content")))
        elif isinstance(block, dict) and isinstance(block.get("document"), dict):  # a text document: its text
            source = block["document"].get("source") or {}
            out.extend([source["text"]] if isinstance(source.get("text"), str) else _converse_texts(source.get("content")))
    return out


def _converse_prompt(model: str, body: dict, cache_read: bool) -> _Prompt:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    texts = _converse_texts(body.get("system")) + [t for m in messages for t in _converse_texts(m.get("content"))]
    content = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), None) or []
    results = [b for b in content if isinstance(b, dict) and "toolResult" in b]
    tool_config = body.get("toolConfig") or {}
    tools = [{"name": (t.get("toolSpec") or {}).get("name"),
              "input_schema": ((t.get("toolSpec") or {}).get("inputSchema") or {}).get("json")}
             for t in tool_config.get("tools") or []]
    choice = tool_config.get("toolChoice") or {}
    picked = _picked_tool({"tools": tools, "tool_choice": {"name": (choice.get("tool") or {}).get("name")}}) or {}
    config = body.get("inferenceConfig") or {}
    cached = "cachePoint" in json.dumps([body.get("system"), messages, tool_config.get("tools")])
    # Nova 2 reasons when asked in additionalModelRequestFields.reasoningConfig (Amazon Nova user guide,
    # "Extended thinking"), as reasoningContent blocks.
    reasoning = ((body.get("additionalModelRequestFields") or {}).get("reasoningConfig") or {}).get("type")
    return _Prompt(model=model, thinking=reasoning == "enabled", echo=" ".join(_converse_texts(results or content))[:200], tool_result=bool(results),
                   input_words=_input_words(texts, {"tools": tools}), tool=picked.get("name"),
                   tool_schema=picked.get("input_schema") or None,
                   stop=_stop_list(config.get("stopSequences")), max_tokens=_int_or_none(config.get("maxTokens")),
                   cache=("read" if cache_read else "creation") if cached else None)


def document_problem(messages: list) -> str | None:
    """Why Bedrock would refuse a Converse document block in these messages (None: it takes them)."""
    blocks = [b for m in messages for b in m.get("content") or [] if isinstance(b, dict)]
    blocks += [b for r in blocks if isinstance(r.get("toolResult"), dict)
               for b in r["toolResult"].get("content") or [] if isinstance(b, dict)]
    for block in blocks:
        document = block.get("document")
        if document is None:
            continue
        if document.get("format") not in DOCUMENT_FORMATS:
            return f"Unsupported document format {document.get('format')!r}."
        if not DOCUMENT_NAME.match(str(document.get("name", ""))):
            return ("The document file name can only contain alphanumeric characters, whitespace characters, "
                    "hyphens, parentheses, and square brackets. The name can't contain more than one "
                    "consecutive whitespace character.")
        source = document.get("source") if isinstance(document.get("source"), dict) else {}
        if len(source) != 1 or set(source) - {"bytes", "s3Location", "text", "content"}:  # botocore: DocumentSource
            return "document.source must set exactly one of bytes, s3Location, text or content."
        try:
            base64.b64decode(str(source.get("bytes", "")), validate=True)
        except binascii.Error:
            return "document.source.bytes is not valid base64."
    return None


def converse_problem(model: str, body: dict) -> str | None:
    """Why Converse refuses these messages and limits, in Bedrock's words (None: it takes them)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "The messages field is required."
    if not all(isinstance(m, dict) for m in messages):
        return MALFORMED
    # "A conversation must start with a user message." (litellm maps Bedrock's error by these words:
    # litellm_core_utils/exception_mapping_utils.py)
    if messages[0].get("role") != "user":
        return "A conversation must start with a user message. Try again with a conversation that starts with a user message."
    # Two turns of one role in a row (langchain-ai/langchain-aws#130, Portkey-AI/gateway#748).
    if any(a.get("role") == b.get("role") for a, b in zip(messages, messages[1:])):
        return ("A conversation must alternate between user and assistant roles. Make sure the conversation "
                "alternates between user and assistant roles and try again.")
    for m, message in enumerate(messages):
        content = message.get("content")
        # An empty turn (earendil-works/pi#3443).
        if not isinstance(content, list) or not content:
            return (f"The content field in the Message object at messages.{m} is empty. Add a ContentBlock object "
                    "to the content field and try again.")
        for b, block in enumerate(content):
            # A blank text block (continuedev/continue#9767: "... at messages.11.content.0 is blank").
            if isinstance(block, dict) and "text" in block and not str(block["text"]).strip():
                return (f"The text field in the ContentBlock object at messages.{m}.content.{b} is blank. "
                        "Add text to the text field, and try again.")
        # Every toolResult answers a toolUse of the turn before (OpenHands/OpenHands#4912: "The number of
        # toolResult blocks at messages.2.content exceeds the number of toolUse blocks of previous turn.").
        results = [block["toolResult"].get("toolUseId") for block in content
                   if isinstance(block, dict) and isinstance(block.get("toolResult"), dict)]
        asked = [block["toolUse"].get("toolUseId") for block in (messages[m - 1].get("content") or [] if m else [])
                 if isinstance(block, dict) and isinstance(block.get("toolUse"), dict)]
        if results and (len(results) > len(asked) or set(results) - set(asked)):
            return (f"The number of toolResult blocks at messages.{m}.content exceeds the number of toolUse "
                    "blocks of previous turn.")
    # Tool blocks need a toolConfig, even with no tool offered now (Bedrock's words: langgenius/dify#17545,
    # vxcontrol/pentagi#196; litellm adds a dummy tool for this reason).
    if "toolConfig" not in body and any(isinstance(block, dict) and ("toolUse" in block or "toolResult" in block)
                                        for message in messages for block in message.get("content") or []):
        return "The toolConfig field must be defined when using toolUse and toolResult content blocks."
    base = model.partition(".")[2] if model.split(".")[0] in ("us", "eu", "apac", "global") else model
    # ToolName (botocore's bedrock-runtime service model): 1-64 of [a-zA-Z0-9_-], judged by the service,
    # in AWS's constraint words.
    for t, tool in enumerate((body.get("toolConfig") or {}).get("tools") or []):
        name = str((tool.get("toolSpec") or {}).get("name", "")) if isinstance(tool, dict) and "toolSpec" in tool else None
        if name is not None and not TOOL_NAME.fullmatch(name):
            return (f"1 validation error detected: Value at 'toolConfig.tools.{t + 1}.member.toolSpec.name' failed "
                    "to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+ and "
                    "length less than or equal to 64")
    # No document chat (user guide, "Supported models and model features"); Bedrock's words as a client's tests record.
    if base.startswith(("amazon.nova-micro", "ai21.jamba-instruct")) and any(
            isinstance(b, dict) and "document" in b for m in messages for b in m.get("content") or []):
        return "This model doesn't support the document field for user messages."
    limit = next((n for prefix, n in CONVERSE_MAX_TOKENS.items() if base.startswith(prefix)), None)
    wanted = (body.get("inferenceConfig") or {}).get("maxTokens")
    if limit is not None and isinstance(wanted, int) and wanted > limit:
        return f"The maximum tokens you requested exceeds the model limit of {limit}"
    return None


def _converse_usage(reply) -> dict:
    half = reply.prompt.input_words // 2 if reply.prompt.cache else 0
    usage = {"inputTokens": reply.prompt.input_words - half, "outputTokens": reply.output_tokens}
    usage["totalTokens"] = usage["inputTokens"] + usage["outputTokens"] + half
    if reply.prompt.cache:
        usage["cacheReadInputTokens"] = half if reply.prompt.cache == "read" else 0
        usage["cacheWriteInputTokens"] = half if reply.prompt.cache == "creation" else 0
    return usage


def _converse_block(block: dict) -> dict:
    if block["type"] == "thinking":
        return {"reasoningContent": {"reasoningText": {"text": block["thinking"], "signature": block["signature"]}}}
    if block["type"] == "tool_use":
        return {"toolUse": {"toolUseId": block["id"], "name": block["name"], "input": block["input"]}}
    return {"text": block["text"]}


def converse_response(reply) -> dict:
    return {"output": {"message": {"role": "assistant", "content": [_converse_block(b) for b in reply.blocks]}},
            "stopReason": CONVERSE_STOP[reply.stop_reason], "usage": _converse_usage(reply),
            "metrics": {"latencyMs": 12}}


def converse_stream(reply) -> list[bytes]:
    events = [converse_event("messageStart", {"role": "assistant"})]
    for index, block in enumerate(reply.blocks):
        if block["type"] == "thinking":
            events += [converse_event("contentBlockDelta", {"contentBlockIndex": index,
                                                            "delta": {"reasoningContent": {"text": p}}})
                       for p in _pieces(block["thinking"])]
            events.append(converse_event("contentBlockDelta", {"contentBlockIndex": index, "delta": {
                "reasoningContent": {"signature": block["signature"]}}}))
        elif block["type"] == "tool_use":
            events.append(converse_event("contentBlockStart", {
                "contentBlockIndex": index, "start": {"toolUse": {"toolUseId": block["id"], "name": block["name"]}}}))
            events += [converse_event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": f}}})
                       for f in _fragments(_tool_json(block))]
        else:
            events += [converse_event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": p}})
                       for p in _pieces(block["text"])]
        events.append(converse_event("contentBlockStop", {"contentBlockIndex": index}))
    events.append(converse_event("messageStop", {"stopReason": CONVERSE_STOP[reply.stop_reason]}))
    events.append(converse_event("metadata", {"usage": _converse_usage(reply), "metrics": {"latencyMs": 12}}))
    return events


# --------------------------------------------------------------------------- InvokeModel's Claude body

def invoke_body_problem(body: dict) -> str | None:
    """Why Bedrock refuses this InvokeModel body for Claude, in its words (None: it takes it)."""
    extraneous = sorted(set(body) - INVOKE_FIELDS)
    if extraneous:
        return (f"Malformed input request: #: extraneous key [{extraneous[0]}] is not permitted, "
                "please reformat your input and try again.")
    management = body.get("context_management")
    if isinstance(management, dict) and any(not isinstance(edit, dict) or edit.get("type") not in CONTEXT_EDITS
                                             for edit in management.get("edits") or []):
        return "context_management: Extra inputs are not permitted"
    if set(body.get("anthropic_beta") or []) - ACCEPTED_BETAS:
        return "invalid beta flag"  # Bedrock's words, naming no beta (measured: coder/aibridge#221)
    if body.get("anthropic_version") != BEDROCK_ANTHROPIC_VERSION:
        return ("Malformed input request: #: required key [anthropic_version] not found, "
                "please reformat your input and try again.")
    if "max_tokens" not in body:  # required in Bedrock's Claude schema, as anthropic_version is
        return ("Malformed input request: #: required key [max_tokens] not found, "
                "please reformat your input and try again.")
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    # Claude's own pairing rules, in its words: InvokeModel relays Claude's validation as a
    # ValidationException (browser-use/browser-use#988: "An error occurred (ValidationException) when
    # calling the InvokeModel operation: messages.2: Did not find 1 `tool_result` block(s)..."). So a
    # tool_use with no tool_result after it, and a tool_result that answers no tool_use of the message
    # before it, are refused as Anthropic refuses them (anthropic_rules cites Anthropic's words).
    return anthropic_rules.unanswered_tool_uses(messages) or anthropic_rules.unexpected_tool_results(messages)


# --------------------------------------------------------------------------- HTTP

class _BedrockHandler(ModelInPathHandler):
    server_version = "FakeBedrock/1.0"

    def _serve(self, path: str, body: dict | None, headers: dict):
        parts = path.split("/")
        if self.command != "POST" or len(parts) != 4 or parts[1] != "model" or parts[3] not in (
                "invoke", "invoke-with-response-stream", "converse", "converse-stream", "count-tokens"):
            return self._error(404, "UnknownOperationException", f"no operation {self.command} {path}")
        model, action = unquote(parts[2]), parts[3]
        self.server.fake._record(Recorded(self.command, self.path, headers, body, path_model=model))
        fake: FakeBedrock = self.server.fake
        problem = signature_problem(self.command, f"http://{headers.get('host', '')}{self.path}", headers,
                                    self._raw_body, access_key_id=fake.access_key_id,
                                    secret_key=fake.secret_key, region=fake.region)
        if problem:
            return self._error(403, "UnrecognizedClientException" if "token" in problem.lower()
                               else "InvalidSignatureException", problem)
        if body is None:
            return self._error(400, "ValidationException", MALFORMED)
        if action == "count-tokens":
            return self._count(model, body)
        stream = action.endswith("stream")
        fault = fake._next_fault(model, stream)
        if fault and fault.action in ("bedrock_error", "fail", "reset"):
            return {"bedrock_error": lambda: self._error(**fault.args), "reset": self._reset,
                    "fail": lambda: self._send_failure(ANTHROPIC, **fault.args)}[fault.action]()
        cache_read = fake.cache_read or headers.get("x-fake-cache", "").lower() == "read"
        if action.startswith("invoke"):
            return self._invoke(model, body, stream, fault, cache_read)
        return self._converse(model, body, stream, fault, cache_read)

    def _read_body(self) -> bytes:
        self._raw_body = super()._read_body()
        return self._raw_body

    def _error(self, status: int, name: str, message: str, headers: dict | None = None):
        self._send_json(status, {"message": message}, {"x-amzn-ErrorType": f"{name}:{ERROR_NAMESPACE}",
                                                      "x-amzn-RequestId": "fake-request", **(headers or {})})

    def _invoke(self, model: str, body: dict, stream: bool, fault: _Fault | None, cache_read: bool):
        problem = invoke_body_problem(body)
        if problem:
            return self._error(400, "ValidationException", problem)
        prompt = _anthropic_prompt({**body, "model": model}, cache_read)
        too_long = anthropic_rules.prompt_too_long(prompt.input_words, ",".join(body.get("anthropic_beta") or []))
        if too_long:
            return self._error(400, "ValidationException", f"The model returned the following errors: {too_long}")
        self.server.fake._apply_script(prompt, body)
        reply = self.server.fake._reply(prompt, ANTHROPIC)
        if not stream:
            message = _anthropic_message(reply)
            self.server.fake._report(model, [message])
            return self._send_json(200, message, self._token_headers(message["usage"]))
        events = [_frame_json(frame) for frame in _anthropic_frames(reply)]
        events = [e for e in events if e.get("type") != "ping"]  # Bedrock does not relay pings
        events[-1]["amazon-bedrock-invocationMetrics"] = {
            "inputTokenCount": reply.prompt.input_words, "outputTokenCount": reply.output_tokens,
            "invocationLatency": 12, "firstByteLatency": 5}
        self._stream(model, events, [chunk_event(e) for e in events], fault)

    def _converse(self, model: str, body: dict, stream: bool, fault: _Fault | None, cache_read: bool):
        problem = converse_problem(model, body) or document_problem([m for m in body["messages"] if isinstance(m, dict)])
        if problem:
            return self._error(400, "ValidationException", problem)
        response = converse_response(reply := self.server.fake._reply(_converse_prompt(model, body, cache_read), ANTHROPIC))
        if not stream:
            self.server.fake._report(model, [{"usage": _anthropic_usage_of(response["usage"])}])
            return self._send_json(200, response, self._token_headers(_anthropic_usage_of(response["usage"])))
        self._stream(model, [{"usage": _anthropic_usage_of(response["usage"])}], converse_stream(reply), fault)

    def _stream(self, model: str, reported: list, frames: list[bytes], fault: _Fault | None):
        if fault and fault.action == "stream_exception":
            after = fault.args["after_events"]
            frames = frames[:after] + [exception_event(fault.args["name"], fault.args["message"])]
            reported = reported[:after]
        self.server.fake._report(model, reported)
        self._begin(200, {"Content-Type": "application/vnd.amazon.eventstream", "Transfer-Encoding": "chunked",
                          "x-amzn-RequestId": "fake-request", "x-amzn-bedrock-content-type": "application/json"})
        pace = fault.args["seconds"] if fault and fault.action == "pace" else 0.0
        for frame in frames:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            if pace:
                self.wfile.flush()
                time.sleep(pace)
        self.wfile.write(b"0\r\n\r\n")

    def _count(self, model: str, body: dict):
        """CountTokens: `input.invokeModel.body` (a blob: the InvokeModel body, base64 in the JSON
        document, as botocore's serializer sends it) or `input.converse`."""
        if "anthropic.claude" not in model:
            # Claude only (AWS user guide, "Monitor your token usage by counting tokens before running
            # inference": supported models); Nova's ids are refused so (alchemy.run's CountTokens page).
            return self._error(400, "ValidationException", COUNT_TOKENS_REFUSED)
        given = body.get("input") or {}
        if isinstance(given.get("invokeModel"), dict):
            try:
                inner = json.loads(base64.b64decode(str(given["invokeModel"].get("body")), validate=True))
            except (binascii.Error, ValueError):
                # A blob that is not base64, or bytes that are not JSON: Bedrock cannot read the body.
                return self._error(400, "ValidationException", MALFORMED)
            problem = invoke_body_problem(inner) if isinstance(inner, dict) else MALFORMED
            if problem:
                return self._error(400, "ValidationException", problem)
            count = _anthropic_prompt({**inner, "model": model}).input_words
        elif isinstance(given.get("converse"), dict):
            count = _converse_prompt(model, given["converse"], False).input_words
        else:
            return self._error(400, "ValidationException", "input must hold invokeModel or converse")
        self._send_json(200, {"inputTokens": count})

    @staticmethod  # Bedrock's headers on an answer
    def _token_headers(usage: dict) -> dict:
        return {"x-amzn-RequestId": "fake-request", "X-Amzn-Bedrock-Input-Token-Count": usage.get("input_tokens", 0),
                "X-Amzn-Bedrock-Output-Token-Count": usage.get("output_tokens", 0)}


def _anthropic_usage_of(converse_usage: dict) -> dict:
    """Converse's usage in Anthropic's names, for the fake's own reported totals."""
    return {"input_tokens": converse_usage["inputTokens"], "output_tokens": converse_usage["outputTokens"],
            "cache_read_input_tokens": converse_usage.get("cacheReadInputTokens", 0),
            "cache_creation_input_tokens": converse_usage.get("cacheWriteInputTokens", 0)}


class FakeBedrock(FakeUpstream):
    """Bedrock runtime on 127.0.0.1; `url` is the provider entry's api_base (an endpoint override)."""

    handler_class = _BedrockHandler

    def __init__(self, *, access_key_id: str, secret_key: str, region: str = "us-east-1", **server) -> None:
        super().__init__(**server)
        self.access_key_id, self.secret_key, self.region = access_key_id, secret_key, region
        self.cache_read = False  # True: prompts marked for caching are read from the cache, not written

    def error(self, model: str, name: str, message: str | None = None, *, status: int | None = None,
              times: int | None = 1, headers: dict | None = None) -> None:
        """Answer the next `times` calls with Bedrock's named error (status from the API reference)."""
        args = {"status": status or ERROR_STATUS[name], "name": name, "headers": dict(headers or {}),
                "message": message or f"fake {name}"}
        self._queue(_Fault(model, "bedrock_error", times, args))

    def stream_exception(self, model: str, name: str, message: str | None = None, *, after_events: int = 2,
                         times: int | None = 1) -> None:
        """Send `after_events` events of the next streams, then an exception frame."""
        args = {"name": name, "message": message or f"fake {name}", "after_events": after_events}
        self._queue(_Fault(model, "stream_exception", times, args))

