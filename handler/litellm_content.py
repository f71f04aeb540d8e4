"""What litellm's translation from Anthropic's Messages cannot carry to Gemini or Converse.

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
too. Pure: the families that call through litellm say so
(Family.unsendable); the gateway refuses a request naming such a model with a
400 naming the block, before anything is reserved or sent, and @edenai routes
around such candidates.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

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


def lost_in_translation(body: Mapping[str, Any]) -> str | None:
    """The first block litellm would drop or fetch, said so a caller can fix it (None: none)."""
    for where, block in _blocks(body.get("messages")):
        kind = block.get("type")
        if kind in LOST_KINDS:
            return (f"{where}: a {kind} block has no equivalent on this model and would be dropped on the way; "
                    "send its text as a text block.")
        if kind not in CARRIED_SOURCES:
            continue
        source = block.get("source") if isinstance(block.get("source"), Mapping) else {}
        if source.get("type") not in CARRIED_SOURCES[kind]:
            how = "fetched by the gateway" if source.get("type") == "url" else "dropped"
            return (f"{where}: a {kind} with a {source.get('type')!r} source would be {how} on the way to this "
                    f"model; {INSTEAD[kind]}")
        extra = [name for name in LOST_DOCUMENT_FIELDS
                 if kind == "document" and block.get(name) not in (None, "", {"enabled": False})]
        if extra:
            return f"{where}: this model cannot take a document's {', '.join(extra)}; send the document without it."
    return None
