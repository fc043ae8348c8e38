#!/usr/bin/env python3
"""Local AWS emulator for finops-lambda: moto server with a fixed CloudWatch.

Usage:
    infra/.venv/bin/python infra/emulator/server.py --host 127.0.0.1 --port PORT \
        [--parent-pid PID] [--no-patch] [--verbose]

Runs every moto service on one endpoint (like ``moto_server``), bound to a
loopback address only, and prints exactly one line ``READY http://HOST:PORT``
on stdout once it answers HTTP. ``--port 0`` picks a free port (read it from
the READY line). With ``--parent-pid`` the server exits by itself within about
a second after that process is gone, so test runs never leak emulators.
SIGTERM / SIGINT stop it cleanly (exit status 0).

Why the patch (see infra/emulator/README.md for measurements): moto 5.2.5
answers GetMetricData by scanning every stored data point for every query and
every period, so a fleet-sized estate never answers. This module replaces
moto's CloudWatch GetMetricData (and ListMetrics) with an index-backed version:

* points are grouped by (namespace, metric name, frozenset of dimensions) in
  an index kept next to moto's own list (moto's storage is untouched, so
  GetMetricStatistics and the rest keep working); each query is answered from
  its own series, sorted once, with bisect on timestamps;
* Average, Sum, Minimum, Maximum and SampleCount are computed exactly the way
  moto computes them, with moto's period bucketing (buckets of ``Period``
  seconds aligned on StartTime with microseconds dropped, only non-empty
  buckets reported, timestamp = bucket start);
* percentile statistics ``pNN`` / ``pNN.NN`` are added (moto answers them
  with an HTTP 500);
* ``MaxDatapoints`` (default 100,800) and ``NextToken`` are honoured,
  ``StatusCode`` is ``PartialData`` / ``Complete`` as on AWS;
* more than 500 MetricDataQueries, duplicate Ids and unknown statistics are
  rejected with 400 errors instead of being answered or crashing;
* ScanBy ``TimestampDescending`` (default) / ``TimestampAscending``;
* Query-protocol GetMetricData answers are rendered directly (same bytes as
  moto's serializer, which took 1.4 s per 100,800-point page);
* ListMetrics lists each series once (moto lists a metric with no or with
  several dimensions once per data point, and compares every point with every
  metric already listed);
* moto's Query-protocol request parser is made linear (it was quadratic in the
  number of form fields: 2.7 s for one PutMetricData of 1,000 datums).

Deliberate difference from unpatched moto: a MetricStat query matches the one
series whose namespace, name and *complete* dimension set equal the query's,
as on AWS. Unpatched moto sums every series of that name when the query has
no dimensions, and ignores the namespace when it has some.

Bulk seeding for tests and demos: ``POST /_finops/cloudwatch/series`` with
whole series as JSON stores the same moto datums PutMetricData would, into
the same backend and index, about 50 times faster (see ``seed_series``).
It works with ``--no-patch`` too (then without the index).

``--no-patch`` runs plain moto (used by bench_getmetricdata.py for "before").
"""

from __future__ import annotations

import argparse
import base64
import bisect
import hashlib
import ipaddress
import json
import logging
import math
import os
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

DEFAULT_MAX_DATAPOINTS = 100_800  # AWS limit per GetMetricData call
MAX_QUERIES = 500  # AWS limit per GetMetricData call

_EPOCH_NAIVE = datetime(1970, 1, 1)
_ONE_US = timedelta(microseconds=1)
_PERCENTILE_RE = re.compile(r"^p(\d{1,3}(?:\.\d{1,10})?)$")


def _to_us(ts: datetime) -> int:
    """Integer microseconds since the epoch; naive datetimes are UTC (moto)."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(timezone.utc).replace(tzinfo=None)
    return (ts - _EPOCH_NAIVE) // _ONE_US


def _series_key(namespace: str, name: str, dims: Any) -> tuple:
    """Index key of a series. ``dims`` is moto's Dimension list or request dicts."""
    pairs = []
    for d in dims or ():
        if isinstance(d, dict):
            pairs.append((d.get("Name"), d.get("Value")))
        else:
            pairs.append((d.name, d.value))
    return (namespace, name, frozenset(pairs))


