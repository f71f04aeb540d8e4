"""Caller keys: hashing, the keys secrets and their shards, the operator's writes.

`store` finds a presented key (hash, then a dict lookup in the cached shard),
`shards` says which secret holds a key, `admin` creates, revokes, rotates and
reshards. Imports protocol, aws and cache.
"""
