"""What OpenAI's Chat Completions refuses, for the fakes that speak it.

A fake kinder than the real API hides bugs: each rule here is one api.openai.com
enforces, worded as it words the refusal (quoted from the errors its users report).

- No credentials: 401, "You didn't provide an API key. You need to provide your API key
  in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)..."
  (openai/openai-python#1434; the OpenAI SDK sends it on every call).
- A key OpenAI did not issue: 401, "Incorrect API key provided: sk-VKMIs***...wjh3. You can
  find your API key at https://platform.openai.com/account/api-keys." (type
  `invalid_request_error`, code `invalid_api_key`; the key shown by its first 8 and last 4
  characters; chatanywhere/GPT_API_free#62 quotes the whole body).
- An assistant message with `tool_calls` whose ids are not each answered by the `tool`
  messages right after it: 400, "An assistant message with 'tool_calls' must be followed
  by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not
  have response messages: call_..." (BerriAI/litellm#10083, aliasrobotics/cai#111).
- `max_tokens` on a reasoning model (o1, o3, o4-mini, gpt-5): 400, "Unsupported
  parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens'
  instead." (param `max_tokens`, code `unsupported_parameter`; griptape-ai/ComfyUI-Griptape#312).
- More than 4 stop sequences: 400, "Invalid 'stop': array too long. Expected an array
  with maximum length 4, but got an array with length 14 instead." (code
  `array_above_max_length`; continuedev/continue#1572).
- A function name outside `^[a-zA-Z0-9_-]+$` or longer than 64 characters (API
  reference, ChatCompletionTool.function.name: "Must be a-z, A-Z, 0-9, or contain
  underscores and dashes, with a maximum length of 64."): 400, "Invalid
  'tools[0].function.name': string does not match pattern. Expected a string that
  matches the pattern '^[a-zA-Z0-9_-]+$'." (code `invalid_value`; run-llama/llama_index#16093),
  or "... string too long. Expected a string with maximum length 64, but got a string
  with length 70 instead." (the wording of every length check, as for `user`).
"""

from __future__ import annotations

import re

NO_KEY = ("You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
          "auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're "
          "accessing the API from your browser and are prompted for a username and password. You can obtain an API "
          "key from https://platform.openai.com/account/api-keys.")
REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
MAX_STOP = 4
FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
FUNCTION_NAME_MAX = 64


def credentials_problem(headers: dict, keys=None) -> dict | None:
    """OpenAI's 401 body for a request without a Bearer key, or (given the `keys` it issued)
    with one it did not issue (None: the key is good)."""
    scheme, _, key = headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        return {"error": {"message": NO_KEY, "type": "invalid_request_error", "param": None, "code": None}}
    if keys is not None and key not in keys:
        shown = key if len(key) <= 12 else key[:8] + "*" * (len(key) - 12) + key[-4:]
        return {"error": {"message": f"Incorrect API key provided: {shown}. You can find your API key at "
                                     "https://platform.openai.com/account/api-keys.",
                          "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}
    return None


def _unanswered_calls(messages: list) -> str | None:
    for i, message in enumerate(messages):
        calls = message.get("tool_calls") if isinstance(message, dict) and message.get("role") == "assistant" else None
        if not calls:
            continue
        answered = set()
        for reply in messages[i + 1:]:
            if not isinstance(reply, dict) or reply.get("role") != "tool":
                break
            answered.add(reply.get("tool_call_id"))
        missing = [call.get("id") for call in calls if isinstance(call, dict) and call.get("id") not in answered]
        if missing:
            return ("An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                    "'tool_call_id'. The following tool_call_ids did not have response messages: "
                    + ", ".join(map(str, missing)))
    return None


def _function_names(body: dict):
    """(where, name) of every function the request names: its tools and its history's calls."""
    for t, tool in enumerate(body.get("tools") or []):
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict):
            yield f"tools[{t}].function.name", tool["function"].get("name")
    for m, message in enumerate(body.get("messages") or []):
        for c, call in enumerate((message.get("tool_calls") or []) if isinstance(message, dict) else []):
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                yield f"messages[{m}].tool_calls[{c}].function.name", call["function"].get("name")


def body_problem(body: dict) -> str | None:
    """Why OpenAI would refuse this Chat Completions body with a 400 (None: it would not)."""
    model = str(body.get("model", "")).rpartition("/")[2]
    if "max_tokens" in body and model.startswith(REASONING_PREFIXES):
        return "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."
    stop = body.get("stop")
    if isinstance(stop, list) and len(stop) > MAX_STOP:
        return (f"Invalid 'stop': array too long. Expected an array with maximum length {MAX_STOP}, but got an array "
                f"with length {len(stop)} instead.")
    for where, name in _function_names(body):
        if isinstance(name, str) and len(name) > FUNCTION_NAME_MAX:
            return (f"Invalid '{where}': string too long. Expected a string with maximum length {FUNCTION_NAME_MAX}, "
                    f"but got a string with length {len(name)} instead.")
        if not isinstance(name, str) or not FUNCTION_NAME.match(name):
            return (f"Invalid '{where}': string does not match pattern. Expected a string that matches the pattern "
                    "'^[a-zA-Z0-9_-]+$'.")
    messages = body.get("messages")
    return _unanswered_calls(messages) if isinstance(messages, list) else None
