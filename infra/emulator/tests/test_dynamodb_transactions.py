"""DynamoDB: transactions and table-key Query, patched and plain moto."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from emulator_testlib import client


@pytest.mark.parametrize("mode", ["patched", "plain"])
def test_transactions_commit_and_roll_back_like_moto(mode, request):
    url = request.getfixturevalue(mode)
    ddb = client(url, "dynamodb")
    name = f"tx-{mode}"
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                {"AttributeName": "sk", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "S"}])
    key = {"pk": {"S": "a"}, "sk": {"S": "1"}}
    ddb.put_item(TableName=name, Item={**key, "v": {"N": "1"}, "tags": {"L": [{"S": "x"}]}})
    # An in-place update followed by a failing check: nothing may change.
    with pytest.raises(ClientError) as err:
        ddb.transact_write_items(TransactItems=[
            {"Update": {"TableName": name, "Key": key,
                        "UpdateExpression": "SET v = :n, tags = list_append(tags, :t)",
                        "ExpressionAttributeValues": {":n": {"N": "2"}, ":t": {"L": [{"S": "y"}]}}}},
            {"Put": {"TableName": name, "Item": {"pk": {"S": "b"}, "sk": {"S": "1"}}}},
            {"ConditionCheck": {"TableName": name, "Key": {"pk": {"S": "missing"}, "sk": {"S": "1"}},
                                "ConditionExpression": "attribute_exists(pk)"}},
        ])
    assert err.value.response["Error"]["Code"] == "TransactionCanceledException"
    item = ddb.get_item(TableName=name, Key=key)["Item"]
    assert item["v"] == {"N": "1"} and item["tags"] == {"L": [{"S": "x"}]}
    assert "Item" not in ddb.get_item(TableName=name, Key={"pk": {"S": "b"}, "sk": {"S": "1"}})
    # And a transaction that passes applies every action.
    ddb.transact_write_items(TransactItems=[
        {"Update": {"TableName": name, "Key": key, "UpdateExpression": "SET v = :n",
                    "ExpressionAttributeValues": {":n": {"N": "3"}}}},
        {"Put": {"TableName": name, "Item": {"pk": {"S": "b"}, "sk": {"S": "1"}}}},
        {"ConditionCheck": {"TableName": name, "Key": {"pk": {"S": "b"}, "sk": {"S": "0"}},
                            "ConditionExpression": "attribute_not_exists(pk)"}},
    ])
    assert ddb.get_item(TableName=name, Key=key)["Item"]["v"] == {"N": "3"}
    assert "Item" in ddb.get_item(TableName=name, Key={"pk": {"S": "b"}, "sk": {"S": "1"}})
    # A Query on the key reads its partition only, in range-key order.
    for sk in ["3", "2", "0"]:
        ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "sk": {"S": sk}})
    out = ddb.query(TableName=name, KeyConditionExpression="pk = :p",
                    ExpressionAttributeValues={":p": {"S": "a"}}, ScanIndexForward=False, Limit=3)
    assert [i["sk"]["S"] for i in out["Items"]] == ["3", "2", "1"]
    assert out["LastEvaluatedKey"] == {"pk": {"S": "a"}, "sk": {"S": "1"}}
    out = ddb.query(TableName=name, KeyConditionExpression="pk = :p AND sk > :s",
                    ExpressionAttributeValues={":p": {"S": "a"}, ":s": {"S": "0"}},
                    ExclusiveStartKey={"pk": {"S": "a"}, "sk": {"S": "1"}})
    assert [i["sk"]["S"] for i in out["Items"]] == ["2", "3"]
    assert ddb.query(TableName=name, KeyConditionExpression="pk = :p",
                     ExpressionAttributeValues={":p": {"S": "nobody"}})["Items"] == []


def test_transaction_cost_does_not_grow_with_the_table(patched):
    ddb = client(patched, "dynamodb")
    ddb.create_table(TableName="big", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    def timed_transactions(n: int) -> float:
        start = time.perf_counter()
        for i in range(n):
            ddb.transact_write_items(TransactItems=[
                {"Put": {"TableName": "big", "Item": {"pk": {"S": f"tx-{i}"}}}}])
        return (time.perf_counter() - start) / n
    small = timed_transactions(20)
    for chunk in range(0, 5000, 25):
        ddb.batch_write_item(RequestItems={"big": [
            {"PutRequest": {"Item": {"pk": {"S": f"k{j}"}, "pad": {"S": "x" * 100}}}}
            for j in range(chunk, chunk + 25)]})
    large = timed_transactions(20)
    # moto's full-table copy made this ~50x slower at 5,000 items.
    assert large < small * 5 + 0.01, (small, large)



def _ddb_table(ddb, name):
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                {"AttributeName": "sk", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "S"}])


def _key(pk, sk="x"):
    return {"pk": {"S": pk}, "sk": {"S": sk}}


@pytest.mark.parametrize("mode", ["patched", "plain"])
def test_cancelled_transaction_leaves_every_item_as_it_was(mode, request):
    url = request.getfixturevalue(mode)
    ddb = client(url, "dynamodb")
    t, t2 = f"cancel-{mode}", f"cancel2-{mode}"
    _ddb_table(ddb, t)
    _ddb_table(ddb, t2)
    for pk in ("kept", "updated", "deleted", "guard"):
        ddb.put_item(TableName=t, Item={**_key(pk), "v": {"N": "1"}, "b": {"B": b"\x00\xff"}})
    items = [
        {"Put": {"TableName": t, "Item": {**_key("new"), "v": {"N": "9"}}}},
        {"Put": {"TableName": t2, "Item": {**_key("other"), "v": {"N": "9"}}}},
        {"Update": {"TableName": t, "Key": _key("updated"), "UpdateExpression": "SET v = :v",
                    "ExpressionAttributeValues": {":v": {"N": "2"}}}},
        {"Delete": {"TableName": t, "Key": _key("deleted")}},
        # Fails: the other writes must be undone, in both tables.
        {"ConditionCheck": {"TableName": t, "Key": _key("guard"),
                            "ConditionExpression": "attribute_not_exists(pk)"}},
    ]
    with pytest.raises(ClientError) as err:
        ddb.transact_write_items(TransactItems=items)
    assert err.value.response["Error"]["Code"] == "TransactionCanceledException"
    scan = sorted((i["pk"]["S"], i["v"]["N"], bytes(i["b"]["B"])) for i in ddb.scan(TableName=t)["Items"])
    assert scan == [("deleted", "1", b"\x00\xff"), ("guard", "1", b"\x00\xff"),
                    ("kept", "1", b"\x00\xff"), ("updated", "1", b"\x00\xff")]
    assert ddb.scan(TableName=t2)["Items"] == []

    # Without the failing check the same writes all apply.
    ddb.transact_write_items(TransactItems=items[:4])
    assert sorted(i["pk"]["S"] for i in ddb.scan(TableName=t)["Items"]) == ["guard", "kept", "new", "updated"]
    assert ddb.get_item(TableName=t, Key=_key("updated"))["Item"]["v"] == {"N": "2"}
    assert len(ddb.scan(TableName=t2)["Items"]) == 1
    # A transaction naming one item twice is refused and changes nothing.
    with pytest.raises(ClientError):
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": t, "Item": {**_key("twice"), "v": {"N": "1"}}}},
            {"Delete": {"TableName": t, "Key": _key("twice")}},
        ])
    assert ddb.get_item(TableName=t, Key=_key("twice")).get("Item") is None
