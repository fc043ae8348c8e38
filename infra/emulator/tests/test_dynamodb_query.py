"""DynamoDB Query on GSIs and LSIs: the indexed patch (and the fast JSON
renderer) answers exactly like plain moto (every page: Items, Count,
ScannedCount, LastEvaluatedKey), agrees with a full Scan filtered by hand,
and stays right after every kind of write that moves an item to another
index key."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from botocore.exceptions import ClientError

from emulator_testlib import client

TABLE = "gsi"
TOPICS = ["big", "small", "one", "none-such"]


def create_table(ddb, name=TABLE):
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in
                              [("pk", "S"), ("sk", "S"), ("topic", "S"), ("created", "N"),
                               ("owner", "S"), ("label", "S")]],
        GlobalSecondaryIndexes=[
            {"IndexName": "byTopic", "Projection": {"ProjectionType": "ALL"},
             "KeySchema": [{"AttributeName": "topic", "KeyType": "HASH"},
                           {"AttributeName": "created", "KeyType": "RANGE"}]},
            {"IndexName": "byTopicKeys", "Projection": {"ProjectionType": "KEYS_ONLY"},
             "KeySchema": [{"AttributeName": "topic", "KeyType": "HASH"}]},
            {"IndexName": "byOwner",
             "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["size"]},
             "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"},
                           {"AttributeName": "label", "KeyType": "RANGE"}]},
        ],
        LocalSecondaryIndexes=[
            {"IndexName": "byCreated", "Projection": {"ProjectionType": "ALL"},
             "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                           {"AttributeName": "created", "KeyType": "RANGE"}]},
        ],
    )


def dataset(n=240, seed=7):
    """Skewed topics, items without the GSI hash or range key, ties on the GSI
    range key (also "10" vs "10.0": equal numbers), several items per pk."""
    rnd = random.Random(seed)
    items = []
    for i in range(n):
        item = {"pk": {"S": f"p{i % 40:02d}"}, "sk": {"S": f"s{i:04d}"},
                "size": {"N": str(rnd.randint(0, 100))}}
        r = rnd.random()
        if r < 0.6:
            item["topic"] = {"S": "big"}
        elif r < 0.8:
            item["topic"] = {"S": "small"}
        elif r < 0.82:
            item["topic"] = {"S": "one"}
        if rnd.random() < 0.85:
            c = rnd.randint(0, 30)
            item["created"] = {"N": f"{c}.0" if rnd.random() < 0.1 else str(c)}
        if rnd.random() < 0.7:
            item["owner"] = {"S": rnd.choice(["ann", "bob"])}
            item["label"] = {"S": rnd.choice(["alpha", "beta", "betamax", "gamma"])}
        if rnd.random() < 0.05:
            item["blob"] = {"B": bytes([i % 256, 0, 255])}  # answered by moto's serializer
        items.append(item)
    return items


def load(ddb, items, name=TABLE):
    for i in range(0, len(items), 25):
        ddb.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": it}}
                                                  for it in items[i:i + 25]]})


def all_pages(ddb, **kw):
    pages = []
    while True:
        out = ddb.query(**kw)
        out.pop("ResponseMetadata", None)
        pages.append(out)
        if "LastEvaluatedKey" not in out:
            return pages
        kw = {**kw, "ExclusiveStartKey": out["LastEvaluatedKey"]}
        assert len(pages) < 1000


def query_cases():
    """(name, Query kwargs without TableName) covering every index and key,
    order, Limit, range-key conditions, filters, projections and Select."""
    cases = []
    for topic in TOPICS:
        v = {":t": {"S": topic}}
        for fwd in (True, False):
            for limit in (None, 7, 50) if topic == "big" else (None, 1, 7, 50):
                lim = {} if limit is None else {"Limit": limit}
                cases.append((f"byTopic {topic} fwd={fwd} limit={limit}",
                              dict(IndexName="byTopic", KeyConditionExpression="topic = :t",
                                   ExpressionAttributeValues=v, ScanIndexForward=fwd, **lim)))
            cases.append((f"byTopicKeys {topic} fwd={fwd}",
                          dict(IndexName="byTopicKeys", KeyConditionExpression="topic = :t",
                               ExpressionAttributeValues=v, ScanIndexForward=fwd, Limit=9)))
        cases.append((f"byTopic {topic} range between, filter",
                      dict(IndexName="byTopic",
                           KeyConditionExpression="topic = :t AND created BETWEEN :a AND :b",
                           FilterExpression="#z > :s", ExpressionAttributeNames={"#z": "size"},
                           ExpressionAttributeValues={**v, ":a": {"N": "5"}, ":b": {"N": "20"},
                                                      ":s": {"N": "40"}}, Limit=6)))
        cases.append((f"byTopic {topic} range >=, projection, desc",
                      dict(IndexName="byTopic", KeyConditionExpression="topic = :t AND created >= :a",
                           ProjectionExpression="pk, sk, created",
                           ExpressionAttributeValues={**v, ":a": {"N": "10"}},
                           ScanIndexForward=False, Limit=5)))
        cases.append((f"byTopic {topic} filter only, Select COUNT",
                      dict(IndexName="byTopic", KeyConditionExpression="topic = :t",
                           FilterExpression="attribute_exists(#o)",
                           ExpressionAttributeNames={"#o": "owner"},
                           ExpressionAttributeValues=v, Select="COUNT", Limit=11)))
        cases.append((f"byTopic {topic} legacy KeyConditions",
                      dict(IndexName="byTopic",
                           KeyConditions={"topic": {"ComparisonOperator": "EQ",
                                                    "AttributeValueList": [{"S": topic}]}},
                           Limit=13)))
    for owner in ("ann", "bob", "nobody"):
        v = {":o": {"S": owner}}
        cases.append((f"byOwner {owner}", dict(IndexName="byOwner", KeyConditionExpression="#o = :o",
                                               ExpressionAttributeNames={"#o": "owner"},
                                               ExpressionAttributeValues=v, Limit=8)))
        cases.append((f"byOwner {owner} begins_with desc",
                      dict(IndexName="byOwner",
                           KeyConditionExpression="#o = :o AND begins_with(label, :l)",
                           ExpressionAttributeNames={"#o": "owner"},
                           ExpressionAttributeValues={**v, ":l": {"S": "beta"}},
                           ScanIndexForward=False, Limit=4)))
    for pk in ("p00", "p07", "p99"):
        v = {":p": {"S": pk}}
        for fwd in (True, False):
            cases.append((f"LSI byCreated {pk} fwd={fwd}",
                          dict(IndexName="byCreated", KeyConditionExpression="pk = :p",
                               ExpressionAttributeValues=v, ScanIndexForward=fwd, Limit=2)))
        cases.append((f"LSI byCreated {pk} created <",
                      dict(IndexName="byCreated", KeyConditionExpression="pk = :p AND created < :c",
                           ExpressionAttributeValues={**v, ":c": {"N": "15"}})))
    return cases


CASES = query_cases()


@pytest.fixture(scope="module")
def both(patched, plain):
    items = dataset()
    for url in (patched, plain):
        ddb = client(url, "dynamodb")
        create_table(ddb)
        load(ddb, items)
    return client(patched, "dynamodb"), client(plain, "dynamodb")


def assert_same(patched_ddb, plain_ddb, table=TABLE, cases=CASES):
    for name, kw in cases:
        want = all_pages(plain_ddb, TableName=table, **kw)
        got = all_pages(patched_ddb, TableName=table, **kw)
        assert got == want, name


def scan(ddb, table=TABLE):
    items = []
    kw = {"TableName": table}
    while True:
        out = ddb.scan(**kw)
        items += out["Items"]
        if "LastEvaluatedKey" not in out:
            return items
        kw["ExclusiveStartKey"] = out["LastEvaluatedKey"]


def scan_expected(items, topic):
    """byTopic by hand: the Scan's items, filtered and sorted like the index."""
    hits = [i for i in items if i.get("topic") == {"S": topic} and "created" in i]
    return sorted(hits, key=lambda i: (Decimal(i["created"]["N"]), i["pk"]["S"], i["sk"]["S"]))


