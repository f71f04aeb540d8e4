"""Where a key's entry lives: keys spread over many secrets by their digest.

One secret holds 64 KB, about 300 keys, so keys are sharded: with a layout of
N shards, a digest's first 32 bits, scaled to N, pick its shard (equal ranges
of the digest space, any N). A lookup therefore reads exactly one secret, and
no key is re-issued when N changes: only entries move.

The layout of one shard is the base secret itself (`GATEWAY_KEYS_SECRET_ID`),
which is what a single-secret deployment already has. Resharding to M copies
every entry into the M new secrets, then marks each old shard
`{"moved_to": M, "keys": []}`: a reader configured for the old layout follows
the mark (one more read), and a writer that finds it writes to the new layout
instead, so nothing is lost while deployments catch up with the new count.

While a reshard runs, each secret of the new layout says where its entries
come from, `"moving_from": [M]`: a reader already configured for the new count
that does not find a key there looks in layout M's shard, and an admin finds
the layouts still holding keys even when the reshard returns to a layout used
before (whose old marks it replaces). The reshard removes it at the end.
"""

from __future__ import annotations

MAX_HOPS = 4  # moved_to marks followed before giving up (a reshard of a reshard of ...)


def shard_index(digest: str, count: int) -> int:
    """`sha256:<hex>` -> 0..count-1 by equal ranges of the first 32 bits."""
    return (int(digest.removeprefix("sha256:")[:8], 16) * count) >> 32


def secret_name(secret_id: str) -> str:
    """A secret's name from its id: an ARN ends in `secret:<name>-<6 random chars>`."""
    if secret_id.startswith("arn:") and ":secret:" in secret_id:
        return secret_id.split(":secret:", 1)[1][:-7]
    return secret_id


def shard_secret_id(base: str, count: int, index: int) -> str:
    if count == 1:
        return base
    return f"{secret_name(base)}/shard-{index:04d}-of-{count:04d}"


def shard_of(base: str, count: int, digest: str) -> str:
    return shard_secret_id(base, count, shard_index(digest, count))


def moved_to(document: dict | None) -> int | None:
    """The layout a shard's keys moved to, if it was resharded."""
    value = (document or {}).get("moved_to")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def moving_from(document: dict | None) -> list[int]:
    """The layouts a shard is taking entries from, while a reshard into its layout runs."""
    value = (document or {}).get("moving_from")
    return [count for count in value if isinstance(count, int) and not isinstance(count, bool) and count >= 1] \
        if isinstance(value, list) else []
