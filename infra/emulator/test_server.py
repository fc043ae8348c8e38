"""Tests for infra/emulator/server.py (run: infra/.venv/bin/python -m pytest -q infra/emulator/test_server.py).

Each test talks to real server.py subprocesses over HTTP with boto3.
CloudWatch clients speak the Query protocol (form-encoded POST, XML answers)
like the Rust aws-sdk-cloudwatch 1.99.0; boto3 itself would pick awsJson1_0,
so its model is re-pointed at Query (and some tests run both).
"""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import json
import math
import os
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

import boto3
import botocore
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

SERVER = Path(__file__).with_name("server.py")
T0 = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
NS = "FinOps/Test"


# --------------------------------------------------------------------------
# helpers


def start_server(*extra: str, parent_pid: int | None = None) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, str(SERVER), "--host", "127.0.0.1", "--port", "0",
           "--parent-pid", str(parent_pid or os.getpid()), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline().strip() if ready else ""
    if not line.startswith("READY http://127.0.0.1:"):
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return proc, line.split(" ", 1)[1]


def stop_server(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


_QUERY_MODEL_DIR: list[str] = []


def _query_model_dir() -> str:
    """A botocore data dir whose CloudWatch model speaks only Query."""
    if not _QUERY_MODEL_DIR:
        import atexit
        import shutil
        import tempfile

        src = Path(botocore.__file__).parent / "data/cloudwatch/2010-08-01/service-2.json.gz"
        with gzip.open(src) as f:
            model = json.load(f)
        model["metadata"]["protocol"] = "query"
        model["metadata"]["protocols"] = ["query"]
        root = Path(tempfile.mkdtemp(prefix="cw-query-model-"))
        atexit.register(shutil.rmtree, root, True)
        (root / "cloudwatch/2010-08-01").mkdir(parents=True)
        (root / "cloudwatch/2010-08-01/service-2.json").write_text(json.dumps(model))
        _QUERY_MODEL_DIR.append(str(root))
    return _QUERY_MODEL_DIR[0]


@functools.lru_cache(maxsize=None)
def client(url: str, service: str, protocol: str = "query"):
    bs = botocore.session.get_session()
    if service == "cloudwatch" and protocol == "query":
        bs.get_component("data_loader").search_paths.insert(0, _query_model_dir())
    c = boto3.session.Session(botocore_session=bs).client(
        service, endpoint_url=url, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
    )
    if service == "cloudwatch":
        # check what goes on the wire, not what the model claims
        want = "application/x-www-form-urlencoded" if protocol == "query" else "application/x-amz-json-1.0"

        def check(request, **_):
            assert request.headers["Content-Type"].decode().startswith(want)

        c.meta.events.register("before-send", check)
    return c


def stat_query(qid, name, dims, period, stat, unit=None, **extra):
    ms = {"Metric": {"Namespace": NS, "MetricName": name,
                     "Dimensions": [{"Name": k, "Value": v} for k, v in dims]},
          "Period": period, "Stat": stat}
    if unit:
        ms["Unit"] = unit
    return {"Id": qid, "MetricStat": ms, **extra}


def all_pages(cw, **kwargs):
    """Every page of one GetMetricData call."""
    pages = []
    token = None
    while True:
        args = dict(kwargs)
        if token:
            args["NextToken"] = token
        resp = cw.get_metric_data(**args)
        pages.append(resp)
        token = resp.get("NextToken")
        if not token:
            return pages


@pytest.fixture(scope="module")
def patched():
    proc, url = start_server()
    yield url
    assert stop_server(proc) == 0


@pytest.fixture(scope="module")
def plain():
    proc, url = start_server("--no-patch")
    yield url
    stop_server(proc)


# --------------------------------------------------------------------------
# dataset for the statistics comparison

# (metric, dims, seconds after T0, payload) - inserted in this order, some
# points deliberately out of time order and some in the same second.
SMALL = [
    ("CPU", [("InstanceId", "i-1")], 5, {"Value": 10.0}),
    ("CPU", [("InstanceId", "i-1")], 65, {"Value": 20.5}),
    ("CPU", [("InstanceId", "i-1")], 30, {"Value": 0.1}),  # out of order
    ("CPU", [("InstanceId", "i-1")], 30, {"Values": [0.2, 7.0], "Counts": [3, 2]}),
    ("CPU", [("InstanceId", "i-1")], 400, {"StatisticValues": {"SampleCount": 4, "Sum": 10.0, "Minimum": 1.0, "Maximum": 4.0}}),
    ("CPU", [("InstanceId", "i-1")], 3700, {"Value": 99.0}),
    ("CPU", [("InstanceId", "i-1")], 125, {"Value": 3.3, "Unit": "Percent"}),
    ("CPU", [("InstanceId", "i-2")], 5, {"Value": 1.0}),
    ("CPU", [("InstanceId", "i-2")], 5000, {"Values": [5.0, 6.0, 8.0]}),
    ("CPU", [("InstanceId", "i-2")], 7199, {"Value": 2.25}),
    ("Net", [("InstanceId", "i-1"), ("Dir", "in")], 10, {"Value": 1e6}),
    ("Net", [("InstanceId", "i-1"), ("Dir", "in")], 70, {"Value": 3e6}),
    ("Net", [("InstanceId", "i-1"), ("Dir", "in")], 11, {"Value": 2.5e6}),
]


def load(cw, rows):
    for name, dims, secs, payload in rows:
        datum = {"MetricName": name, "Timestamp": T0 + dt.timedelta(seconds=secs),
                 "Dimensions": [{"Name": k, "Value": v} for k, v in dims]}
        datum.update(payload)
        cw.put_metric_data(Namespace=NS, MetricData=[datum])


@pytest.fixture(scope="module")
def loaded(patched, plain):
    load(client(patched, "cloudwatch"), SMALL)
    load(client(plain, "cloudwatch"), SMALL)
    return patched, plain


STATS = ["Average", "Sum", "Minimum", "Maximum", "SampleCount"]
SERIES = [("CPU", [("InstanceId", "i-1")]), ("CPU", [("InstanceId", "i-2")]),
          ("Net", [("InstanceId", "i-1"), ("Dir", "in")])]


@pytest.mark.parametrize("protocol", ["query", "json"])
@pytest.mark.parametrize("scan_by", ["TimestampAscending", "TimestampDescending"])
@pytest.mark.parametrize("start_offset,period", [(0, 60), (17.25, 60), (0, 300), (-3, 3600), (0, 86400)])
def test_statistics_identical_to_unpatched_moto(loaded, scan_by, start_offset, period, protocol):
    patched, plain = loaded
    queries = []
    for si, (name, dims) in enumerate(SERIES):
        for st in STATS:
            queries.append(stat_query(f"q{si}{st.lower()}", name, dims, period, st))
    queries.append(stat_query("unit", "CPU", [("InstanceId", "i-1")], period, "Sum", unit="Percent"))
    args = dict(StartTime=T0 + dt.timedelta(seconds=start_offset),
                EndTime=T0 + dt.timedelta(seconds=7200), ScanBy=scan_by,
                MetricDataQueries=queries)
    want = client(plain, "cloudwatch", protocol).get_metric_data(**args)["MetricDataResults"]
    got = client(patched, "cloudwatch", protocol).get_metric_data(**args)["MetricDataResults"]
    assert got == want
    assert all(r["Values"] for r in got)  # every query found its series


def test_statistics_independent_expectation(patched, loaded):
    # Independent computation for i-1 CPU, 60 s buckets aligned on T0.
    samples = defaultdict(list)  # bucket -> raw samples
    agg = defaultdict(list)
    for name, dims, secs, p in SMALL:
        if name != "CPU" or dims != [("InstanceId", "i-1")]:
            continue
        b = secs // 60
        if "Value" in p:
            samples[b].append(p["Value"])
        elif "Values" in p:
            for v, c in zip(p["Values"], p.get("Counts", [1] * len(p["Values"]))):
                samples[b].extend([v] * c)
        else:
            agg[b].append(p["StatisticValues"])
    buckets = sorted(set(samples) | set(agg))
    cw = client(patched, "cloudwatch")
    resp = cw.get_metric_data(
        StartTime=T0, EndTime=T0 + dt.timedelta(hours=2), ScanBy="TimestampAscending",
        MetricDataQueries=[stat_query(s.lower(), "CPU", [("InstanceId", "i-1")], 60, s) for s in STATS])
    res = {r["Id"]: r for r in resp["MetricDataResults"]}
    for r in res.values():
        assert [t.astimezone(dt.timezone.utc) for t in r["Timestamps"]] == [T0 + dt.timedelta(minutes=b) for b in buckets]
        assert r["StatusCode"] == "Complete"
    for i, b in enumerate(buckets):
        s, a = samples[b], agg[b]
        count = len(s) + sum(x["SampleCount"] for x in a)
        total = sum(s) + sum(x["Sum"] for x in a)
        assert res["samplecount"]["Values"][i] == count
        assert res["sum"]["Values"][i] == pytest.approx(total)
        assert res["average"]["Values"][i] == pytest.approx(total / count)
        assert res["minimum"]["Values"][i] == min(s + [x["Minimum"] for x in a])
        assert res["maximum"]["Values"][i] == max(s + [x["Maximum"] for x in a])
    # bucket 0 holds 10.0, 0.1, 0.2 x3, 7.0 x2 -> Counts are honoured
    assert res["samplecount"]["Values"][0] == 7


def test_dimension_match_is_exact(patched, loaded):
    cw = client(patched, "cloudwatch")
    resp = cw.get_metric_data(
        StartTime=T0, EndTime=T0 + dt.timedelta(hours=2),
        MetricDataQueries=[
            stat_query("none", "CPU", [], 7200, "SampleCount"),  # no such series
            stat_query("rev", "Net", [("Dir", "in"), ("InstanceId", "i-1")], 7200, "SampleCount"),
            stat_query("part", "Net", [("InstanceId", "i-1")], 7200, "SampleCount"),
        ])
    res = {r["Id"]: r["Values"] for r in resp["MetricDataResults"]}
    assert res == {"none": [], "rev": [3.0], "part": []}


# --------------------------------------------------------------------------
# percentiles


def test_percentiles(patched):
    cw = client(patched, "cloudwatch")
    ts = T0 + dt.timedelta(days=1)
    dims = [{"Name": "Case", "Value": "pct"}]
    # 1..100 once each, pushed as Values/Counts arrays
    cw.put_metric_data(Namespace=NS, MetricData=[
        {"MetricName": "Lat", "Dimensions": dims, "Timestamp": ts,
         "Values": [float(v) for v in range(1, 101)], "Counts": [1.0] * 100}])
    # skewed counts: 1 once, 2 once, 3 98 times
    skew = [{"Name": "Case", "Value": "skew"}]
    cw.put_metric_data(Namespace=NS, MetricData=[
        {"MetricName": "Lat", "Dimensions": skew, "Timestamp": ts,
         "Values": [3.0, 1.0, 2.0], "Counts": [98.0, 1.0, 1.0]}])
    # statistic sets: a run of one value counts, a spread one cannot
    cw.put_metric_data(Namespace=NS, MetricData=[
        {"MetricName": "Lat", "Dimensions": [{"Name": "Case", "Value": "set"}], "Timestamp": ts,
         "StatisticValues": {"SampleCount": 9, "Sum": 45, "Minimum": 5, "Maximum": 5}},
        {"MetricName": "Lat", "Dimensions": [{"Name": "Case", "Value": "set"}], "Timestamp": ts,
         "Value": 100.0},
        {"MetricName": "Lat", "Dimensions": [{"Name": "Case", "Value": "spread"}], "Timestamp": ts,
         "StatisticValues": {"SampleCount": 2, "Sum": 3, "Minimum": 1, "Maximum": 2}},
        {"MetricName": "Lat", "Dimensions": [{"Name": "Case", "Value": "neg"}], "Timestamp": ts,
         "Values": [-1.0, 5.0]},
    ])

    def q(case, stat):
        return {"Id": f"{case}_{stat.replace('.', '_')}", "MetricStat": {
            "Metric": {"Namespace": NS, "MetricName": "Lat", "Dimensions": [{"Name": "Case", "Value": case}]},
            "Period": 3600, "Stat": stat}}

    cases = {
        ("pct", "p0"): 1, ("pct", "p1"): 1, ("pct", "p50"): 50, ("pct", "p90"): 90,
        ("pct", "p95"): 95, ("pct", "p99"): 99, ("pct", "p99.5"): 100, ("pct", "p99.9"): 100,
        ("pct", "p100"): 100, ("pct", "p10.5"): 11,
        ("skew", "p1"): 1, ("skew", "p2"): 2, ("skew", "p3"): 3, ("skew", "p50"): 3,
        ("set", "p50"): 5, ("set", "p90"): 5, ("set", "p95"): 100,
        ("spread", "p50"): None, ("neg", "p50"): None,
    }
    resp = cw.get_metric_data(
        StartTime=ts, EndTime=ts + dt.timedelta(hours=1),
        MetricDataQueries=[q(c, s) for c, s in cases])
    got = {r["Id"]: r["Values"] for r in resp["MetricDataResults"]}
    for (c, s), want in cases.items():
        assert got[f"{c}_{s.replace('.', '_')}"] == ([] if want is None else [float(want)]), (c, s)

    with pytest.raises(ClientError) as err:
        cw.get_metric_data(StartTime=ts, EndTime=ts + dt.timedelta(hours=1),
                           MetricDataQueries=[q("pct", "tm90")])
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


# --------------------------------------------------------------------------
# pagination


@pytest.mark.parametrize("protocol", ["query", "json"])
def test_max_datapoints_pagination(patched, protocol):
    cw = client(patched, "cloudwatch", protocol)
    base = T0 + dt.timedelta(days=3 if protocol == "query" else 5)
    sizes = [50, 0, 13, 37, 1, 60]
    for i, n in enumerate(sizes):
        if n:
            cw.put_metric_data(Namespace=NS, MetricData=[
                {"MetricName": "Page", "Dimensions": [{"Name": "Q", "Value": str(i)}],
                 "Timestamp": base + dt.timedelta(minutes=m), "Value": float(i * 1000 + m)}
                for m in range(n)])
    queries = [stat_query(f"q{i}", "Page", [("Q", str(i))], 60, "Average") for i in range(len(sizes))]
    queries.append(stat_query("hidden", "Page", [("Q", "0")], 60, "Sum", ReturnData=False))
    for scan_by in ("TimestampAscending", "TimestampDescending"):
        args = dict(StartTime=base, EndTime=base + dt.timedelta(hours=2), ScanBy=scan_by,
                    MetricDataQueries=queries)
        full = cw.get_metric_data(**args)
        assert "NextToken" not in full
        want = {r["Id"]: list(zip(r["Timestamps"], r["Values"])) for r in full["MetricDataResults"]}
        assert [len(want[f"q{i}"]) for i in range(len(sizes))] == sizes
        assert "hidden" not in want

        for max_dp in (5, 37, 50, 161, 100_800):
            pages = all_pages(cw, MaxDatapoints=max_dp, **args)
            assert len(pages) == math.ceil(sum(sizes) / max_dp)
            got = defaultdict(list)
            for page in pages:
                results = page["MetricDataResults"]
                assert [r["Id"] for r in results] == [f"q{i}" for i in range(len(sizes))]
                assert sum(len(r["Values"]) for r in results) <= max_dp
                for r in results:
                    got[r["Id"]].extend(zip(r["Timestamps"], r["Values"]))
                    rest = len(want[r["Id"]]) - len(got[r["Id"]])
                    assert r["StatusCode"] == ("PartialData" if rest else "Complete")
            assert dict(got) == {k: v for k, v in want.items()}

    # a token only continues the request it came from
    first = cw.get_metric_data(MaxDatapoints=10, **args)
    other = dict(args, MetricDataQueries=queries[:2])
    with pytest.raises(ClientError) as err:
        cw.get_metric_data(NextToken=first["NextToken"], **other)
    assert err.value.response["Error"]["Code"] == "InvalidNextToken"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_more_than_500_queries_rejected(patched):
    cw = client(patched, "cloudwatch")
    qs = [stat_query(f"q{i}", "CPU", [("InstanceId", f"i-{i}")], 60, "Average") for i in range(501)]
    args = dict(StartTime=T0, EndTime=T0 + dt.timedelta(hours=1))
    with pytest.raises(ClientError) as err:
        cw.get_metric_data(MetricDataQueries=qs, **args)
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert "500" in err.value.response["Error"]["Message"]
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert len(cw.get_metric_data(MetricDataQueries=qs[:500], **args)["MetricDataResults"]) == 500


def test_list_metrics_lists_each_series_once(patched, loaded):
    cw = client(patched, "cloudwatch")
    metrics = cw.list_metrics(Namespace=NS, MetricName="Net")["Metrics"]
    assert metrics == [{"Namespace": NS, "MetricName": "Net",
                        "Dimensions": [{"Name": "InstanceId", "Value": "i-1"}, {"Name": "Dir", "Value": "in"}]}]
    cpu = cw.list_metrics(Namespace=NS, MetricName="CPU", Dimensions=[{"Name": "InstanceId"}])["Metrics"]
    assert sorted(m["Dimensions"][0]["Value"] for m in cpu) == ["i-1", "i-2"]


def test_query_xml_identical_to_moto_serializer():
    """The hand-written Query-protocol renderer emits moto's exact bytes."""
    import re

    sys.path.insert(0, str(SERVER.parent))
    try:
        from finops_emulator.cloudwatch_render import render_get_metric_data_xml
    finally:
        sys.path.remove(str(SERVER.parent))
    from moto.core.serialize import QuerySerializer, XFormedAttributePicker
    from moto.core.utils import get_service_model

    op = get_service_model("cloudwatch").operation_model("GetMetricData")
    cases = [
        ([], None),
        ([{"Id": "a", "Label": "x <&> y \"q\" 'z'",
           "Timestamps": [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, 0, 0, 0, 5)],
           "Values": [1.0, 2.5e-7, 1e16, 3, -0.0, 123456789.123456789, 50],
           "StatusCode": "Complete"},
          {"Id": "b", "Label": "", "Timestamps": [], "Values": [], "StatusCode": "PartialData"}],
         "fo1.abc"),
    ]
    for results, token in cases:
        ser = QuerySerializer(operation_model=op, pretty_print=False,
                              value_picker=XFormedAttributePicker())
        want = ser.serialize({"MetricDataResults": results, "NextToken": token})["body"]
        got = render_get_metric_data_xml(results, token)
        strip = lambda body: re.sub(r"<RequestId>.*</RequestId>", "", body)  # noqa: E731
        assert strip(got) == strip(want)


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


