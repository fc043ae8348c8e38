"""CloudWatch series index: moto's metric_data list grouped per series.

moto 5.2.5 keeps every PutMetricData point in one list per backend and
answers GetMetricData by scanning all of it for every query and period. The
patch (``cloudwatch.py``) reads from this index instead: points grouped by
(namespace, metric name, frozenset of dimensions), kept next to moto's own
list (moto's storage is untouched, so GetMetricStatistics and the rest keep
working), each series sorted once so queries can bisect on timestamps.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Any

_EPOCH_NAIVE = datetime(1970, 1, 1)
_ONE_US = timedelta(microseconds=1)


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


_SINGLE_CLS: type | None = None  # moto's MetricDatum, set by cloudwatch.install_cloudwatch_patch


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

