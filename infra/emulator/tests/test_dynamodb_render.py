"""DynamoDB Query/Scan fast renderer: moto's serializer's exact bytes, or a
fall back to it for anything it does not reproduce."""

from __future__ import annotations

import sys

import pytest

from emulator_testlib import EMULATOR_DIR

sys.path.insert(0, str(EMULATOR_DIR))
from finops_emulator.dynamodb_render import render  # noqa: E402

sys.path.remove(str(EMULATOR_DIR))


def moto_bytes(operation, result):
    from moto.core.serialize import XFormedAttributePicker, get_serializer_class
    from moto.core.utils import get_service_model

    model = get_service_model("dynamodb")
    ser = get_serializer_class("dynamodb", model.protocol)(
        operation_model=model.operation_model(operation), pretty_print=False,
        value_picker=XFormedAttributePicker())
    out = ser.serialize(result)
    assert out["headers"]["Content-Type"] == "application/x-amz-json-1.0"
    return out["body"]


ITEM = {"pk": {"S": "CONN#c1"}, "n": {"N": "-1.50E+3"}, "u": {"S": "é \" \\ \n \u2028 😀 <&>"},
        "empty": {"S": ""}, "t": {"BOOL": True}, "f": {"BOOL": False}, "z": {"NULL": True},
        "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]}, "l": {"L": [{"S": "x"}, {"L": []}]},
        "m": {"M": {"inner": {"M": {"deep": {"N": "0"}}}, "ll": {"L": [{"M": {}}]}}}}

SAME = [
    {"Count": 0, "ScannedCount": 0, "Items": []},
    {"Count": 0, "ScannedCount": 7},  # Select COUNT
    {"Items": [ITEM, {"pk": {"S": "2"}}], "Count": 2, "ScannedCount": 2,
     "LastEvaluatedKey": {"pk": {"S": "2"}, "sk": {"N": "3"}}},
    # members given in another order come out in the shape's order
    {"LastEvaluatedKey": {"pk": {"S": "x"}}, "ScannedCount": 1, "Count": 1, "Items": [ITEM]},
]

FALLBACK = [
    {"Count": 1, "ScannedCount": 1, "Items": [{"b": {"B": "AAE="}}]},
    {"Count": 1, "ScannedCount": 1, "Items": [{"m": {"M": {"bs": {"BS": ["AA=="]}}}}]},
    {"Count": 1, "ScannedCount": 1, "Items": [{}], "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 1.0}},
    {"Count": 1, "ScannedCount": 1, "Items": [{"x": {"N": 1}}]},
    {"Count": 1, "ScannedCount": 1, "Items": [{"x": {"S": "a", "N": "1"}}]},
]


@pytest.mark.parametrize("operation", ["Query", "Scan"])
@pytest.mark.parametrize("result", SAME)
def test_rendered_bytes_identical_to_moto_serializer(operation, result):
    assert render(result) == moto_bytes(operation, result)


@pytest.mark.parametrize("result", FALLBACK)
def test_unusual_results_go_to_moto_serializer(result):
    assert render(result) is None
