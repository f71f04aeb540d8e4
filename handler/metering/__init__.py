"""The usage ledger: what each request cost, and the limits that keep a key in its caps.

`items` is the DynamoDB table's shape (pure), `pricing` and `bounds` the cost
and the reservation's upper bound (pure), `ledger` the I/O, `group_commit`
batches writes, `hot_keys` spreads a busy key over ledger shards,
`usage_report` reads a month back. Imports protocol, aws, observe and keys.
"""