class _Series:
    """One time series: parallel lists sorted by (timestamp, insertion seq)."""

    __slots__ = ("ts", "seq", "data", "vals", "first", "needs_sort", "out_of_order", "mixed")

    def __init__(self) -> None:
        self.ts: list[int] = []
        self.seq: list[int] = []
        self.data: list[Any] = []
        # datum.value for single values (moto's MetricDatum), None otherwise
        self.vals: list[float | None] = []
        self.first: Any = None  # first datum in insertion order (ListMetrics)
        self.needs_sort = False
        # True once any point arrived with an older timestamp than the newest:
        # then bucket contents are re-ordered by insertion seq before summing,
        # so float sums add up in moto's order (bit-identical results).
        self.out_of_order = False
        self.mixed = False  # holds statistic sets (or other non-single datums)

    def add(self, ts_us: int, seq: int, datum: Any) -> None:
        if self.first is None:
            self.first = datum
        if self.ts and ts_us < self.ts[-1]:
            self.needs_sort = True
            self.out_of_order = True
        single = _SINGLE_CLS is not None and isinstance(datum, _SINGLE_CLS)
        if not single:
            self.mixed = True
        self.ts.append(ts_us)
        self.seq.append(seq)
        self.data.append(datum)
        self.vals.append(datum.value if single else None)

    def ensure_sorted(self) -> None:
        if not self.needs_sort:
            return
        order = sorted(range(len(self.ts)), key=lambda i: (self.ts[i], self.seq[i]))
        self.ts = [self.ts[i] for i in order]
        self.seq = [self.seq[i] for i in order]
        self.data = [self.data[i] for i in order]
        self.vals = [self.vals[i] for i in order]
        self.needs_sort = False


_SINGLE_CLS: type | None = None  # moto's MetricDatum, set by install_cloudwatch_patch


