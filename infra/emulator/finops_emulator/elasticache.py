"""ElastiCache ModifyCacheCluster, which moto 5.2.5 does not implement.

Why: moto has no ``modify_cache_cluster`` on its ElastiCache responses, so
the call fell through to an HTML 500; finops-lambda's rightsizing of a cache
node type needs it (the node type change of SPEC section 10).

What it does, as AWS does: on a stored cluster, ``CacheNodeType`` and
``NumCacheNodes`` change (memcached: 1 to 40 nodes; redis: one node per
cluster, so another count is refused with InvalidParameterValue). With
``ApplyImmediately`` the answer shows the cluster ``modifying`` with the
new values under ``PendingModifiedValues`` and the old ones in place, and
the next DescribeCacheClusters shows them applied, ``available``; without
it the change waits for the maintenance window, so it stays under
``PendingModifiedValues``. An unknown cluster is CacheClusterNotFound, a
cluster not ``available`` InvalidCacheClusterState. The answer is rendered
by moto's own Query-protocol serializer from the botocore model, like every
other ElastiCache answer.
"""

from __future__ import annotations

from typing import Any

_INSTALLED = False


class _Answer:
    """The cluster as the ModifyCacheCluster answer shows it; every other
    attribute is the stored cluster's."""

    def __init__(self, cluster: Any, status: str, pending: dict[str, Any]) -> None:
        self._cluster = cluster
        self.cache_cluster_status = status
        self.pending_modified_values = pending or None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cluster, name)


def modify_cache_cluster(backend: Any, params: dict[str, Any]) -> _Answer:
    from moto.elasticache.exceptions import (
        CacheClusterNotFound,
        ElastiCacheException,
        InvalidParameterValueException,
    )

    class InvalidCacheClusterState(ElastiCacheException):
        code = "InvalidCacheClusterState"

    cluster_id = params.get("CacheClusterId") or ""
    cluster = backend.cache_clusters.get(cluster_id)
    if cluster is None or cluster.cache_cluster_status == "deleting":
        raise CacheClusterNotFound(cluster_id)
    if cluster.cache_cluster_status != "available":
        raise InvalidCacheClusterState(
            f"Cache cluster {cluster_id} is not in the available state (it is {cluster.cache_cluster_status})."
        )
    node_type = params.get("CacheNodeType")
    if node_type is not None and not (str(node_type).startswith("cache.") and "." in str(node_type)[6:]):
        raise InvalidParameterValueException(f"Invalid CacheNodeType: {node_type}")
    nodes = params.get("NumCacheNodes")
    if nodes is not None:
        nodes = int(nodes)
        if getattr(cluster, "engine", "redis") != "memcached" and nodes != 1:
            raise InvalidParameterValueException(
                "Cluster is a Redis cluster and can have only one node: NumCacheNodes must be 1."
            )
        if not 1 <= nodes <= 40:
            raise InvalidParameterValueException("NumCacheNodes must be between 1 and 40.")
    apply_now = str(params.get("ApplyImmediately", "false")).lower() == "true"

    pending: dict[str, Any] = {}
    if node_type is not None and node_type != cluster.cache_node_type:
        pending["cache_node_type"] = node_type
    if nodes is not None and nodes != getattr(cluster, "num_cache_nodes", 1):
        pending["num_cache_nodes"] = nodes
    shown = {"CacheNodeType": pending.get("cache_node_type"), "NumCacheNodes": pending.get("num_cache_nodes")}
    shown = {k: v for k, v in shown.items() if v is not None}
    if apply_now:
        for attr, value in pending.items():
            setattr(cluster, attr, value)
        cluster.finops_pending = None
        return _Answer(cluster, "modifying" if pending else "available", shown)
    cluster.finops_pending = shown or None
    return _Answer(cluster, cluster.cache_cluster_status, shown)


def install_elasticache_patch() -> None:
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.core.responses import ActionResult
    from moto.elasticache.models import CacheCluster
    from moto.elasticache.responses import ElastiCacheResponse

    def handler(self: Any) -> ActionResult:
        params = {
            "CacheClusterId": self._get_param("CacheClusterId"),
            "CacheNodeType": self._get_param("CacheNodeType"),
            "NumCacheNodes": self._get_param("NumCacheNodes"),
            "ApplyImmediately": self._get_param("ApplyImmediately"),
        }
        return ActionResult({"CacheCluster": modify_cache_cluster(self.elasticache_backend, params)})

    ElastiCacheResponse.modify_cache_cluster = handler
    # A change waiting for the maintenance window shows in every describe.
    CacheCluster.pending_modified_values = property(lambda self: getattr(self, "finops_pending", None))
    _INSTALLED = True
