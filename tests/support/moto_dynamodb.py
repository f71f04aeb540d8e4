"""moto's DynamoDB, made to behave like DynamoDB where the ledger depends on it.

Two differences matter here. moto applies writes as unlocked
read-modify-writes, so two concurrent ADDs to one item can lose one (seen:
24 records, 23 counted); DynamoDB never does, so writes are serialised.
moto also applies an update's actions one by one to the live item, and
serialises a read's items after the read returns, so a reader could see a
MONTH item with `requests` counted and its token sums not yet (seen: 2
requests, the first one's tokens); a DynamoDB item is never read half
updated, so reads take the same lock and answer copies.
And moto 5.2.5's TransactWriteItems deep-copies the whole table once per item
of the transaction (its rollback), so each ledger write costs more than the
last (over 100 ms of CPU after a few thousand requests); here a transaction
snapshots only the items it addresses and restores those if it is cancelled,
with the same outcome as stock moto's. Third, moto writes a sum as Python
prints it: a cost settled back to zero becomes `0E-12`, which its next ADD
cannot parse (every later request of that key got 503); DynamoDB stores
numbers canonically, so sums are written in plain notation here.
`install()` applies them all, once.
"""

from __future__ import annotations

import copy
import functools
import threading
from typing import Any

from decimal import Decimal

from moto.dynamodb.exceptions import MockValidationException
from moto.dynamodb.models.dynamo_type import DDBType, DynamoType
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

_inside = threading.local()  # set while a transaction runs on this thread: moto's table copies are skipped
_deep_copy_table = Table.__deepcopy__ if hasattr(Table, "__deepcopy__") else None


def _table_deepcopy(self: Table, memo: dict) -> Table:
    """Inside a transaction: the live table itself, so moto's whole-table backup costs nothing."""
    if getattr(_inside, "active", False):
        return self
    if _deep_copy_table is not None:
        return _deep_copy_table(self, memo)
    reductor = self.__reduce_ex__(4)
    return copy._reconstruct(self, memo, *reductor)  # what copy.deepcopy does for a plain object


def _addressed(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[tuple]:
    """(table, hash key, range key, a copy of the item or None) for every item the transaction names."""
    found = []
    for entry in transact_items:
        _, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName"))
        if table is None:
            continue
        if "Key" in op:
            keys = op["Key"]
        else:
            keys = {name: op["Item"][name] for name in (table.hash_key_attr, table.range_key_attr)
                    if name and name in op.get("Item", {})}
        try:
            hash_key, range_key = backend.get_keys_value(table, keys)
        except MockValidationException:
            continue  # a malformed key: stock moto refuses the transaction itself
        found.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
    return found


def _restore(snapshots: list[tuple]) -> None:
    for table, hash_key, range_key, before in reversed(snapshots):
        if table.get_item(hash_key, range_key) is not None:
            table.delete_item(hash_key, range_key)
        if before is not None:
            if range_key:
                table.items[hash_key][range_key] = before
            else:
                table.items[hash_key] = before


_stock_transact_write_items = DynamoDBBackend.transact_write_items


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    snapshots = _addressed(self, transact_items)
    _inside.active = True
    try:
        return _stock_transact_write_items(self, transact_items)
    except Exception:
        _restore(snapshots)  # moto "restored" the live tables: put back what the transaction changed
        raise
    finally:
        _inside.active = False


def _plain(number: str) -> str:
    """A number as DynamoDB stores it: no exponent, no trailing zeros after the point."""
    text = format(Decimal(number).normalize(), "f")
    return text if text not in ("-0",) else "0"


def _canonical(operation):
    @functools.wraps(operation)
    def canonical(self: DynamoType, other: DynamoType) -> DynamoType:
        if self.type == other.type == DDBType.NUMBER:
            self, other = DynamoType({"N": _plain(self.value)}), DynamoType({"N": _plain(other.value)})
            result = operation(self, other)
            return DynamoType({"N": _plain(result.value)})
        return operation(self, other)
    return canonical


_lock = threading.RLock()


def _serialised(method):
    """One call at a time, answering copies: moto turns the items it answers into JSON after
    the call returns, and a later write must not change what the call saw."""
    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with _lock:
            return copy.deepcopy(method(self, *args, **kwargs))
    locked.serialised = True
    return locked


def install() -> None:
    if getattr(DynamoDBBackend.transact_write_items, "serialised", False):
        return
    Table.__deepcopy__ = _table_deepcopy
    DynamoType.__add__ = _canonical(DynamoType.__add__)
    DynamoType.__sub__ = _canonical(DynamoType.__sub__)
    DynamoDBBackend.transact_write_items = _serialised(transact_write_items)
    # Reads too: BatchGetItem and TransactGetItems read through get_item.
    for name in ("put_item", "update_item", "delete_item", "get_item", "query", "scan"):
        setattr(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name)))