class _Index:
    """Incremental index over one CloudWatch backend's ``metric_data`` list.

    Kept up to date on every PutMetricData and caught up lazily before every
    read, so points that reach moto's list by any other path are indexed too.
    If moto replaces or shrinks the list (reset), the index is rebuilt.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.source: list | None = None
        self.upto = 0
        self.generation = 0
        self.series: dict[tuple, _Series] = {}
        # Computed GetMetricData results by request fingerprint, so the pages
        # of one paginated request are computed once (valid while no point
        # is added: the key includes ``upto`` and ``generation``).
        self.cache: dict[tuple, list] = {}

    def sync(self, metric_data: list) -> None:
        if metric_data is not self.source or len(metric_data) < self.upto:
            self.source = metric_data
            self.upto = 0
            self.generation += 1
            self.series = {}
            self.cache = {}
        n = len(metric_data)
        series = self.series
        for seq in range(self.upto, n):
            md = metric_data[seq]
            key = _series_key(md.namespace, md.name, md.dimensions)
            s = series.get(key)
            if s is None:
                s = series[key] = _Series()
            s.add(_to_us(md.timestamp), seq, md)
        self.upto = n

    def extend(self, metric_data: list, key: tuple, datums: list, ts_us: list[int]) -> None:
        """Append one series' datums to moto's list and to the index at once.

        Same result as appending and calling ``sync``, without recomputing
        the series key of every datum (the bulk seeding endpoint's hot loop).
        """
        self.sync(metric_data)
        s = self.series.get(key)
        if s is None:
            s = self.series[key] = _Series()
        base = len(metric_data)
        metric_data.extend(datums)
        add = s.add
        for i, (t, d) in enumerate(zip(ts_us, datums)):
            add(t, base + i, d)
        self.upto = len(metric_data)


_INDEX_CREATE_LOCK = threading.Lock()


def _index_of(backend: Any) -> _Index:
    idx = backend.__dict__.get("_finops_index")
    if idx is None:
        with _INDEX_CREATE_LOCK:
            idx = backend.__dict__.get("_finops_index")
            if idx is None:
                idx = _Index()
                backend.__dict__["_finops_index"] = idx
    return idx


# --------------------------------------------------------------------------
# Statistics. Each function gets one bucket as (single values, statistic
# sets), both in insertion order, and returns a number, or None when the
# bucket yields no data point.


def _make_stat(stat: str, where: str):
    """Return a (singles, aggs) -> value function for ``stat`` (moto semantics)."""

    # The expressions below mirror moto.cloudwatch.models.Statistics exactly
    # (same operands, same order), so results are bit-identical to moto's.
    def _sum(s, a):
        return sum(s) + sum([x.sum for x in a])

    def _count(s, a):
        return len(s) + sum([x.sample_count for x in a])

    def _avg(s, a):
        count = len(s) + sum([x.sample_count for x in a])
        if not count:
            return None  # moto would emit a null value and answer HTTP 500
        return (sum(s) + sum([x.sum for x in a])) / count

    def _min(s, a):
        if not s and not a:
            return None
        return min(s + [x.min for x in a])

    def _max(s, a):
        if not s and not a:
            return None
        return max(s + [x.max for x in a])

    simple = {
        "Sum": _sum,
        "SampleCount": _count,
        "Average": _avg,
        "Minimum": _min,
        "Maximum": _max,
    }
    if stat in simple:
        return simple[stat]

    m = _PERCENTILE_RE.match(stat)
    if m and Fraction(m.group(1)) <= 100:
        p = Fraction(m.group(1))

        # Percentile definition: nearest rank on the raw samples of the
        # bucket. With N samples sorted ascending (a value sent with Count c
        # in PutMetricData Values/Counts is c samples; moto stores it c
        # times), pP is the sample at 1-based rank max(1, ceil(P/100 * N)),
        # computed with exact fractions (p0 = minimum, p100 = maximum; the
        # result is always a value that was actually sent, never an
        # interpolation). As on AWS, a statistic set (StatisticValues) only
        # takes part when it is a run of one value (Minimum == Maximum and
        # Sum == Minimum * SampleCount); otherwise, and when any value in the
        # bucket is negative, the bucket has no percentile data point.
        def _pct(s, a):
            weighted: list[tuple[float, int]] = [(v, 1) for v in s]
            for x in a:
                c = x.sample_count
                if (
                    x.min != x.max
                    or c != int(c)
                    or c < 1
                    or not math.isclose(x.sum, x.min * c, rel_tol=1e-9, abs_tol=1e-9)
                ):
                    return None
                weighted.append((x.min, int(c)))
            if not weighted or any(v < 0 for v, _ in weighted):
                return None
            weighted.sort(key=lambda vw: vw[0])
            total = sum(w for _, w in weighted)
            rank = max(1, math.ceil(p * total / 100))
            seen = 0
            for v, w in weighted:
                seen += w
                if seen >= rank:
                    return v
            return weighted[-1][0]

        return _pct

    from moto.cloudwatch.exceptions import InvalidParameterValue

    raise InvalidParameterValue(
        f"The value {stat} for parameter {where} is not supported by the local "
        "emulator (supported: Average, Sum, Minimum, Maximum, SampleCount, "
        "pNN and pNN.NN percentiles)."
    )


# --------------------------------------------------------------------------
# The patch.


class _InvalidNextToken(Exception):
    pass


def _fingerprint(queries: list, start: datetime, end: datetime, scan_by: str) -> str:
    blob = json.dumps([queries, str(start), str(end), scan_by], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _encode_token(offset: int, fp: str) -> str:
    raw = json.dumps({"o": offset, "f": fp}, separators=(",", ":")).encode()
    return "fo1." + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, fp: str) -> int:
    try:
        if not token.startswith("fo1."):
            raise ValueError
        body = token[4:]
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        obj = json.loads(raw)
        offset = int(obj["o"])
        if obj["f"] != fp or offset < 0:
            raise ValueError
        return offset
    except Exception as exc:  # noqa: BLE001 - any malformed token is invalid
        raise _InvalidNextToken from exc


_XMLNS = "http://monitoring.amazonaws.com/doc/2010-08-01/"


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _xml_el(name: str, text: str) -> str:
    return f"<{name}>{_xml_escape(text)}</{name}>" if text else f"<{name}/>"


def _xml_time(ts: datetime) -> str:
    # same text as moto's serializer: naive UTC, "Z", microseconds only if set
    if ts.tzinfo is not None:
        ts = ts.astimezone(timezone.utc)
    if ts.microsecond:
        return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def render_get_metric_data_xml(results: list[dict], next_token: str | None) -> str:
    """GetMetricData response body for the Query protocol (what the Rust SDK
    1.99 speaks), byte-identical to moto's generic serializer output (checked
    by test_server.py) but about 20 times faster on large pages."""
    out = [f'<GetMetricDataResponse xmlns="{_XMLNS}"><GetMetricDataResult>']
    if results:
        out.append("<MetricDataResults>")
        for r in results:
            out.append("<member>")
            out.append(_xml_el("Id", r["Id"]))
            if r.get("Label") is not None:
                out.append(_xml_el("Label", r["Label"]))
            ts = r["Timestamps"]
            if ts:
                out.append("<Timestamps><member>")
                out.append("</member><member>".join(map(_xml_time, ts)))
                out.append("</member></Timestamps>")
            else:
                out.append("<Timestamps/>")
            vals = r["Values"]
            if vals:
                out.append("<Values><member>")
                out.append("</member><member>".join([str(float(v)) for v in vals]))
                out.append("</member></Values>")
            else:
                out.append("<Values/>")
            out.append(f"<StatusCode>{r['StatusCode']}</StatusCode></member>")
        out.append("</MetricDataResults>")
    else:
        out.append("<MetricDataResults/>")
    if next_token:
        out.append(_xml_el("NextToken", next_token))
    out.append("</GetMetricDataResult><ResponseMetadata><RequestId>request-id</RequestId>"
               "</ResponseMetadata></GetMetricDataResponse>")
    return "".join(out)


def install_cloudwatch_patch() -> None:
    """Monkey-patch moto's CloudWatch backend and GetMetricData handler."""
    global _SINGLE_CLS
    from moto.cloudwatch import models, responses
    from moto.cloudwatch.exceptions import CloudWatchException, ValidationError
    from moto.cloudwatch.metric_data_expression_parser import parse_expression
    from moto.core.responses import ActionResult
    from moto.core.utils import get_service_model

    Backend = models.CloudWatchBackend
    _SINGLE_CLS = models.MetricDatum
    MetricAggregatedDatum = models.MetricAggregatedDatum
    orig_put_metric_data = Backend.put_metric_data
    orig_get_metric_data = Backend.get_metric_data  # kept for SELECT queries

    class InvalidNextToken(CloudWatchException):
        code = "InvalidNextToken"

    def _extra_series(backend: Any, base: int) -> dict[tuple, _Series]:
        """moto's computed AWS metrics (S3 bucket sizes), indexed per call."""
        extra: dict[tuple, _Series] = {}
        for i, md in enumerate(backend.aws_metric_data):
            key = _series_key(md.namespace, md.name, md.dimensions)
            extra.setdefault(key, _Series()).add(_to_us(md.timestamp), base + i, md)
        return extra

    def put_metric_data(self, namespace: str, metric_data: list) -> None:
        idx = _index_of(self)
        with idx.lock:
            orig_put_metric_data(self, namespace, metric_data)
            idx.sync(self.metric_data)

    def _run_stat_query(idx, extra, query, n, start_time, start_us, end_us, descending):
        ms = query["MetricStat"]
        metric = ms.get("Metric") or {}
        ns, name = metric.get("Namespace"), metric.get("MetricName")
        period = int(ms.get("Period") or 0)
        if period < 1:
            raise ValidationError(
                f"The parameter MetricDataQueries.member.{n}.MetricStat.Period must be "
                "greater than 0."
            )
        stat = ms.get("Stat")
        fn = _make_stat(stat, f"MetricDataQueries.member.{n}.MetricStat.Stat")
        unit = ms.get("Unit")
        key = _series_key(ns, name, metric.get("Dimensions"))
        series = idx.series.get(key)
        more = extra.get(key)
        if more is not None:
            merged = _Series()
            for s in (series, more):
                if s is not None:
                    for t, q, d in zip(s.ts, s.seq, s.data):
                        merged.add(t, q, d)
            series = merged
        label = query.get("Label") or f"{name} {stat}"
        timestamps: list[datetime] = []
        values: list[float] = []
        if series is not None:
            series.ensure_sorted()
            ts, seq, data, vals = series.ts, series.seq, series.data, series.vals
            # fast path: only single values, in time order, no unit filter
            fast = not (series.mixed or series.out_of_order or unit)
            no_aggs: list = []
            period_us = period * 1_000_000
            i = bisect.bisect_left(ts, start_us)
            hi = bisect.bisect_left(ts, end_us)
            while i < hi:
                k = (ts[i] - start_us) // period_us
                j = bisect.bisect_left(ts, start_us + (k + 1) * period_us, i, hi)
                if fast:
                    v = fn(vals[i:j], no_aggs)
                else:
                    if series.out_of_order:
                        bucket = [data[x] for x in sorted(range(i, j), key=seq.__getitem__)]
                    else:
                        bucket = data[i:j]
                    if unit:
                        bucket = [d for d in bucket if d.unit == unit]
                    singles = [d.value for d in bucket if isinstance(d, _SINGLE_CLS)]
                    aggs = [d for d in bucket if isinstance(d, MetricAggregatedDatum)]
                    v = fn(singles, aggs) if bucket else None
                if v is not None:
                    timestamps.append(start_time + timedelta(seconds=k * period))
                    values.append(v)
                i = j
        if descending:
            timestamps.reverse()
            values.reverse()
        return label, timestamps, values

    def _all_results(self, queries, start_time, end_time, scan_by, fp=None):
        """Every returned query's full result, in request order:
        [(query, label, timestamps, values)]. Callers must not mutate it."""
        start_time = start_time.replace(microsecond=0)
        end_time = end_time.replace(microsecond=0)
        if start_time > end_time:
            raise ValidationError("The parameter EndTime must be greater than StartTime.")
        if start_time == end_time:
            raise ValidationError("The parameter StartTime must not equal parameter EndTime.")
        start_us, end_us = _to_us(start_time), _to_us(end_time)
        descending = scan_by != "TimestampAscending"
        idx = _index_of(self)
        with idx.lock:
            idx.sync(self.metric_data)
            extra = _extra_series(self, len(self.metric_data))
            cache_key = (fp, idx.generation, idx.upto) if fp and not extra else None
            if cache_key in idx.cache:
                return idx.cache[cache_key]
            by_id: dict[str, dict] = {}
            out: list[list] = []
            for n, q in enumerate(queries, start=1):
                if "MetricStat" in q:
                    label, ts, vals = _run_stat_query(
                        idx, extra, q, n, start_time, start_us, end_us, descending
                    )
                    entry = [q, label, ts, vals]
                    by_id[q.get("Id")] = {"id": q.get("Id"), "values": vals, "timestamps": ts}
                else:
                    entry = [q, None, None, None]  # expression, filled below
                out.append(entry)
            # Expressions, as moto does them: a plain id copies another
            # query's result; "SELECT ..." (Metrics Insights) goes to moto's
            # own code.
            selects = [e[0] for e in out if e[1] is None
                       and str(e[0].get("Expression", "")).startswith("SELECT")]
            select_results = {}
            if selects:
                for r in orig_get_metric_data(self, selects, start_time, end_time, scan_by):
                    select_results[r["id"]] = r
            for e in out:
                if e[1] is not None:
                    continue
                q = e[0]
                if q.get("Id") in select_results:
                    r = select_results[q["Id"]]
                    e[1], e[2], e[3] = r["label"], list(r["timestamps"]), list(r["values"])
                else:
                    vals, ts = parse_expression(q.get("Expression"), list(by_id.values()))
                    e[1], e[2], e[3] = q.get("Label") or q.get("Id"), ts, vals
            result = [tuple(e) for e in out
                      if e[0].get("ReturnData", True) not in (False, "false")]
            if cache_key is not None:
                if len(idx.cache) >= 8:
                    idx.cache.pop(next(iter(idx.cache)))
                idx.cache[cache_key] = result
            return result

    def get_metric_data(self, queries, start_time, end_time, scan_by="TimestampAscending"):
        """Index-backed replacement with moto's signature and return shape."""
        return [
            {"id": q["Id"], "label": label, "values": list(vals), "timestamps": list(ts),
             "status_code": "Complete"}
            for q, label, ts, vals in _all_results(self, queries, start_time, end_time, scan_by)
        ]

    def get_metric_data_page(self, queries, start_time, end_time, scan_by, max_datapoints, next_token):
        """One page: at most ``max_datapoints`` points across all results.

        Points are ordered query by query (request order), each query's in
        ScanBy order. Every returned query appears on every page (values may
        be empty), PartialData while it still has points after this page.
        The token is stateless: the offset of the next point plus a
        fingerprint of the request, which must be repeated unchanged.
        """
        fp = _fingerprint(queries, start_time, end_time, scan_by)
        offset = 0
        if next_token:
            try:
                offset = _decode_token(next_token, fp)
            except _InvalidNextToken:
                raise InvalidNextToken("The service returned an invalid NextToken.") from None
        results = _all_results(self, queries, start_time, end_time, scan_by, fp)
        page_end = offset + max_datapoints
        pos = 0
        page = []
        for q, label, ts, vals in results:
            q_start = pos
            lo = min(max(offset - q_start, 0), len(vals))
            hi = min(max(page_end - q_start, 0), len(vals))
            page.append({
                "Id": q["Id"],
                "Label": label,
                "Timestamps": ts[lo:hi],
                "Values": vals[lo:hi],
                "StatusCode": "PartialData" if hi < len(vals) else "Complete",
            })
            pos += len(vals)
        token = _encode_token(page_end, fp) if pos > page_end else None
        return page, token

    def get_filtered_metrics(self, metric_name, namespace, dimensions):
        """ListMetrics: one entry per distinct series (moto lists duplicates
        and compares every point with every listed metric)."""
        idx = _index_of(self)
        with idx.lock:
            idx.sync(self.metric_data)
            reps = [s.first for s in idx.series.values()]
            seen = set(idx.series)
            for md in self.aws_metric_data:
                key = _series_key(md.namespace, md.name, md.dimensions)
                if key not in seen:
                    seen.add(key)
                    reps.append(md)
        return [
            md for md in reps
            if md.filter(namespace=namespace, name=metric_name, dimensions=dimensions)
        ]

    Backend.put_metric_data = put_metric_data
    Backend.get_metric_data = get_metric_data
    Backend.finops_get_metric_data_page = get_metric_data_page
    Backend.get_filtered_metrics = get_filtered_metrics

    def handle_get_metric_data(self):
        params = self._get_params()
        queries = params.get("MetricDataQueries") or []
        if len(queries) > MAX_QUERIES:
            raise ValidationError(
                "The collection MetricDataQueries must not have a size greater than "
                f"{MAX_QUERIES}."
            )
        ids = set()
        for n, query in enumerate(queries, start=1):
            if "MetricStat" not in query and "Expression" not in query:
                raise ValidationError(
                    f"The parameter MetricDataQueries.member.{n}.MetricStat is required.\n"
                )
            if query.get("Id") in ids:
                raise ValidationError(
                    f"The values for parameter id in MetricDataQueries are not unique: {query.get('Id')}"
                )
            ids.add(query.get("Id"))
        max_dp = params.get("MaxDatapoints")
        max_dp = DEFAULT_MAX_DATAPOINTS if max_dp in (None, "") else int(max_dp)
        if max_dp < 1:
            raise ValidationError("The parameter MaxDatapoints must be greater than 0.")
        results, token = self.cloudwatch_backend.finops_get_metric_data_page(
            queries,
            params["StartTime"],
            params["EndTime"],
            params.get("ScanBy") or "TimestampDescending",
            max_dp,
            params.get("NextToken"),
        )
        protocol = self.determine_response_protocol(get_service_model(self.boto3_service_name))
        if protocol == "query":
            # moto's generic serializer needs ~14 us per timestamp; a full
            # 100,800-point page took 1.4 s of the emulator's time.
            body = render_get_metric_data_xml(results, token)
            return 200, {"Content-Type": "text/xml"}, body
        out: dict[str, Any] = {"MetricDataResults": results}
        if token:
            out["NextToken"] = token
        return ActionResult(out)

    responses.CloudWatchResponse.get_metric_data = handle_get_metric_data