def assert_matches_scan(ddb, topics=TOPICS, table=TABLE):
    items = scan(ddb, table)
    for topic in topics:
        pages = all_pages(ddb, TableName=table, IndexName="byTopic",
                          KeyConditionExpression="topic = :t",
                          ExpressionAttributeValues={":t": {"S": topic}}, Limit=17)
        got = [i for p in pages for i in p["Items"]]
        assert got == scan_expected(items, topic), topic


def test_index_queries_identical_to_unpatched_moto(both):
    patched_ddb, plain_ddb = both
    assert_same(patched_ddb, plain_ddb)


def test_index_queries_agree_with_a_filtered_scan(both):
    patched_ddb, _ = both
    assert_matches_scan(patched_ddb)
    # Pages really are pages: every item exactly once, in order.
    pages = all_pages(patched_ddb, TableName=TABLE, IndexName="byTopic",
                      KeyConditionExpression="topic = :t",
                      ExpressionAttributeValues={":t": {"S": "big"}}, Limit=7)
    assert len(pages) > 10 and all(len(p["Items"]) <= 7 for p in pages)


def test_index_errors_unchanged(both):
    def code(ddb, **kw):
        with pytest.raises(ClientError) as err:
            ddb.query(TableName=TABLE, KeyConditionExpression="topic = :t",
                      ExpressionAttributeValues={":t": {"S": "big"}}, **kw)
        return err.value.response["Error"]["Code"]

    for kw in ({"IndexName": "nope"}, {"IndexName": "byTopic", "ConsistentRead": True}):
        codes = [code(ddb, **kw) for ddb in both]
        assert codes[0] == codes[1], (kw, codes)


