"""What a translation from Anthropic's Messages cannot carry to a model.

The routes that translate (litellm's to Gemini; the gateway's own to Chat
Completions, translation/chat_completions.py, and to Bedrock's Converse,
translation/converse.py, which carries what litellm's Converse carried: the
defaults below) each carry some blocks and sources and not others; what they
cannot carry must not vanish on the way.

litellm's, measured:
Measured with litellm 1.110.2 against the fakes: a document whose source is
`text`, `content` or a Files API `file` id is dropped without a word (the model
answers as if it had never been sent); a document's `title`, `context` and
`citations` are dropped too, and so are `search_result` and `container_upload`
blocks; a `url` source (image or document) is fetched by litellm itself, from
the gateway (public hosts: it blocks private addresses), so a caller spends the
gateway's egress and time, and a fetch that fails came back as a 502 "Could
not reach the upstream model" (Converse), a provider failure that moves the
shared breaker: four such requests opened Nova's circuit for every caller. A
base64 PDF or image goes through as the provider's own block, in a tool_result
too. Chat Completions carries image URLs (the provider fetches them) and text
documents, but no document URL or file id. Pure: each family says what its
route loses (Family.unsendable); the gateway leaves such a model out of the
request's chain, refuses the request with a 400 naming the block when no model
of the chain can carry it, and @edenai routes around such candidates.

A block type the gateway does not know (protocol/content.py passes it on for
Anthropic-type providers, which judge it) has no translation on any of these
routes, unless it has a faithful text form (translation/text_forms.py): such a
block is lost like the others, and named.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from ..protocol.content import KNOWN_BLOCK_TYPES
from .text_forms import renders

CARRIED_SOURCES = {"image": {"base64"}, "document": {"base64"}}
INSTEAD = {"image": "send it as base64.", "document": "send a PDF as base64, text as a text block."}
LOST_DOCUMENT_FIELDS = ("title", "context", "citations")
LOST_KINDS = frozenset({"search_result", "container_upload"})  # no equivalent: dropped whole


def _blocks(messages: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every content block with where it is, tool_result contents included."""
    for m, message in enumerate(messages if isinstance(messages, list) else []):
        content = message.get("content") if isinstance(message, Mapping) else None
        for b, block in enumerate(content if isinstance(content, list) else []):
            if not isinstance(block, Mapping):
                continue
            where = f"messages.{m}.content.{b}"
            yield where, block
            inner = block.get("content") if block.get("type") == "tool_result" else None
            for i, nested in enumerate(inner if isinstance(inner, list) else []):
                if isinstance(nested, Mapping):
                    yield f"{where}.content.{i}", nested


def lost_in_translation(body: Mapping[str, Any], carried: Mapping[str, set[str]] = CARRIED_SOURCES,
                        lost_kinds: frozenset[str] = LOST_KINDS,
                        lost_fields: tuple[str, ...] = LOST_DOCUMENT_FIELDS) -> str | None:
    """The first block the route would drop or fetch, said so a caller can fix it (None: none);
    litellm's by default."""
    for where, block in _blocks(body.get("messages")):
        kind = block.get("type")
        if kind not in KNOWN_BLOCK_TYPES and not renders(block):
            return (f"{where}: a {kind!r} block has no equivalent on this model (only Anthropic-type models "
                    "take it) and would be dropped on the way.")
        if kind in lost_kinds:
            return (f"{where}: a {kind} block has no equivalent on this model and would be dropped on the way; "
                    "send its text as a text block.")
        if kind not in carried:
            continue
        source = block.get("source") if isinstance(block.get("source"), Mapping) else {}
        if source.get("type") not in carried[kind]:
            how = "fetched by the gateway" if source.get("type") == "url" else "dropped"
            return (f"{where}: a {kind} with a {source.get('type')!r} source would be {how} on the way to this "
                    f"model; {INSTEAD[kind]}")
        extra = [name for name in lost_fields
                 if kind == "document" and block.get(name) not in (None, "", {"enabled": False})]
        if extra:
            return f"{where}: this model cannot take a document's {', '.join(extra)}; send the document without it."
    return None