def install_query_parser_patch() -> None:
    """Make moto's Query-protocol request parser linear.

    moto's QueryParser checks, for every structure it might parse, whether
    any form key starts with that structure's prefix by scanning all keys:
    O(structures x keys). One PutMetricData of 1,000 datums took 2.7 s and a
    500-query GetMetricData about 1.5 s before a single point was read. Here
    the same test runs on the sorted keys with bisect (the smallest key >=
    prefix starts with it iff any key does), so parsing is unchanged.
    """
    from moto.core.parse import QueryParser

    def _gonna_recurse(self, query_params, prefix):
        if prefix == "":
            return False
        cached = self.__dict__.get("_finops_sorted_keys")
        if cached is None or cached[0] is not query_params:
            cached = (query_params, sorted(query_params.keys()))
            self.__dict__["_finops_sorted_keys"] = cached
        keys = cached[1]
        i = bisect.bisect_left(keys, prefix)
        return not (i < len(keys) and keys[i].startswith(prefix))

    QueryParser._gonna_recurse = _gonna_recurse


# --------------------------------------------------------------------------
# Bulk seeding.

SEED_PATH = "/_finops/cloudwatch/series"
MAX_SEED_BODY = 256 * 1024 * 1024
_PATCHED = False  # set by main(): whether the index exists to be kept current


