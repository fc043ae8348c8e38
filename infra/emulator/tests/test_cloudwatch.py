"""CloudWatch: GetMetricData / ListMetrics patch against plain moto and by hand."""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
import time
import urllib.request
from collections import defaultdict

import pytest
from botocore.exceptions import ClientError

from emulator_testlib import NS, SERVER, T0, all_pages, client, start_server, stat_query, stop_server


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
