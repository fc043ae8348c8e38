"""Linear Query-protocol request parsing for moto (all Query services)."""

from __future__ import annotations

import bisect


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

