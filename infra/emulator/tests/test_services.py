"""Other services answer through the same endpoint."""

from __future__ import annotations

import json
import urllib.request

from emulator_testlib import client


# --------------------------------------------------------------------------
# other services through the same endpoint


def test_other_services_unchanged(patched):
    ddb = client(patched, "dynamodb")
    ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    ddb.put_item(TableName="t", Item={"pk": {"S": "a"}, "v": {"N": "1"}})
    assert ddb.get_item(TableName="t", Key={"pk": {"S": "a"}})["Item"]["v"] == {"N": "1"}

    sqs = client(patched, "sqs")
    qurl = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(QueueUrl=qurl, MessageBody="hello")
    assert sqs.receive_message(QueueUrl=qurl)["Messages"][0]["Body"] == "hello"

    ev = client(patched, "events")
    ev.put_rule(Name="daily", ScheduleExpression="rate(1 day)")
    assert ev.list_rules()["Rules"][0]["Name"] == "daily"
    assert ev.put_events(Entries=[{"Source": "finops", "DetailType": "t", "Detail": "{}"}])["FailedEntryCount"] == 0

    injected = {"results": [{"ResultsByTime": [{
        "TimePeriod": {"Start": "2024-03-01", "End": "2024-03-02"},
        "Total": {"UnblendedCost": {"Amount": "1.25", "Unit": "USD"}},
        "Groups": [], "Estimated": False}]}]}
    req = urllib.request.Request(patched + "/moto-api/static/ce/cost-and-usage-results",
                                 data=json.dumps(injected).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    assert urllib.request.urlopen(req).status == 201
    ce = client(patched, "ce")
    out = ce.get_cost_and_usage(TimePeriod={"Start": "2024-03-01", "End": "2024-03-02"},
                                Granularity="DAILY", Metrics=["UnblendedCost"])
    assert out["ResultsByTime"][0]["Total"]["UnblendedCost"]["Amount"] == "1.25"
