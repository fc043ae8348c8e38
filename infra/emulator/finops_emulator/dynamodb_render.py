"""DynamoDB Query and Scan answers rendered with json.dumps (moto 5.2.5).

Why: moto's generic response serializer walks the service model for every
attribute value of every item (several dictionary look-ups and alias checks
per value). For a page of 1,000 subscriber items that is most of the
Query's time, far more than finding the items: measured in-process, 3.4 of
4.2 s for three 1,000-item pages of the notifier's subscriber Query.

The answer is the same bytes as moto's serializer (checked by
tests/test_dynamodb_render.py): the members in the output shape's order
(Items, Count, ScannedCount, LastEvaluatedKey) and ``json.dumps`` with its
default separators and ASCII escapes, which is what the serializer ends
with. Anything whose rendering the fast path does not reproduce exactly goes
to moto's serializer unchanged: binary values (B, BS; moto base64-encodes
them a second time), ConsumedCapacity, any other member, any value of an
unexpected Python type.
"""

from __future__ import annotations

import functools
import json
from typing import Any

ORDER = ("Items", "Count", "ScannedCount", "LastEvaluatedKey")
CONTENT_TYPE = "application/x-amz-json-1.0"


def _plain_value(av: Any) -> bool:
    """An AttributeValue moto's serializer renders exactly as json.dumps does."""
    if type(av) is not dict or len(av) != 1:
        return False
    (kind, v), = av.items()
    if kind in ("S", "N"):
        return type(v) is str
    if kind in ("BOOL", "NULL"):
        return type(v) is bool
    if kind in ("SS", "NS"):
        return type(v) is list and all(type(x) is str for x in v)
    if kind == "M":
        return _plain_map(v)
    if kind == "L":
        return type(v) is list and all(_plain_value(x) for x in v)
    return False  # B, BS, or unknown


def _plain_map(m: Any) -> bool:
    return type(m) is dict and all(type(k) is str and _plain_value(v) for k, v in m.items())


def render(result: Any) -> str | None:
    """Query/Scan output as moto's JSON serializer would write it, or None."""
    if type(result) is not dict or not set(result) <= set(ORDER):
        return None
    if type(result.get("Count", 0)) is not int or type(result.get("ScannedCount", 0)) is not int:
        return None
    items = result.get("Items")
    if items is not None and (type(items) is not list or not all(_plain_map(i) for i in items)):
        return None
    lek = result.get("LastEvaluatedKey")
    if lek is not None and not _plain_map(lek):
        return None
    return json.dumps({k: result[k] for k in ORDER if result.get(k) is not None})


def install_dynamodb_render_patch() -> None:
    from moto.core.responses import ActionResult
    from moto.core.utils import get_service_model
    from moto.dynamodb import responses

    Handler = responses.DynamoHandler

    def fast(orig: Any) -> Any:
        @functools.wraps(orig)
        def handler(self: Any) -> Any:
            result = orig(self)
            if isinstance(result, ActionResult):
                protocol = self.determine_response_protocol(get_service_model(self.boto3_service_name))
                body = render(result.result) if protocol == "json" else None
                if body is not None:
                    return 200, {"Content-Type": CONTENT_TYPE}, body
            return result

        return handler

    Handler.query = fast(Handler.query)
    Handler.scan = fast(Handler.scan)
