"""DynamoDB TransactWriteItems without deep-copying whole tables (moto 5.2.5).

Why: moto backs each transaction up with ``copy.deepcopy`` of every table it
names, so one small transaction costs time proportional to the table
(subscribing 300 WebSocket connections, one transaction each, took 17.7 s;
10,000 would take most of an hour). See install_dynamodb_transaction_patch.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from . import dynamodb_query


def install_dynamodb_transaction_patch() -> None:
    """TransactWriteItems without deep-copying whole tables.

    moto backs each transaction up with ``copy.deepcopy`` of every table it
    names, so a transaction costs time proportional to the table: measured
    here, subscribing 300 WebSocket connections (one small transaction each)
    took 17.7 s and 10,000 would take most of an hour. The backup only has
    to restore what the transaction can change, so: the items it names are
    replaced in the live table by private copies first (the backup keeps the
    originals, untouched by any in-place update), and the backup is a
    shallow clone of the table that shares the partitions the transaction
    does not name and copies those it does. Rollback restores exactly what
    moto's full copy would have.
    """
    import copy as real_copy
    import types
    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    # Per call (DynamoDB requests are serialised): id(table) -> the original
    # items the live table now holds private copies of.
    originals: dict[int, list] = {}

    # id(table) -> hash keys of the partitions the transaction names.
    touched: dict[int, set] = {}

    def snapshot(table: Any) -> Any:
        clone = real_copy.copy(table)
        # Partitions the transaction does not name are never written by it,
        # so the backup may share them; the named ones get their own dicts.
        clone.items = defaultdict(dict, table.items)
        if table.range_key_attr is not None:
            for h in touched.get(id(table), ()):
                if h in table.items:
                    clone.items[h] = dict(table.items[h])
            for h, r, item in originals.get(id(table), []):
                clone.items[h][r] = item
        else:
            for h, _, item in originals.get(id(table), []):
                clone.items[h] = item
        return clone

    def deepcopy(obj: Any, memo: Any = None) -> Any:
        if isinstance(obj, Table):
            return snapshot(obj)
        return real_copy.deepcopy(obj, memo)

    shim = types.SimpleNamespace(deepcopy=deepcopy, copy=real_copy.copy)
    Backend = models.DynamoDBBackend
    orig = Backend.transact_write_items

    def privatise_named_items(self: Any, transact_items: list) -> None:
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            key = op.get("Key") or op.get("Item")
            if table is None or not isinstance(key, dict) or table.hash_key_attr not in key:
                continue
            h = DynamoType(key[table.hash_key_attr])
            touched.setdefault(id(table), set()).add(h)
            if table.range_key_attr is not None:
                if table.range_key_attr not in key:
                    continue
                r = DynamoType(key[table.range_key_attr])
                current = table.items.get(h, {}).get(r)
                if current is not None:
                    originals.setdefault(id(table), []).append((h, r, current))
                    table.items[h][r] = real_copy.deepcopy(current)
                    dynamodb_query.note_changed(table, h, r)
            else:
                current = table.items.get(h)
                if current is not None:
                    originals.setdefault(id(table), []).append((h, None, current))
                    table.items[h] = real_copy.deepcopy(current)
                    dynamodb_query.note_changed(table, h, None)

    def transact_write_items(self: Any, transact_items: list) -> None:
        originals.clear()
        touched.clear()
        privatise_named_items(self, transact_items)
        # DynamoDB requests are serialised (SerializedServices), so swapping
        # the module's `copy` for the duration of one call is race-free.
        models.copy = shim
        try:
            return orig(self, transact_items)
        finally:
            models.copy = real_copy
            originals.clear()
            touched.clear()

    Backend.transact_write_items = transact_write_items
