"""DynamoDB Query without walking the whole table (moto 5.2.5).

Why: a Query reads one partition in DynamoDB; moto sorts and walks every item
of the table for it (measured: 60 ms per query at 2,000 items, linear).
"""

from __future__ import annotations

from typing import Any


def install_dynamodb_query_patch() -> None:
    """Table-key Query: walk only the partition asked for."""
    from moto.dynamodb.models.table import Table

    orig_query = Table.query

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None:
            return orig_query(self, hash_key, *args, **kwargs)
        bucket = self.items.get(hash_key)
        if bucket is None:
            partition: list = []
        elif self.range_key_attr is not None:
            partition = list(bucket.values())
        else:
            partition = [bucket]
        self.all_items = lambda: partition
        try:
            return orig_query(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query
