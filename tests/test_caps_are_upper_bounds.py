"""Monthly caps are upper bounds, whatever shape of request an attacker with a valid key sends.

A request reserves the most it can be billed (handler/metering/bounds.py) before the
upstream call, and settles to the real figure afterwards; so however many
requests arrive together, what is metered never passes the cap. Server tools
are metered and priced per use, in the record and in `cost_usd`.
"""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest

from handler.metering.bounds import IMAGE_TOKENS_ANTHROPIC, request_bound, shape_of
from handler.providers.price_map import load

CLAUDE = "anthropic/claude-sonnet-4-5"
SONNET = load()["claude-sonnet-4-5"]
GPT_MINI = load()["gpt-4o-mini"]
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6300010000000500010d0a2db40000000049454e44ae426082")).decode()
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
URL_PDF = {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 99}


def ask(content):
    return [{"role": "user", "content": content}]


def test_dense_text_is_bounded_by_its_utf8_bytes():
    dense = {"max_tokens": 1, "messages": ask("a " * 2000)}
    assert request_bound(dense, [(SONNET, True)]).tokens >= 4000 + 1  # "a " is two tokens at worst
    emoji = {"max_tokens": 1, "messages": ask("🙂" * 1000)}
    assert request_bound(emoji, [(SONNET, True)]).tokens >= 4000  # 4 bytes each, up to 4 tokens


def test_images_count_at_their_documented_maximum_not_their_base64_size():
    body = {"max_tokens": 1, "messages": ask([IMAGE] * 20 + [{"type": "text", "text": "what?"}])}
    shape = shape_of(body)
    assert shape.images == 20 and shape.text_bytes < 500
    assert request_bound(body, [(SONNET, True)]).tokens >= 20 * IMAGE_TOKENS_ANTHROPIC


def test_images_sent_to_an_openai_compatible_model_count_at_its_high_detail_worst_case():
    """gpt-4o-mini bills a high-detail image at up to 2,833 + 4 tiles x 5,667 = 25,501 tokens,
    twelve times Claude's most: an Anthropic-sized reservation would let a key pass its cap."""
    body = {"max_tokens": 1, "messages": ask([IMAGE] * 3 + [{"type": "text", "text": "what?"}])}
    assert request_bound(body, [(GPT_MINI, False)]).tokens >= 3 * 25_501, \
        "three images to gpt-4o-mini were reserved below what it may bill for them"


def test_a_url_pdf_reserves_the_whole_context_window():
    body = {"max_tokens": 10, "messages": ask([URL_PDF, {"type": "text", "text": "summarise"}])}
    assert request_bound(body, [(SONNET, True)]).tokens == SONNET["max_input_tokens"] + 10
    long = request_bound(body, [(SONNET, True)], anthropic_beta="context-1m-2025-08-07")
    assert long.tokens == 1_000_000 + 10


def test_server_tools_reserve_their_loop_and_their_fees():
    body = {"max_tokens": 100, "messages": ask("news?"), "tools": [WEB_SEARCH]}
    bound = request_bound(body, [(SONNET, True)])
    assert bound.tokens >= 9 * SONNET["max_input_tokens"] + 10 * 100  # 10 iterations, each may write max_tokens
    assert bound.usd >= 99 * Decimal("0.01")


@pytest.mark.parametrize("tool", [{"type": "web_fetch_20250910", "name": "web_fetch"},
                                  {"type": "code_execution_20250825", "name": "code_execution"}])
@pytest.mark.parametrize("info, anthropic", [(SONNET, True), (GPT_MINI, False)], ids=["claude", "openai"])
def test_server_tools_other_than_search_reserve_their_loop_for_every_model(tool, info, anthropic):
    """A fetch or a code run loops on the provider's side as a search does, whichever model
    the request may land on: each round may read a whole window of results."""
    body = {"max_tokens": 100, "messages": ask("fetch it"), "tools": [tool]}
    bound = request_bound(body, [(info, anthropic)])
    assert bound.tokens >= 9 * info["max_input_tokens"] + 10 * 100, f"reserved only {bound.tokens} tokens"


