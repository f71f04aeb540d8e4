"""Token counts made at the gateway, for models whose platform cannot count them.

Bedrock's CountTokens counts for Anthropic's Claude only (AWS user guide,
"Monitor your token usage by counting tokens before running inference": its
supported models are Claude ones; Amazon Nova's ids are refused with a
ValidationException, "The provided model doesn't support counting tokens").
litellm's token_counter counts a model it has no tokenizer of its own for with
tiktoken's cl100k_base, read from the copy litellm bundles in its package
(litellm_core_utils/tokenizers) so that tiktoken never reaches the network.
The same file is read here, found without importing litellm (about 2 s and
150 MB: a Bedrock-only deployment never imports it) and parsed as tiktoken
parses it; nothing is fetched, nothing is written.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
from pathlib import Path

import tiktoken

from ..protocol.errors import GatewayError

# tiktoken_ext.openai_public.cl100k_base: where tiktoken fetches the ranks from (its cache names a
# file by the sha1 of this URL, the name litellm's bundled copy has), their sha256, the split pattern.
_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
            r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")


def _bundled_ranks() -> Path:
    """litellm's bundled copy of cl100k_base's ranks (find_spec locates a package without running it)."""
    spec = importlib.util.find_spec("litellm")
    folders = list(spec.submodule_search_locations or []) if spec else []
    name = hashlib.sha1(_URL.encode()).hexdigest()
    for folder in folders:
        path = Path(folder) / "litellm_core_utils" / "tokenizers" / name
        if path.is_file():
            return path
    raise GatewayError(500, "The gateway's local tokenizer is not installed (litellm's bundled cl100k_base).",
                       error_type="api_error")


@functools.cache
def encoding() -> tiktoken.Encoding:
    """cl100k_base, built once per process from the bundled ranks (checked as tiktoken checks them)."""
    data = _bundled_ranks().read_bytes()
    if hashlib.sha256(data).hexdigest() != _SHA256:
        raise GatewayError(500, "The gateway's local tokenizer file is corrupt.", error_type="api_error")
    ranks = {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in data.splitlines() if line)}
    return tiktoken.Encoding(name="cl100k_base", pat_str=_PATTERN, mergeable_ranks=ranks, special_tokens={})


def count(text: str) -> int:
    """The tokens of `text`, special-token spellings counted as the text they are."""
    return len(encoding().encode_ordinary(text))