def install_transaction_patch() -> None:
    """Make TransactWriteItems cost what its items cost, not its tables' size.

    moto 5.2.5 backs up every table a transaction touches with a deep copy
    before applying it, so each transaction costs time in proportion to all
    the items of those tables: a cycle opening one approval request per
    recommendation (three items each, into tables that grow with every
    request) slowed down quadratically. This keeps moto's transaction logic
    and replaces only the backup: the items the transaction names are saved
    before it runs and put back if it is cancelled. DynamoDB requests are
    serialised (SerializedServices), so nothing else sees the state between.
    """
    import copy

    from moto.dynamodb.exceptions import (
        MockValidationException,
        MultipleTransactionsException,
        TransactionCanceledException,
    )
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items

    def _key_of(backend: Any, op_type: str, op: dict) -> tuple[str, dict] | None:
        table_name = op.get("TableName")
        if table_name not in backend.tables:
            return None
        if op_type != "Put":
            return (table_name, op.get("Key")) if op.get("Key") else None
        table = backend.tables[table_name]
        item = op.get("Item") or {}
        names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
        if any(n not in item for n in names):
            return None
        return table_name, {n: item[n] for n in names}

    def transact_write_items(self, transact_items: list) -> None:
        saved = []
        for entry in transact_items:
            if not isinstance(entry, dict) or len(entry) != 1:
                continue  # moto rejects it before applying anything
            op_type, op = next(iter(entry.items()))
            target = _key_of(self, op_type, op or {})
            if target is None:
                continue
            try:
                before = self.get_item(*target)
            except Exception:  # noqa: BLE001 an invalid key: moto rejects it too
                continue
            saved.append((target, copy.deepcopy(before.to_json()["Attributes"]) if before else None))
        # moto's own backup becomes a reference to the live table (cheap);
        # the saved items are the real undo log.
        Table.__deepcopy__ = lambda table, memo: table
        try:
            original(self, transact_items)
        except (TransactionCanceledException, MultipleTransactionsException, MockValidationException):
            for (table_name, key), attrs in reversed(saved):
                if attrs is None:
                    if self.get_item(table_name, key) is not None:
                        self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, attrs)
            raise
        finally:
            del Table.__deepcopy__

    DynamoDBBackend.transact_write_items = transact_write_items