def test_a_structured_output_schema_counts_in_the_reservation():
    """Providers put the answer's schema in the prompt: it is billed as input, so it is reserved."""
    schema = {"type": "object", "properties": {f"field_{n}": {"type": "string", "description": "word " * 40}
                                               for n in range(50)}}
    plain = {"max_tokens": 10, "messages": ask("fill it in")}
    without = request_bound(plain, [(SONNET, True)]).tokens
    for shaped in ({**plain, "output_config": {"format": {"type": "json_schema", "schema": schema}}},
                   {**plain, "output_format": {"type": "json_schema", "schema": schema}}):
        assert request_bound(shaped, [(SONNET, True)]).tokens >= without + len(json.dumps(schema)), \
            "a 10 kB schema the provider reads as prompt was left out of the reservation"


def test_a_web_search_is_metered_and_priced_per_use(server, stack, api_key):
    tool = {**WEB_SEARCH, "max_uses": 3}
    for stream in (False, True):
        response = httpx.post(f"{server.url}/v3/v1/messages", headers={"x-api-key": api_key}, timeout=30,
                              json={"model": CLAUDE, "max_tokens": 20, "messages": ask("news?"), "tools": [tool],
                                    "stream": stream})
        assert response.status_code == 200
    records = stack.records(api_key, 2)
    for record in records:
        assert record["server_tool_use"] == {"web_search_requests": 3}, "the searches were not in the record"
        tokens = (int(record["input_tokens"]) * Decimal(str(SONNET["input_cost_per_token"]))
                  + int(record["output_tokens"]) * Decimal(str(SONNET["output_cost_per_token"])))
        assert record["cost_usd"] == tokens + 3 * Decimal("0.01"), "the search fees never reached cost_usd"
    month = stack.month(api_key, requests=2)
    assert month["web_search_requests"] == 6
    assert month["cost_usd"] == sum(r["cost_usd"] for r in records)


def test_fifty_parallel_adversarial_requests_never_pass_a_keys_monthly_caps(server, stack, fake):
    """Dense text, many images, URL PDFs, web search with max_uses 99 and long streams, all at once."""
    caps = {"monthly_tokens": 400_000, "monthly_usd": 3}
    key = stack.add_key(limits=caps)
    fake.delay("claude-sonnet-4-5", 0.2)  # all in flight together
    shapes = [
        {"max_tokens": 1, "messages": ask("a " * 2000)},
        {"max_tokens": 1, "messages": ask([IMAGE] * 20 + [{"type": "text", "text": "describe"}])},
        {"max_tokens": 5, "messages": ask([URL_PDF, {"type": "text", "text": "summarise"}])},
        {"max_tokens": 5, "messages": ask("news?"), "tools": [WEB_SEARCH]},
        {"max_tokens": 4000, "messages": ask("tell me a long story " * 50), "stream": True},
    ]

    def send(n):
        body = {"model": CLAUDE, **shapes[n % len(shapes)]}
        return httpx.post(f"{server.url}/v3/v1/messages", json=body, headers={"x-api-key": key}, timeout=60)

    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(send, range(50)))
    served = [r for r in responses if r.status_code == 200]
    assert {r.status_code for r in responses} <= {200, 429}
    assert len(served) >= 5, "the caps refused even requests that fit"
    month = stack.month(key, requests=len(served), timeout=20)
    used = sum(int(month[name]) for name in
               ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
    assert used <= caps["monthly_tokens"], f"{used} tokens metered against a cap of {caps['monthly_tokens']}"
    assert month["cost_usd"] <= caps["monthly_usd"], f"${month['cost_usd']} metered against a ${caps['monthly_usd']} cap"
    assert month["budget_tokens"] == used, "a reservation was left unsettled"


def test_every_real_claude_code_request_reserves_at_least_what_tokenizers_count():
    """The corpus's requests (Claude Code 2.1.197), counted by the Claude tokenizer litellm
    bundles and by o200k: the reservation's input part is never below either count."""
    import json
    import os
    from pathlib import Path

    from scripts.reservation_report import CORPUS, TOKENIZERS
    from tokenizers import Tokenizer

    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(TOKENIZERS))
    import tiktoken

    counters = [lambda text: len(Tokenizer.from_file(str(TOKENIZERS / "anthropic_tokenizer.json")).encode(text).ids),
                lambda text: len(tiktoken.get_encoding("o200k_base").encode(text))]
    checked = 0
    for line in Path(CORPUS).read_text().splitlines():
        entry = json.loads(line)
        body = entry["body"]
        if "max_tokens" not in body:
            continue
        bound = request_bound(body, [(SONNET, True)], anthropic_beta=entry["headers"].get("anthropic-beta"))
        text = json.dumps([body.get("system"), body.get("messages"), body.get("tools")], ensure_ascii=False)
        assert bound.tokens - body["max_tokens"] >= max(count(text) for count in counters)
        checked += 1
    assert checked >= 20