def _key(i):
    return {"pk": {"S": f"p{i % 40:02d}"}, "sk": {"S": f"s{i:04d}"}}


# Writes that move items between index keys, applied to both servers in turn.
# Each is (name, function(ddb)); some are expected to fail (cancelled
# transactions, failed conditions), which must leave the index as it was.
def _w_put_moves(ddb):
    ddb.put_item(TableName=TABLE, Item={**_key(0), "topic": {"S": "small"}, "created": {"N": "3"}})
    ddb.put_item(TableName=TABLE, Item={**_key(1), "size": {"N": "1"}})  # drops topic + created
    ddb.put_item(TableName=TABLE, Item={"pk": {"S": "new"}, "sk": {"S": "1"},
                                        "topic": {"S": "one"}, "created": {"N": "7"}})


def _w_update_moves(ddb):
    for i, expr, vals in [
        (2, "SET topic = :t", {":t": {"S": "one"}}),
        (3, "REMOVE topic", None),
        (4, "SET created = :c", {":c": {"N": "99"}}),
        (5, "SET topic = :t, created = :c", {":t": {"S": "big"}, ":c": {"N": "-1"}}),
        (6, "SET #z = #z + :one", {":one": {"N": "1"}}),
        (6000, "SET topic = :t, created = :c", {":t": {"S": "small"}, ":c": {"N": "1"}}),  # upsert
    ]:
        kw = {"ExpressionAttributeValues": vals} if vals else {}
        if "#z" in expr:
            kw["ExpressionAttributeNames"] = {"#z": "size"}
        ddb.update_item(TableName=TABLE, Key=_key(i), UpdateExpression=expr, **kw)


def _w_update_legacy(ddb):
    ddb.update_item(TableName=TABLE, Key=_key(7),
                    AttributeUpdates={"topic": {"Action": "PUT", "Value": {"S": "small"}}})
    ddb.update_item(TableName=TABLE, Key=_key(8), AttributeUpdates={"topic": {"Action": "DELETE"}})


def _w_failed_condition(ddb):
    with pytest.raises(ClientError):
        ddb.update_item(TableName=TABLE, Key=_key(9), UpdateExpression="SET topic = :t",
                        ConditionExpression="attribute_not_exists(pk)",
                        ExpressionAttributeValues={":t": {"S": "one"}})


def _w_delete(ddb):
    for i in (10, 11, 12):
        ddb.delete_item(TableName=TABLE, Key=_key(i))