class SeedError(ValueError):
    """A malformed seeding request (answered with HTTP 400, nothing stored)."""


def _number(value: Any, where: str) -> float:
    # bool is an int in Python; JSON true/false is never a number here
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SeedError(f"{where} must be a number")
    if not math.isfinite(value):
        raise SeedError(f"{where} must be finite")
    return value


def _parse_seed(payload: Any) -> list[tuple]:
    """Validate a whole request before anything is stored, so that a 400
    leaves the emulator as it was. Returns (namespace, name, dims, unit,
    start, period, values) per series."""
    if not isinstance(payload, dict) or not isinstance(payload.get("series"), list):
        raise SeedError('body must be a JSON object with a "series" list')
    out = []
    for n, item in enumerate(payload["series"]):
        where = f"series[{n}]"
        if not isinstance(item, dict):
            raise SeedError(f"{where} must be an object")
        ns, name = item.get("namespace"), item.get("metricName")
        if not isinstance(ns, str) or not ns or not isinstance(name, str) or not name:
            raise SeedError(f"{where}: namespace and metricName must be non-empty strings")
        dims = item.get("dimensions") or []
        if not isinstance(dims, list) or len(dims) > 30:
            raise SeedError(f"{where}.dimensions must be a list of at most 30")
        names = set()
        for d in dims:
            if (not isinstance(d, dict) or not isinstance(d.get("Name"), str)
                    or not isinstance(d.get("Value"), str) or not d["Name"]):
                raise SeedError(f"{where}.dimensions: each needs string Name and Value")
            if d["Name"] in names:
                raise SeedError(f"{where}.dimensions: duplicate Name {d['Name']!r}")
            names.add(d["Name"])
        unit = item.get("unit")
        if unit is not None and not isinstance(unit, str):
            raise SeedError(f"{where}.unit must be a string")
        start = _number(item.get("start"), f"{where}.start")
        period = _number(item.get("period"), f"{where}.period")
        if period <= 0:
            raise SeedError(f"{where}.period must be positive")
        values = item.get("values")
        if not isinstance(values, list):
            raise SeedError(f"{where}.values must be a list")
        for i, v in enumerate(values):
            if v is not None:
                _number(v, f"{where}.values[{i}]")
        dims = [{"Name": d["Name"], "Value": d["Value"]} for d in dims]
        out.append((ns, name, dims, unit, start, period, values))
    return out


