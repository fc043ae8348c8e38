"""ModifyCacheCluster through boto3: the node type and node count change as AWS changes them."""

from __future__ import annotations

import botocore.exceptions
import pytest

from emulator_testlib import client


def _cluster(ec, cid: str, engine: str = "redis", nodes: int = 1) -> None:
    ec.create_cache_cluster(CacheClusterId=cid, Engine=engine, CacheNodeType="cache.m5.large", NumCacheNodes=nodes)


def test_node_type_changes_at_once_with_apply_immediately(patched):
    ec = client(patched, "elasticache")
    _cluster(ec, "c-now")
    out = ec.modify_cache_cluster(CacheClusterId="c-now", CacheNodeType="cache.t3.medium", ApplyImmediately=True)
    shown = out["CacheCluster"]
    assert shown["CacheClusterId"] == "c-now"
    assert shown["CacheClusterStatus"] == "modifying"
    assert shown["PendingModifiedValues"]["CacheNodeType"] == "cache.t3.medium"
    after = ec.describe_cache_clusters(CacheClusterId="c-now")["CacheClusters"][0]
    assert after["CacheNodeType"] == "cache.t3.medium"
    assert after["CacheClusterStatus"] == "available"
    assert "CacheNodeType" not in after.get("PendingModifiedValues", {})


def test_without_apply_immediately_the_change_waits_for_the_window(patched):
    ec = client(patched, "elasticache")
    _cluster(ec, "c-later")
    ec.modify_cache_cluster(CacheClusterId="c-later", CacheNodeType="cache.t3.small")
    after = ec.describe_cache_clusters(CacheClusterId="c-later")["CacheClusters"][0]
    assert after["CacheNodeType"] == "cache.m5.large"
    assert after["PendingModifiedValues"]["CacheNodeType"] == "cache.t3.small"


def test_memcached_node_count_and_refusals(patched):
    ec = client(patched, "elasticache")
    _cluster(ec, "mc", engine="memcached", nodes=2)
    ec.modify_cache_cluster(CacheClusterId="mc", NumCacheNodes=3, ApplyImmediately=True)
    assert ec.describe_cache_clusters(CacheClusterId="mc")["CacheClusters"][0]["NumCacheNodes"] == 3
    _cluster(ec, "rd")
    for kwargs, code in [
        ({"CacheClusterId": "nope", "CacheNodeType": "cache.t3.small"}, "CacheClusterNotFound"),
        ({"CacheClusterId": "rd", "NumCacheNodes": 2}, "InvalidParameterValue"),
        ({"CacheClusterId": "rd", "CacheNodeType": "m5.large"}, "InvalidParameterValue"),
        ({"CacheClusterId": "mc", "NumCacheNodes": 41}, "InvalidParameterValue"),
    ]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ec.modify_cache_cluster(**kwargs)
        assert e.value.response["Error"]["Code"] == code, kwargs


def test_plain_moto_does_not_have_it(plain):
    ec = client(plain, "elasticache")
    _cluster(ec, "c")
    with pytest.raises(Exception):
        ec.modify_cache_cluster(CacheClusterId="c", CacheNodeType="cache.t3.small", ApplyImmediately=True)