def _w_transaction(ddb):
    ddb.transact_write_items(TransactItems=[
        {"Update": {"TableName": TABLE, "Key": _key(13), "UpdateExpression": "SET topic = :t",
                    "ExpressionAttributeValues": {":t": {"S": "one"}}}},
        {"Put": {"TableName": TABLE, "Item": {**_key(14), "topic": {"S": "small"},
                                               "created": {"N": "2"}}}},
        {"Delete": {"TableName": TABLE, "Key": _key(15)}},
        {"ConditionCheck": {"TableName": TABLE, "Key": _key(16),
                            "ConditionExpression": "attribute_exists(pk)"}},
    ])


def _w_cancelled_transaction(ddb):
    # Changes index keys, then fails: everything is rolled back.
    with pytest.raises(ClientError) as err:
        ddb.transact_write_items(TransactItems=[
            {"Update": {"TableName": TABLE, "Key": _key(17), "UpdateExpression": "SET topic = :t",
                        "ExpressionAttributeValues": {":t": {"S": "one"}}}},
            {"Put": {"TableName": TABLE, "Item": {**_key(18), "topic": {"S": "one"},
                                                   "created": {"N": "4"}}}},
            {"Delete": {"TableName": TABLE, "Key": _key(19)}},
            {"ConditionCheck": {"TableName": TABLE, "Key": _key(20),
                                "ConditionExpression": "attribute_not_exists(pk)"}},
        ])
    assert err.value.response["Error"]["Code"] == "TransactionCanceledException"


def _w_batch(ddb):
    ddb.batch_write_item(RequestItems={TABLE: [
        {"PutRequest": {"Item": {**_key(21), "topic": {"S": "one"}, "created": {"N": "5"}}}},
        {"PutRequest": {"Item": {**_key(22)}}},
        {"DeleteRequest": {"Key": _key(23)}},
        {"PutRequest": {"Item": {"pk": {"S": "batch"}, "sk": {"S": "x"}, "topic": {"S": "big"},
                                 "created": {"N": "12"}}}},
    ]})


def _w_partiql(ddb):
    ddb.execute_statement(Statement=f"UPDATE \"{TABLE}\" SET topic='one' WHERE pk='p24' AND sk='s0024'")
    ddb.execute_statement(Statement=f"INSERT INTO \"{TABLE}\" VALUE "
                                    "{'pk': 'pq', 'sk': '1', 'topic': 'one', 'created': 8}")
    ddb.execute_statement(Statement=f"DELETE FROM \"{TABLE}\" WHERE pk='p25' AND sk='s0025'")


WRITES = [_w_put_moves, _w_update_moves, _w_update_legacy, _w_failed_condition, _w_delete,
          _w_transaction, _w_cancelled_transaction, _w_batch, _w_partiql]


def test_index_follows_every_kind_of_write(patched, plain):
    name = "gsi-writes"
    items = dataset(n=120, seed=11)
    dbs = [client(patched, "dynamodb"), client(plain, "dynamodb")]
    for ddb in dbs:
        create_table(ddb, name)
        load(ddb, items, name)
    global TABLE
    saved, TABLE = TABLE, name
    try:
        few = [c for c in CASES if "fwd=True limit=7" in c[0]
               or c[0].startswith("byTopicKeys") and "fwd=False" in c[0]
               or c[0].startswith("LSI byCreated") and "fwd=True" in c[0]]
        assert_same(*dbs, table=name, cases=few)  # the index exists before the writes
        for write in WRITES:
            for ddb in dbs:
                write(ddb)
            assert_same(*dbs, table=name, cases=few)
            assert_matches_scan(dbs[0], table=name)
        assert_same(*dbs, table=name)  # and every case at the end
    finally:
        TABLE = saved


def test_index_query_after_table_recreated(patched):
    ddb = client(patched, "dynamodb")
    name = "gsi-recreated"
    create_table(ddb, name)
    load(ddb, dataset(n=30), name)
    assert_matches_scan(ddb, table=name)
    ddb.delete_table(TableName=name)
    create_table(ddb, name)
    assert all_pages(ddb, TableName=name, IndexName="byTopic", KeyConditionExpression="topic = :t",
                     ExpressionAttributeValues={":t": {"S": "big"}})[0]["Items"] == []
    load(ddb, dataset(n=30, seed=3), name)
    assert_matches_scan(ddb, table=name)
