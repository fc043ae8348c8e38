"""CloudWatch statistics for the GetMetricData patch (moto semantics).

Average, Sum, Minimum, Maximum and SampleCount are computed exactly the way
moto computes them (same operands, same order: bit-identical results).
Percentile statistics ``pNN`` / ``pNN.NN`` are added: moto answers them with
an HTTP 500 for the whole call.

Each function gets one bucket as (single values, statistic sets), both in
insertion order, and returns a number, or None when the bucket yields no data
point.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_PERCENTILE_RE = re.compile(r"^p(\d{1,3}(?:\.\d{1,10})?)$")


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

