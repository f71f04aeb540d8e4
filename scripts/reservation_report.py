"""How conservative the cap reservation is on real traffic (the Claude Code corpus).

For each /v1/messages request: the reserved input tokens (handler/metering/bounds.py) against a
count of the same JSON by the Claude tokenizer litellm bundles (anthropic_tokenizer.json,
Anthropic's published one; today's models' own is not public) and by o200k (gpt-4o), the
old estimate (bytes / 3), and the whole reservation against input + max_tokens. Offline:
both tokenizers are read from litellm's package.

    .venv/bin/python -m scripts.reservation_report [corpus.jsonl]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

from tokenizers import Tokenizer

from handler.metering.bounds import request_bound, shape_of
from handler.metering.items import input_token_estimate
from handler.providers.price_map import load

CORPUS = Path(__file__).parent.parent / "tests" / "data" / "claude-code-2.1.197.jsonl"
TOKENIZERS = Path(__import__("importlib.util").util.find_spec("litellm").submodule_search_locations[0]) \
    / "litellm_core_utils" / "tokenizers"


def main(path: Path) -> None:
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(TOKENIZERS))
    import tiktoken

    o200k = tiktoken.get_encoding("o200k_base")
    claude = Tokenizer.from_file(str(TOKENIZERS / "anthropic_tokenizer.json"))
    sonnet = load()["claude-sonnet-4-5"]
    rows = []
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        body = entry["body"]
        if not entry["path"].split("?")[0].endswith("/v1/messages") or "max_tokens" not in body:
            continue
        text = json.dumps([body.get("system"), body.get("messages"), body.get("tools")], ensure_ascii=False)
        counted = max(len(claude.encode(text).ids), len(o200k.encode(text)))
        shape = shape_of(body, anthropic_beta=entry["headers"].get("anthropic-beta"))
        bound = request_bound(body, [(sonnet, True)], anthropic_beta=entry["headers"].get("anthropic-beta"))
        reserved_input = bound.tokens - shape.max_tokens * (10 if shape.server_tools else 1)
        rows.append((reserved_input / counted, input_token_estimate(body) / counted,
                     bound.tokens / (counted + shape.max_tokens), shape.server_tools))
    plain = [row for row in rows if not row[3]]
    print(f"{len(rows)} requests ({len(rows) - len(plain)} with server tools, left out of the ratios below)")
    print("tokens = the larger of the Claude and o200k counts of the request's JSON")
    for name, index in (("reserved input / tokens", 0), ("old estimate (bytes/3) / tokens", 1),
                        ("whole reservation / (tokens + max_tokens)", 2)):
        values = sorted(row[index] for row in plain)
        print(f"{name}: min {values[0]:.2f}  median {statistics.median(values):.2f}  max {values[-1]:.2f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else CORPUS)