def seed_series(payload: Any, account_id: str | None = None, region: str | None = None) -> dict:
    """Store whole series as PutMetricData would, without the Query protocol.

    Each series is ``{"namespace", "metricName", "dimensions": [{"Name",
    "Value"}], "unit", "start": epoch seconds, "period": seconds, "values":
    [...]}``; value i is stored at ``start + i * period`` and ``null`` leaves
    a gap. Every point becomes the same moto ``MetricDatum`` that
    PutMetricData with ``Value`` would store (naive UTC timestamp, float
    value, unit) in the same backend list, and enters the patch's index, so
    GetMetricData, GetMetricStatistics and ListMetrics cannot tell the two
    paths apart. PutMetricData costs about 0.3 s per 1,000 points even
    patched; this path took 5.4 s for 1,008,000 points (about 5 us each).
    """
    from moto.cloudwatch.models import MetricDatum, cloudwatch_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    parsed = _parse_seed(payload)
    try:
        backend = cloudwatch_backends[account_id or DEFAULT_ACCOUNT_ID][region or "us-east-1"]
    except KeyError:
        raise SeedError(f"unknown account or region: {account_id!r} / {region!r}") from None
    total = 0
    no_dims: list = []
    for ns, name, dims, unit, start, period, values in parsed:
        datums, ts_us = [], []
        shared_dims = None
        for i, v in enumerate(values):
            if v is None:
                continue
            ts = _EPOCH_NAIVE + timedelta(seconds=start + i * period)
            if shared_dims is None:
                d = MetricDatum(ns, name, float(v), dims, ts, unit)
                shared_dims = d.dimensions
            else:
                # One Dimension list per series instead of per point: moto only
                # ever reads it, and building it was 40 % of the seeding time
                # (and a third of the memory per point).
                d = MetricDatum(ns, name, float(v), no_dims, ts, unit)
                d.dimensions = shared_dims
            datums.append(d)
            ts_us.append(_to_us(ts))
        if _PATCHED:
            idx = _index_of(backend)
            with idx.lock:
                idx.extend(backend.metric_data, _series_key(ns, name, dims), datums, ts_us)
        else:
            backend.metric_data.extend(datums)
        total += len(datums)
    return {"series": len(parsed), "points": total}


