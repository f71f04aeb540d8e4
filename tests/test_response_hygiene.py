"""No header of the provider's account reaches the caller.

A provider's identity and quota headers (`anthropic-organization-id`, its
`anthropic-ratelimit-*`, `cf-ray`, `via`, its `request-id`, OpenAI's
`openai-organization` and `x-ratelimit-*`) describe the operator's account,
not the caller's key: Claude Code's own gateway does not relay them, nor
does this one. The caller's `request-id` is the gateway's own.
"""

from __future__ import annotations

import pytest

CLAUDE = "anthropic/claude-sonnet-4-5"
GPT = "openai/gpt-4o-mini"
HELLO = [{"role": "user", "content": "hello"}]

ACCOUNT_HEADERS = {
    "anthropic-organization-id": "org-operator-0001",
    "anthropic-ratelimit-requests-limit": "4000",
    "anthropic-ratelimit-requests-remaining": "3999",
    "anthropic-ratelimit-tokens-limit": "2000000",
    "anthropic-ratelimit-input-tokens-remaining": "1999000",
    "anthropic-ratelimit-unified-status": "allowed",
    "openai-organization": "org-operator",
    "openai-project": "proj_operator",
    "x-ratelimit-remaining-requests": "9999",
    "cf-ray": "8f00000000000000-IAD",
    "via": "1.1 upstream-proxy",
    "request-id": "req_upstream_0001",
    "x-request-id": "req_upstream_0002",
    "server": "cloudflare",
}


def leaked(headers) -> dict:
    found = {name: headers.get(name) for name in ACCOUNT_HEADERS if headers.get(name) == ACCOUNT_HEADERS[name]}
    return {**found, **{name: value for name, value in headers.items()
                        if name.startswith("anthropic-ratelimit-") and name not in ("anthropic-ratelimit-requests-limit",
                                                                                      "anthropic-ratelimit-requests-remaining",
                                                                                      "anthropic-ratelimit-requests-reset")}}


@pytest.mark.parametrize("model", [CLAUDE, GPT])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_providers_account_headers_are_not_relayed(client, fake, model, stream):
    fake.response_headers = dict(ACCOUNT_HEADERS)
    raw = client.messages.with_raw_response.create(model=model, max_tokens=10, messages=HELLO, stream=stream)
    if stream:
        list(raw.parse())
    assert fake.count() == 1
    assert not leaked(raw.headers), f"the provider's account headers reached the caller: {leaked(raw.headers)}"
    assert raw.headers["request-id"].startswith("req_") and raw.headers["request-id"] != "req_upstream_0001"


@pytest.mark.parametrize("model", [CLAUDE, GPT])
@pytest.mark.parametrize("status", [400, 429, 529])
def test_nor_on_the_providers_errors(client, fake, model, status):
    import anthropic

    fake.fail(model.split("/")[1], status=status, headers=ACCOUNT_HEADERS)
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(model=model, max_tokens=10, messages=HELLO)
    headers = caught.value.response.headers
    assert not leaked(headers), f"the provider's account headers reached the caller: {leaked(headers)}"
