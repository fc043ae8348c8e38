"""Bulk seeding: POST /_finops/cloudwatch/series."""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.request

import pytest

from emulator_testlib import NS, T0, client, start_server, stat_query, stop_server


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