class SeedEndpoint:
    """WSGI middleware: ``POST /_finops/cloudwatch/series`` (see seed_series).

    Optional query parameters ``account`` and ``region`` pick the backend
    (default 123456789012 / us-east-1, what the local SDK config uses).
    Answers 200 ``{"series": n, "points": m}``, 400 with ``{"error"}`` on a
    malformed body (nothing stored), 405 for other methods.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Any) -> Any:
        if environ.get("PATH_INFO") != SEED_PATH:
            return self.app(environ, start_response)

        def answer(status: str, obj: dict) -> list[bytes]:
            body = json.dumps(obj).encode()
            start_response(status, [("Content-Type", "application/json"),
                                    ("Content-Length", str(len(body)))])
            return [body]

        if environ.get("REQUEST_METHOD") != "POST":
            return answer("405 Method Not Allowed", {"error": "use POST"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_SEED_BODY:
            return answer("400 Bad Request", {"error": f"body must be 0..{MAX_SEED_BODY} bytes"})
        qs = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        try:
            payload = json.loads(environ["wsgi.input"].read(length) or b"null")
            result = seed_series(payload, (qs.get("account") or [None])[0],
                                 (qs.get("region") or [None])[0])
        except ValueError as exc:  # SeedError and JSONDecodeError are ValueErrors
            return answer("400 Bad Request", {"error": str(exc)})
        return answer("200 OK", result)


# --------------------------------------------------------------------------
# Server.


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _watch_parent(pid: int) -> None:
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass  # exists, owned by someone else
        time.sleep(0.2)


class SerializedServices:
    """WSGI middleware: one request at a time per stateful service.

    DynamoDB applies each conditional write and each transaction atomically,
    and SQS never hands one message to two receivers inside its visibility
    timeout. moto's threaded server checks and applies without a lock, so two
    racing requests can both pass a condition (measured: 2 of 20 racing
    approval transactions succeeded). Serialising per service restores the
    guarantees the code under test relies on; CloudWatch and the rest stay
    concurrent.
    """

    PREFIXES = (("DynamoDB_", "dynamodb"), ("AmazonSQS.", "sqs"))

    def __init__(self, app: Any) -> None:
        self.app = app
        self.locks = {name: threading.Lock() for _, name in self.PREFIXES}

    def __call__(self, environ: dict, start_response: Any) -> Any:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        for prefix, name in self.PREFIXES:
            if target.startswith(prefix):
                with self.locks[name]:
                    # Materialise the body inside the lock: the response is
                    # the state as of this request.
                    return list(self.app(environ, start_response))
        return self.app(environ, start_response)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    ap.add_argument("--port", type=int, default=5000, help="TCP port (0 = pick a free one)")
    ap.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    ap.add_argument("--no-patch", action="store_true", help="plain moto (benchmark baseline)")
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = ap.parse_args(argv)

    if not _is_loopback(args.host):
        ap.error(f"--host must be a loopback address, got {args.host!r}")

    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid,), daemon=True).start()

    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    global _PATCHED
    if not args.no_patch:
        install_query_parser_patch()
        install_cloudwatch_patch()
        install_transaction_patch()
        _PATCHED = True

    app = SeedEndpoint(SerializedServices(DomainDispatcherApplication(create_backend_app)))
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in str(host) else str(host)
    url = f"http://{shown}:{port}"

    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    serving.start()

    stop = threading.Event()

    def _on_signal(signum, frame):  # noqa: ARG001
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    # READY only once a real HTTP request has been answered.
    deadline = time.monotonic() + 30
    while not stop.is_set():
        try:
            urllib.request.urlopen(url + "/", timeout=2).close()
            break
        except urllib.error.HTTPError:
            break  # any HTTP answer will do
        except OSError:
            if time.monotonic() > deadline:
                print(f"emulator: no HTTP answer on {url}", file=sys.stderr)
                return 1
            time.sleep(0.05)
    if not stop.is_set():
        print(f"READY {url}", flush=True)

    while not stop.wait(0.2):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
