#!/usr/bin/env python3
"""GetMetricData on moto, before and after infra/emulator/server.py's patch.

Run: infra/.venv/bin/python infra/emulator/bench_getmetricdata.py [--timeout 60]

Stores INSTANCES EC2 instances x DAYS days of hourly CPUUtilization
(1,000 x 14 x 24 = 336,000 points, 1,000 data points per PutMetricData call)
into an unpatched moto server (server.py --no-patch) and into the patched
one, then times:
  * one query with a 14-day period, and one with a daily period;
  * one call of 10 queries with an hourly period;
  * (patched only) the whole fleet, 1,000 hourly queries, 500 queries per call,
    paged with NextToken under the 100,800-point limit;
  * (patched only) the whole fleet's 14-day p99.5 in two calls of 500;
  * ListMetrics over all pages.
Calls that exceed --timeout seconds are reported as timed out; the server is
then restarted (a timed-out request keeps burning the emulator's CPU).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import math
import os
import re
import select
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import botocore
import botocore.session
from botocore.config import Config
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import ReadTimeoutError

SERVER = Path(__file__).with_name("server.py")
T0 = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
PROTOCOL = ["query"]  # set from --protocol
_MODEL_DIR: list[str] = []


def _botocore_session() -> botocore.session.Session:
    """boto3 would speak awsJson1_0 to CloudWatch; the Rust SDK 1.99 speaks
    Query, so by default re-point the model at Query (what the collector sees)."""
    bs = botocore.session.get_session()
    if not _MODEL_DIR:
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
        _MODEL_DIR.append(str(root))
    bs.get_component("data_loader").search_paths.insert(0, _MODEL_DIR[0])
    return bs


class TimedOut(Exception):
    pass


class Emulator:
    def __init__(self, patched: bool):
        self.patched = patched
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> None:
        cmd = [sys.executable, str(SERVER), "--host", "127.0.0.1", "--port", "0",
               "--parent-pid", str(os.getpid())]
        if not self.patched:
            cmd.append("--no-patch")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline().strip() if ready else ""
        if not line.startswith("READY "):
            self.proc.kill()
            raise RuntimeError(f"emulator did not start: {line!r}")
        self.url = line.split(" ", 1)[1]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def cw(self, timeout: float, protocol: str | None = None):
        bs = _botocore_session() if (protocol or PROTOCOL[0]) == "query" else botocore.session.get_session()
        return boto3.session.Session(botocore_session=bs).client(
            "cloudwatch", endpoint_url=self.url, region_name="us-east-1",
            aws_access_key_id="bench", aws_secret_access_key="bench",
            config=Config(retries={"total_max_attempts": 1}, read_timeout=timeout,
                          connect_timeout=10, max_pool_connections=4),
        )


def instance_id(i: int) -> str:
    return f"i-{i:017x}"


def cpu(i: int, h: int) -> float:
    # deterministic, spread over 0..100 with a daily shape
    return round((i * 37 + h * 11) % 97 + (h % 24) / 24.0, 3)


def load(emu: Emulator, instances: int, hours: int) -> float:
    """One PutMetricData per hour with every instance's point (1,000 per call).

    Loads over boto3's default awsJson1_0 wire format: unpatched moto parses
    a 1,000-datum Query-protocol PutMetricData in 2.7 s (quadratic parser),
    which would make the baseline's load take a quarter of an hour.
    """

    def put(h: int) -> None:
        cw = clients[h % 2]
        ts = T0 + dt.timedelta(hours=h)
        for lo in range(0, instances, 1000):
            cw.put_metric_data(Namespace="AWS/EC2", MetricData=[
                {"MetricName": "CPUUtilization", "Unit": "Percent", "Timestamp": ts,
                 "Dimensions": [{"Name": "InstanceId", "Value": instance_id(i)}],
                 "Value": cpu(i, h)}
                for i in range(lo, min(lo + 1000, instances))])

    clients = [emu.cw(120, "json"), emu.cw(120, "json")]
    t = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(put, range(hours)))
    return time.perf_counter() - t


def query(qid: str, i: int, period: int, stat: str = "Average") -> dict:
    return {"Id": qid, "MetricStat": {
        "Metric": {"Namespace": "AWS/EC2", "MetricName": "CPUUtilization",
                   "Dimensions": [{"Name": "InstanceId", "Value": instance_id(i)}]},
        "Period": period, "Stat": stat}}


def timed(fn):
    t = time.perf_counter()
    try:
        out = fn()
    except (ReadTimeoutError, BotoConnectionError) as exc:
        raise TimedOut from exc
    return time.perf_counter() - t, out


def get_all(cw, queries, start, end) -> tuple[int, int]:
    """(calls, points) for all pages of one GetMetricData request."""
    calls = points = 0
    token = None
    while True:
        args = dict(StartTime=start, EndTime=end, MetricDataQueries=queries, ScanBy="TimestampAscending")
        if token:
            args["NextToken"] = token
        resp = cw.get_metric_data(**args)
        calls += 1
        points += sum(len(r["Values"]) for r in resp["MetricDataResults"])
        token = resp.get("NextToken")
        if not token:
            return calls, points


def raw_get_all(url: str, queries: list[dict], start, end, timeout: float) -> tuple[int, int]:
    """Like get_all, but form-encoded Query-protocol POSTs with urllib and the
    XML only scanned with regexes: the emulator's own cost, close to what the
    Rust SDK (fast XML parsing) sees."""
    iso = "%Y-%m-%dT%H:%M:%SZ"
    form = {"Action": "GetMetricData", "Version": "2010-08-01", "ScanBy": "TimestampAscending",
            "StartTime": start.strftime(iso), "EndTime": end.strftime(iso)}
    for n, q in enumerate(queries, start=1):
        ms, p = q["MetricStat"], f"MetricDataQueries.member.{n}."
        form[p + "Id"] = q["Id"]
        form[p + "MetricStat.Metric.Namespace"] = ms["Metric"]["Namespace"]
        form[p + "MetricStat.Metric.MetricName"] = ms["Metric"]["MetricName"]
        for k, d in enumerate(ms["Metric"]["Dimensions"], start=1):
            form[p + f"MetricStat.Metric.Dimensions.member.{k}.Name"] = d["Name"]
            form[p + f"MetricStat.Metric.Dimensions.member.{k}.Value"] = d["Value"]
        form[p + "MetricStat.Period"] = str(ms["Period"])
        form[p + "MetricStat.Stat"] = ms["Stat"]
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
               "Authorization": "AWS4-HMAC-SHA256 Credential=bench/20240301/us-east-1/monitoring/"
                                "aws4_request, SignedHeaders=host, Signature=bench"}
    calls = points = 0
    token = None
    while True:
        body = dict(form, **({"NextToken": token} if token else {}))
        req = urllib.request.Request(url + "/", data=urllib.parse.urlencode(body).encode(), headers=headers)
        try:
            xml = urllib.request.urlopen(req, timeout=timeout).read()
        except OSError as exc:
            raise TimedOut from exc
        calls += 1
        points += sum(v.count(b"<member>") for v in re.findall(rb"<Values>(.*?)</Values>", xml))
        m = re.search(rb"<NextToken>(.*?)</NextToken>", xml)
        if not m:
            return calls, points
        token = m.group(1).decode()


def list_all(cw) -> tuple[int, int]:
    calls = n = 0
    token = None
    while True:
        resp = cw.list_metrics(Namespace="AWS/EC2", **({"NextToken": token} if token else {}))
        calls += 1
        n += len(resp["Metrics"])
        token = resp.get("NextToken")
        if not token:
            return calls, n


def run(patched: bool, instances: int, days: int, timeout: float) -> dict[str, str]:
    hours = days * 24
    start, end = T0, T0 + dt.timedelta(days=days)
    res: dict[str, str] = {}
    emu = Emulator(patched)
    clients: dict[str, object] = {}

    def fresh() -> None:
        emu.stop()
        emu.start()
        secs = load(emu, instances, hours)
        res.setdefault("load", f"{secs:.1f} s")
        print(f"  {'patched' if patched else 'unpatched'}: loaded in {secs:.1f} s", flush=True)
        res.setdefault("rss", f"{emu.rss_mb():.0f} MB")
        clients["cw"] = emu.cw(timeout)

    def measure(name: str, fn, fmt, last: bool = False) -> None:
        try:
            secs, out = timed(fn)
            res[name] = fmt(secs, out)
        except TimedOut:
            res[name] = f">{timeout:.0f} s (timed out)"
            if not last:
                fresh()  # the emulator is still busy with the abandoned call
        print(f"  {'patched' if patched else 'unpatched'}: {name}: {res[name]}", flush=True)

    fresh()
    try:
        probe = [{"MetricName": "Probe", "Timestamp": start, "Value": 1.0,
                  "Dimensions": [{"Name": "InstanceId", "Value": instance_id(i)}]} for i in range(1000)]
        measure("put", lambda: clients["cw"].put_metric_data(Namespace="Bench/Probe", MetricData=probe),
                lambda s, out: f"{s:.3f} s")
        measure("one", lambda: clients["cw"].get_metric_data(
            StartTime=start, EndTime=end, MetricDataQueries=[query("q0", 0, days * 86400)]),
            lambda s, out: f"{s:.3f} s" + ("" if out["MetricDataResults"][0]["Values"] else " (no data!)"))
        measure("daily", lambda: clients["cw"].get_metric_data(
            StartTime=start, EndTime=end, MetricDataQueries=[query("q0", 0, 86400)]),
            lambda s, out: f"{s:.3f} s ({len(out['MetricDataResults'][0]['Values'])} points)")
        measure("ten", lambda: get_all(clients["cw"], [query(f"q{i}", i, 3600) for i in range(10)], start, end),
                lambda s, out: f"{s:.3f} s ({out[1]:,} points)")
        if patched:
            def fleet(period: int, stat: str):
                calls = points = 0
                for lo in range(0, instances, 500):
                    c, p = get_all(clients["cw"], [query(f"q{i}", i, period, stat)
                                        for i in range(lo, min(lo + 500, instances))], start, end)
                    calls, points = calls + c, points + p
                return calls, points
            measure("fleet", lambda: fleet(3600, "Average"),
                    lambda s, out: f"{s:.2f} s ({out[0]} calls, {out[1]:,} points)")

            def raw_fleet():
                calls = points = 0
                for lo in range(0, instances, 500):
                    c, p = raw_get_all(emu.url, [query(f"q{i}", i, 3600)
                                                 for i in range(lo, min(lo + 500, instances))],
                                       start, end, timeout)
                    calls, points = calls + c, points + p
                return calls, points
            measure("fleet_raw", raw_fleet,
                    lambda s, out: f"{s:.2f} s ({out[0]} calls, {out[1]:,} points)")
            measure("fleet_p995", lambda: fleet(days * 86400, "p99.5"),
                    lambda s, out: f"{s:.2f} s ({out[0]} calls, {out[1]:,} points)")
        measure("list", lambda: list_all(clients["cw"]),
                lambda s, out: f"{s:.2f} s ({out[0]} calls, {out[1]:,} metrics)", last=True)
    finally:
        emu.stop()
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--protocol", choices=["query", "json"], default="query",
                    help="CloudWatch wire protocol (query = what aws-sdk-cloudwatch 1.99 speaks)")
    args = ap.parse_args()
    PROTOCOL[0] = args.protocol

    n = args.instances * args.days * 24
    print(f"{args.instances:,} instances x {args.days} days hourly = {n:,} points; "
          f"timeout {args.timeout:.0f} s; CloudWatch {args.protocol} protocol")
    after = run(True, args.instances, args.days, args.timeout)
    before = run(False, args.instances, args.days, args.timeout)

    rows = [
        (f"Load: {args.days * 24 * math.ceil(args.instances / 1000)} PutMetricData calls "
         f"x {min(args.instances, 1000):,} points (awsJson1_0)", "load"),
        ("Emulator RSS after load", "rss"),
        ("PutMetricData, 1,000 points, one call", "put"),
        (f"GetMetricData, 1 query, {args.days}-day period", "one"),
        ("GetMetricData, 1 query, daily period", "daily"),
        ("GetMetricData, 10 queries, hourly", "ten"),
        (f"Fleet: {args.instances:,} queries hourly, 500/call, NextToken", "fleet"),
        ("Same fleet, raw HTTP, no client-side XML parsing", "fleet_raw"),
        (f"Fleet: {args.instances:,} queries, {args.days}-day p99.5, 500/call", "fleet_p995"),
        ("ListMetrics, all pages", "list"),
    ]
    w = max(len(r[0]) for r in rows)
    print()
    print(f"CloudWatch calls timed over the {args.protocol} protocol, wall clock seen by boto3 "
          "(includes its request building and response parsing).")
    print()
    print(f"| {'Operation'.ljust(w)} | moto 5.2.5 unpatched | server.py (patched) |")
    print(f"|{'-' * (w + 2)}|----------------------|---------------------|")
    not_run = {"fleet": "not run (10 queries already time out)",
               "fleet_raw": "not run",
               "fleet_p995": "not run (percentiles: HTTP 500)"}
    for label, key in rows:
        print(f"| {label.ljust(w)} | {before.get(key, not_run.get(key, 'n/a'))} | {after.get(key, 'n/a')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