@pytest.mark.parametrize("loop", [{"mcp_servers": [{"type": "url", "url": "https://mcp.example/sse", "name": "x"}]},
                                  {"tools": [{"type": "mcp_toolset", "mcp_server_name": "x"}]}])
def test_the_mcp_connector_reserves_its_loop_like_a_server_tool(loop):
    """Anthropic runs the caller's MCP servers in a loop on its side: each round may read a
    whole context of tool results, so one small request can bill many windows."""
    body = {"max_tokens": 100, "messages": ask("use my tools"), **loop}
    bound = request_bound(body, [(SONNET, True)])
    assert bound.tokens >= 9 * SONNET["max_input_tokens"], f"reserved only {bound.tokens} tokens"


# Block types the gateway does not know go to Claude as sent (handler/protocol/content.py): each is
# reserved like the costliest block it resembles.
UNKNOWN_WITH_URL = {"type": "audio", "source": {"type": "url", "url": "https://example.com/call.mp3"}}
UNKNOWN_WITH_FILE = {"type": "video", "source": {"type": "file", "file_id": "file_011CZ"}}
UNKNOWN_TEXT_ONLY = {"type": "compaction", "content": "Summary of the conversation so far."}


@pytest.mark.parametrize("block", [UNKNOWN_WITH_URL, UNKNOWN_WITH_FILE])
def test_a_block_the_gateway_does_not_know_holding_a_url_or_file_reserves_the_whole_window(block):
    for content in ([block, {"type": "text", "text": "transcribe"}],
                    [{"type": "tool_result", "tool_use_id": "t", "content": [block]}]):
        body = {"max_tokens": 10, "messages": ask(content)}
        assert request_bound(body, [(SONNET, True)]).tokens == SONNET["max_input_tokens"] + 10, \
            "a block the provider fetches was reserved as its few bytes of JSON"


def test_a_block_the_gateway_does_not_know_of_text_alone_is_reserved_by_its_bytes():
    body = {"max_tokens": 10, "messages": ask([UNKNOWN_TEXT_ONLY])}
    assert 10 + len(UNKNOWN_TEXT_ONLY["content"]) <= request_bound(body, [(SONNET, True)]).tokens < 1_000


def test_a_key_with_a_cap_below_the_window_cannot_send_an_unknown_block_that_fetches(server, stack, fake):
    key = stack.add_key(limits={"monthly_tokens": 150_000})  # below Sonnet's 200,000-token window
    headers = {"x-api-key": key}
    fetching = {"model": CLAUDE, "max_tokens": 10, "messages": ask([UNKNOWN_WITH_URL, {"type": "text", "text": "hi"}])}
    response = httpx.post(f"{server.url}/v3/v1/messages", json=fetching, headers=headers, timeout=30)
    assert response.status_code == 429, f"a block the provider fetches got {response.status_code}: {response.text}"
    assert fake.count() == 0, "it reached the provider with a reservation below what it can bill"
    textual = {"model": CLAUDE, "max_tokens": 10, "messages": ask([{"type": "text", "text": "hi"}]), "context_management":
               {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}}
    assert httpx.post(f"{server.url}/v3/v1/messages", json=textual, headers=headers, timeout=30).status_code == 200


def test_text_data_inside_a_block_the_gateway_does_not_know_is_reserved_as_text():
    block = {"type": "transcript", "source": {"type": "text", "media_type": "text/plain", "data": "hello there"}}
    assert request_bound({"max_tokens": 10, "messages": ask([block])}, [(SONNET, True)]).tokens < 1_000
