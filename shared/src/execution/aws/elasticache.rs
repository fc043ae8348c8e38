//! ElastiCache clusters: the node type change (ModifyCacheCluster with
//! ApplyImmediately). DescribeCacheClusters and ListTagsForResource are the
//! state.

use super::{applied, misrouted, poll_until, state, tag_map, Clients};
use crate::domain::execution::{ResourceDetails, ResourceState, ServiceStatus, Step};
use crate::execution::{Applied, StepCall, Target};
use crate::{Error, Result};
use aws_sdk_elasticache::client::Waiters;
use aws_sdk_elasticache::error::ProvideErrorMetadata;
use aws_sdk_elasticache::types::CacheCluster;

async fn describe(c: &Clients, id: &str) -> Result<Option<CacheCluster>> {
    match c
        .elasticache
        .describe_cache_clusters()
        .cache_cluster_id(id)
        .send()
        .await
    {
        Ok(out) => Ok(out.cache_clusters().first().cloned()),
        Err(e) if e.code() == Some("CacheClusterNotFound") => Ok(None),
        Err(e) => Err(Error::from_sdk("DescribeCacheClusters", e)),
    }
}

pub(super) async fn read_state(c: &Clients, t: &Target) -> Result<Option<ResourceState>> {
    let Some(cluster) = describe(c, &t.resource_id).await? else {
        return Ok(None);
    };
    let tags = match cluster.arn() {
        Some(arn) => {
            let out = c
                .elasticache
                .list_tags_for_resource()
                .resource_name(arn)
                .send()
                .await
                .map_err(|e| Error::from_sdk("ListTagsForResource", e))?;
            tag_map(out.tag_list().iter().map(|t| (t.key(), t.value())))
        }
        None => Default::default(),
    };
    let status = cluster.cache_cluster_status().unwrap_or_default();
    Ok(Some(state(
        t,
        tags,
        ResourceDetails::CacheCluster {
            node_type: cluster
                .cache_node_type()
                .ok_or_else(|| Error::Internal("DescribeCacheClusters: no node type".into()))?
                .to_string(),
            num_nodes: cluster
                .num_cache_nodes()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(1),
            status: serde_json::from_value(serde_json::Value::String(status.to_string()))
                .unwrap_or(ServiceStatus::Other),
        },
    )))
}

async fn modify_node_type(c: &Clients, id: &str, to: &str) -> Result<Applied> {
    let answer = match c
        .elasticache
        .modify_cache_cluster()
        .cache_cluster_id(id)
        .cache_node_type(to)
        .apply_immediately(true)
        .send()
        .await
    {
        Ok(out) => applied(&out, None),
        Err(e) => {
            // AWS refuses a modification that changes nothing: a repeat.
            let repeat = e.code() == Some("InvalidParameterCombination")
                && describe(c, id)
                    .await?
                    .is_some_and(|cl| cl.cache_node_type() == Some(to));
            if !repeat {
                return Err(Error::from_sdk("ModifyCacheCluster", e));
            }
            Applied::default()
        }
    };
    let last = c
        .elasticache
        .wait_until_cache_cluster_available()
        .cache_cluster_id(id)
        .wait(c.max_wait)
        .await
        .map_err(|e| Error::from_waiter("CacheClusterAvailable", e))?;
    let serves = |cl: &CacheCluster| cl.cache_node_type() == Some(to);
    let shown = last
        .as_result()
        .ok()
        .and_then(|o| o.cache_clusters().first().cloned());
    // Right after the call the cluster may still read `available` with
    // its old node type.
    if !shown.as_ref().is_some_and(serves) {
        poll_until("ModifyCacheCluster", c.max_wait, || async {
            Ok(describe(c, id)
                .await?
                .is_some_and(|cl| serves(&cl) && cl.cache_cluster_status() == Some("available")))
        })
        .await?;
    }
    Ok(answer)
}

pub(super) async fn apply(c: &Clients, call: StepCall<'_>) -> Result<Applied> {
    match call.step {
        Step::CacheModifyNodeType { to, .. } => {
            modify_node_type(c, &call.target.resource_id, to).await
        }
        other => Err(misrouted(other)),
    }
}
