"""Index-backed CloudWatch GetMetricData and ListMetrics for moto 5.2.5.

Why: moto answers GetMetricData by scanning every stored data point for
every query and every period, so a fleet-sized estate never answers (10
queries over 336,000 points: more than 60 s). This module replaces moto's
GetMetricData (and ListMetrics) with an index-backed version
(``cloudwatch_index``):

* each query is answered from its own series, sorted once, with bisect on
  timestamps;
* Average, Sum, Minimum, Maximum and SampleCount are computed exactly the way
  moto computes them, with moto's period bucketing (buckets of ``Period``
  seconds aligned on StartTime with microseconds dropped, only non-empty
  buckets reported, timestamp = bucket start);
* percentile statistics ``pNN`` / ``pNN.NN`` are added (moto answers them
  with an HTTP 500; ``cloudwatch_stats``);
* ``MaxDatapoints`` (default 100,800) and ``NextToken`` are honoured,
  ``StatusCode`` is ``PartialData`` / ``Complete`` as on AWS;
* more than 500 MetricDataQueries, duplicate Ids and unknown statistics are
  rejected with 400 errors instead of being answered or crashing;
* ScanBy ``TimestampDescending`` (default) / ``TimestampAscending``;
* Query-protocol GetMetricData answers are rendered directly
  (``cloudwatch_render``: same bytes as moto's serializer, which took 1.4 s
  per 100,800-point page);
* ListMetrics lists each series once (moto lists a metric with no or with
  several dimensions once per data point, and compares every point with every
  metric already listed).

Deliberate difference from unpatched moto: a MetricStat query matches the one
series whose namespace, name and *complete* dimension set equal the query's,
as on AWS. Unpatched moto sums every series of that name when the query has
no dimensions, and ignores the namespace when it has some.
"""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta
from typing import Any

from . import cloudwatch_index
from .cloudwatch_index import _Series, _index_of, _series_key, _to_us
from .cloudwatch_render import (
    _decode_token,
    _encode_token,
    _fingerprint,
    _InvalidNextToken,
    render_get_metric_data_xml,
)
from .cloudwatch_stats import _make_stat

DEFAULT_MAX_DATAPOINTS = 100_800  # AWS limit per GetMetricData call
MAX_QUERIES = 500  # AWS limit per GetMetricData call


def install_cloudwatch_patch() -> None:
    """Monkey-patch moto's CloudWatch backend and GetMetricData handler."""
    from moto.cloudwatch import models, responses
    from moto.cloudwatch.exceptions import CloudWatchException, ValidationError
    from moto.cloudwatch.metric_data_expression_parser import parse_expression
    from moto.core.responses import ActionResult
    from moto.core.utils import get_service_model

    Backend = models.CloudWatchBackend
    MetricDatum = cloudwatch_index._SINGLE_CLS = models.MetricDatum
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
                    singles = [d.value for d in bucket if isinstance(d, MetricDatum)]
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