def test_reset_clears_the_index():
    proc, url = start_server()
    try:
        cw = client(url, "cloudwatch")
        load(cw, SMALL[:3])
        q = dict(StartTime=T0, EndTime=T0 + dt.timedelta(hours=1),
                 MetricDataQueries=[stat_query("a", "CPU", [("InstanceId", "i-1")], 3600, "SampleCount")])
        assert cw.get_metric_data(**q)["MetricDataResults"][0]["Values"] == [3.0]
        urllib.request.urlopen(urllib.request.Request(url + "/moto-api/reset", method="POST")).close()
        assert cw.get_metric_data(**q)["MetricDataResults"][0]["Values"] == []
        assert cw.list_metrics()["Metrics"] == []
        load(cw, SMALL[:1])
        assert cw.get_metric_data(**q)["MetricDataResults"][0]["Values"] == [1.0]
    finally:
        stop_server(proc)


# --------------------------------------------------------------------------
# bulk seeding (POST /_finops/cloudwatch/series)

SEED_PATH = "/_finops/cloudwatch/series"


def seed(url, series, query=""):
    """POST to the seeding endpoint; (HTTP status, decoded JSON answer)."""
    body = series if isinstance(series, bytes) else json.dumps({"series": series}).encode()
    req = urllib.request.Request(url + SEED_PATH + query, data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# (metric, dims, unit, start offset s, period s, values); None leaves a gap.
# Periods that do not divide the query period, a fractional start, repeated
# values and a second series on the same metric exercise bucketing, ordering
# and exact dimension matching.
BULK = [
    ("CPUUtilization", [("InstanceId", "i-b1")], "Percent", 0, 600,
     [1.5, 2.5, None, 97.25, 3.0, 3.0, 0.0, 42.0, None, 12.125, 55.5, 7.0, 8.0]),
    ("CPUUtilization", [("InstanceId", "i-b2")], None, 17.5, 1800, [10.0, 20.0, 30.0, 40.0, 50.0]),
    ("NetworkIn", [("InstanceId", "i-b1"), ("Dir", "in")], "Bytes", -60, 3600, [1e6, 2.5e6, 0.5]),
]


def put_equivalent(cw, rows):
    """The same points as BULK, through PutMetricData (one datum per point)."""
    for name, dims, unit, start, period, values in rows:
        data = []
        for i, v in enumerate(values):
            if v is None:
                continue
            d = {"MetricName": name, "Value": v, "Timestamp": T0 + dt.timedelta(seconds=start + i * period),
                 "Dimensions": [{"Name": k, "Value": val} for k, val in dims]}
            if unit:
                d["Unit"] = unit
            data.append(d)
        cw.put_metric_data(Namespace=NS, MetricData=data)


def bulk_equivalent(url, rows):
    series = [{"namespace": NS, "metricName": name, "unit": unit, "period": period,
               "start": T0.timestamp() + start, "values": values,
               "dimensions": [{"Name": k, "Value": v} for k, v in dims]}
              for name, dims, unit, start, period, values in rows]
    return seed(url, series)


@pytest.mark.parametrize("mode", [(), ("--no-patch",)])
def test_bulk_seeding_answers_like_put_metric_data(mode):
    """Two fresh servers, one loaded with PutMetricData and one through the
    seeding endpoint, answer every read identically."""
    put_proc, put_url = start_server(*mode)
    bulk_proc, bulk_url = start_server(*mode)
    try:
        put_equivalent(client(put_url, "cloudwatch"), BULK)
        status, answer = bulk_equivalent(bulk_url, BULK)
        assert status == 200
        assert answer == {"series": 3, "points": sum(v is not None for r in BULK for v in r[5])}

        def reads(url):
            cw = client(url, "cloudwatch")
            out = {"list": sorted(cw.list_metrics(Namespace=NS)["Metrics"],
                                  key=lambda m: json.dumps(m, sort_keys=True))}
            stats = ["Average", "Sum", "Minimum", "Maximum", "SampleCount"]
            if not mode:
                stats += ["p50", "p90", "p99.5"]  # plain moto has no percentiles
            for period in (60, 600, 3600, 86400):
                for scan_by in ("TimestampAscending", "TimestampDescending"):
                    queries = [stat_query(f"q{si}_{st.replace('.', '_').lower()}", name,
                                          dims, period, st)
                               for si, (name, dims, *_rest) in enumerate(BULK) for st in stats]
                    queries.append(stat_query("unit", "CPUUtilization", [("InstanceId", "i-b1")],
                                              period, "Sum", unit="Percent"))
                    out[(period, scan_by)] = cw.get_metric_data(
                        StartTime=T0 - dt.timedelta(hours=1), EndTime=T0 + dt.timedelta(days=1),
                        ScanBy=scan_by, MetricDataQueries=queries)["MetricDataResults"]
            out["statistics"] = cw.get_metric_statistics(
                Namespace=NS, MetricName="CPUUtilization",
                Dimensions=[{"Name": "InstanceId", "Value": "i-b1"}],
                StartTime=T0, EndTime=T0 + dt.timedelta(hours=3), Period=1800,
                Statistics=["Average", "Maximum", "SampleCount"])["Datapoints"]
            return out

        want, got = reads(put_url), reads(bulk_url)
        assert got == want
        if not mode:  # plain moto lists a series once per point (identically, though)
            assert len(want["list"]) == 3
        assert all(r["Values"] for r in want[(3600, "TimestampAscending")])
    finally:
        stop_server(put_proc)
        stop_server(bulk_proc)


def test_bulk_seeding_adds_to_put_metric_data_points(patched):
    """Both paths feed one series: the index sees the union, in time order."""
    cw = client(patched, "cloudwatch")
    base = T0 + dt.timedelta(days=20)
    dims = [{"Name": "InstanceId", "Value": "i-mix"}]
    cw.put_metric_data(Namespace=NS, MetricData=[
        {"MetricName": "Mix", "Dimensions": dims, "Timestamp": base + dt.timedelta(hours=h), "Value": float(h)}
        for h in (1, 3)])
    status, _ = seed(patched, [{"namespace": NS, "metricName": "Mix", "dimensions": dims,
                                "start": base.timestamp(), "period": 7200, "values": [0.0, 2.0]}])
    assert status == 200
    r = cw.get_metric_data(StartTime=base, EndTime=base + dt.timedelta(hours=4), ScanBy="TimestampAscending",
                           MetricDataQueries=[stat_query("m", "Mix", [("InstanceId", "i-mix")], 3600, "Maximum")])
    assert r["MetricDataResults"][0]["Values"] == [0.0, 1.0, 2.0, 3.0]


def test_bulk_seeding_rejects_malformed_requests_and_stores_nothing(patched):
    good = {"namespace": NS, "metricName": "Bad", "dimensions": [{"Name": "K", "Value": "v"}],
            "start": T0.timestamp(), "period": 60, "values": [1.0]}
    bad = [
        b"not json",
        b'{"nope": []}',
        json.dumps({"series": [good, dict(good, values=[1.0, "x"])]}).encode(),
        json.dumps({"series": [good, dict(good, period=0)]}).encode(),
        json.dumps({"series": [good, dict(good, namespace="")]}).encode(),
        json.dumps({"series": [good, dict(good, start=None)]}).encode(),
        json.dumps({"series": [good, dict(good, dimensions=[{"Name": "K"}])]}).encode(),
        json.dumps({"series": [good, dict(good, dimensions=[{"Name": "K", "Value": "a"},
                                                            {"Name": "K", "Value": "b"}])]}).encode(),
        json.dumps({"series": [good, dict(good, values=[True])]}).encode(),
        b'{"series": [{"namespace": "FinOps/Test", "metricName": "Bad", "start": 0, "period": 60, '
        b'"values": [NaN]}]}',
    ]
    for body in bad:
        status, answer = seed(patched, body)
        assert status == 400, body
        assert answer["error"]
    status, _ = seed(patched, [good], query="?region=nowhere-1")
    assert status == 400
    assert client(patched, "cloudwatch").list_metrics(Namespace=NS, MetricName="Bad")["Metrics"] == []
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(patched + SEED_PATH)
    assert err.value.code == 405


# --------------------------------------------------------------------------
# process lifecycle


def test_parent_pid_watchdog_stops_server():
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        proc, url = start_server(parent_pid=parent.pid)
        urllib.request.urlopen(url + "/").close()
    finally:
        parent.kill()
        parent.wait()
    t = time.monotonic()
    assert proc.wait(timeout=5) == 0
    assert time.monotonic() - t < 2.0


def test_sigterm_exits_cleanly():
    proc, _ = start_server()
    assert stop_server(proc) == 0


def test_refuses_non_loopback_host():
    out = subprocess.run([sys.executable, str(SERVER), "--host", "0.0.0.0", "--port", "0"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "loopback" in out.stderr


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
