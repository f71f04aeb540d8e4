"""A translated provider's refusal, worded as Anthropic words it.

Clients recover from some refusals by matching status 400 and Anthropic's
wording (Claude Code: a prompt too long is compacted, `max_tokens` over the
context is lowered, an unprocessable image or PDF is dropped, an invalid
thinking signature has thinking stripped, structured outputs or effort a
model refuses stop being sent). OpenAI, Azure, Gemini and litellm say the
same things in their own words, which no client recognises: this table
recognises them and gives Anthropic's words first, the provider's after.

Pure: the provider's message (and its error code, where it has one) in,
Anthropic's message out, or None when the refusal is none of these classes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

# Anthropic's words (its API's messages, as clients match them).
PROMPT_TOO_LONG = "prompt is too long"
OVER_CONTEXT = "input length and `max_tokens` exceed context limit"
IMAGE = "Could not process image"
DOCUMENT = "Could not process PDF"
SIGNATURE = "Invalid `signature` in `thinking` block"
STRUCTURED = "output_config.format: Extra inputs are not permitted"
EFFORT = "This model does not support the effort parameter."

# OpenAI (and Azure, vLLM, every OpenAI-compatible server): input plus completion over the window.
# "This model's maximum context length is 128000 tokens. However, you requested 140000 tokens
# (130000 in the messages, 10000 in the completion)."
_OPENAI_REQUESTED = re.compile(r"maximum context length is (\d+) tokens.*?\((\d+) in the messages, (\d+) in the completion\)",
                               re.I | re.S)
# vLLM's newer form: "'max_tokens' or 'max_completion_tokens' is too large: 2000. This model's maximum
# context length is 4096 tokens and your request has 3000 input tokens (2000 > 4096 - 3000)."
_VLLM_TOO_LARGE = re.compile(r"is too large: (\d+)\..*?maximum context length is (\d+) tokens and your request has "
                             r"(\d+) input tokens", re.I | re.S)
# OpenAI: "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens."
_OPENAI_PROMPT = re.compile(r"maximum context length is (\d+) tokens.*?resulted in (\d+) tokens", re.I | re.S)
# Gemini: "The input token count (1234567) exceeds the maximum number of tokens allowed (1048576)."
_GEMINI_PROMPT = re.compile(r"input token count(?: \(| is )(\d+)\)? exceeds the maximum number of tokens allowed(?: \(| )(\d+)",
                            re.I)
_CONTEXT_HINTS = ("context length", "context window", "maximum context", "prompt is too long",
                  "exceeds the maximum number of tokens", "too many tokens", "input is too long")
_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
# OpenAI's image codes; "image_url is only supported by certain models" (a model without vision).
_IMAGE_CODES = frozenset({"invalid_image", "invalid_image_format", "image_parse_error", "invalid_image_url"})
_IMAGE_HINTS = ("invalid image", "unsupported image", "unable to process input image", "provided image is not valid",
                "image_url is only supported", "could not process image", "image format")
_DOCUMENT_CODES = frozenset({"invalid_file", "invalid_file_format", "unsupported_file"})
_DOCUMENT_HINTS = ("invalid file data", "file type you uploaded is not supported", "unable to process input document",
                   "the document has no pages", "does not support pdf", "could not process pdf", "invalid pdf")
_SIGNATURE_HINTS = ("thought signature", "thought_signature", "signature in thinking block")
_STRUCTURED_HINTS = ("response_format", "json_schema", "response_schema", "responseschema", "json mode is not enabled")
_EFFORT_HINTS = ("reasoning_effort", "reasoning effort", "thinking_config", "thinking budget")
_UNSUPPORTED = ("not supported", "unsupported", "unrecognized", "not enabled", "does not support", "invalid parameter",
                "unknown parameter", "not available")


@dataclass(frozen=True)
class Worded:
    """Anthropic's message for a refusal, and whether another (larger) model may take the request."""

    message: str
    context_window: bool = False


def _prompt_too_long(text: str, code: str | None, context_error: bool) -> Worded | None:
    lowered = text.lower()
    found = _OPENAI_REQUESTED.search(text)
    if found:
        limit, prompt, completion = found.groups()
        return Worded(f"{OVER_CONTEXT}: {prompt} + {completion} > {limit}, decrease input length or `max_tokens` "
                      "and try again", context_window=True)
    found = _VLLM_TOO_LARGE.search(text)
    if found:
        completion, limit, prompt = found.groups()
        return Worded(f"{OVER_CONTEXT}: {prompt} + {completion} > {limit}, decrease input length or `max_tokens` "
                      "and try again", context_window=True)
    found = _OPENAI_PROMPT.search(text)
    if found:
        limit, prompt = found.groups()
        return Worded(f"{PROMPT_TOO_LONG}: {prompt} tokens > {limit} maximum", context_window=True)
    found = _GEMINI_PROMPT.search(text)
    if found:
        prompt, limit = found.groups()
        return Worded(f"{PROMPT_TOO_LONG}: {prompt} tokens > {limit} maximum", context_window=True)
    if context_error or code in _CONTEXT_CODES or any(hint in lowered for hint in _CONTEXT_HINTS):
        return Worded(PROMPT_TOO_LONG, context_window=True)
    return None


def _unsupported(hints: tuple[str, ...]) -> Callable[[str], bool]:
    return lambda lowered: any(h in lowered for h in hints) and any(u in lowered for u in _UNSUPPORTED)


_is_structured = _unsupported(_STRUCTURED_HINTS)
_is_effort = _unsupported(_EFFORT_HINTS)


def reword(text: str, *, code: str | None = None, context_error: bool = False) -> Worded | None:
    """Anthropic's words for a provider's 4xx refusal, the provider's kept after them; None when
    it is none of the classes clients recover from. `code` is the provider's error code
    (OpenAI's `context_length_exceeded`, ...); `context_error` that its client library already
    called it a context window error (litellm's ContextWindowExceededError)."""
    lowered = text.lower()
    if lowered.startswith((PROMPT_TOO_LONG, OVER_CONTEXT.lower())):
        return Worded(text, context_window=True)  # already Anthropic's words (an Anthropic-type provider's own)
    if text.startswith((IMAGE, DOCUMENT, SIGNATURE, STRUCTURED, EFFORT)):
        return Worded(text)
    worded = _prompt_too_long(text, code, context_error)
    if worded is None:
        if code in _IMAGE_CODES or any(hint in lowered for hint in _IMAGE_HINTS):
            worded = Worded(IMAGE)
        elif code in _DOCUMENT_CODES or any(hint in lowered for hint in _DOCUMENT_HINTS):
            worded = Worded(DOCUMENT)
        elif any(hint in lowered for hint in _SIGNATURE_HINTS):
            worded = Worded(SIGNATURE)
        elif _is_structured(lowered):
            worded = Worded(STRUCTURED)
        elif _is_effort(lowered):
            worded = Worded(EFFORT)
        else:
            return None
    separator = " " if worded.message.endswith(".") else ". "
    return Worded(f"{worded.message}{separator}The provider said: {text}", worded.context_window)
