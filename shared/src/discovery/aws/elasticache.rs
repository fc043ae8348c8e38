//! ElastiCache clusters and replication groups (DescribeCacheClusters,
//! DescribeReplicationGroups, ListTagsForResource per cluster: the listing
//! carries no tags).

use super::{pages, UnitClients, SECURITY_GROUPS};
use crate::domain::{relation_kinds, Relation, Resource, Service};
use crate::{Error, Result};
use aws_sdk_elasticache::types::{CacheCluster, ReplicationGroup};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

/// DescribeCacheClusters' and DescribeReplicationGroups' MaxRecords: 20 to 100.
const PAGE: usize = 100;
/// Tag reads in flight at once.
const CONCURRENCY: usize = 8;

pub(super) async fn discover(c: &UnitClients) -> Result<(Vec<Resource>, BTreeMap<String, u64>)> {
    let config = aws_sdk_elasticache::config::Builder::from(&c.config)
        .interceptor(c.counter.clone())
        .build();
    let client = aws_sdk_elasticache::Client::from_conf(config);
    let clusters: Vec<CacheCluster> = client
        .describe_cache_clusters()
        .max_records(PAGE as i32)
        .show_cache_node_info(true)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| Error::from_sdk("DescribeCacheClusters", e))?;
    let groups: Vec<ReplicationGroup> = client
        .describe_replication_groups()
        .max_records(PAGE as i32)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| Error::from_sdk("DescribeReplicationGroups", e))?;
    // Which cluster is each group's primary, from the node groups' roles.
    let mut primary_of: HashMap<String, String> = HashMap::new();
    for g in &groups {
        for ng in g.node_groups() {
            for m in ng.node_group_members() {
                if m.current_role() == Some("primary") {
                    if let (Some(gid), Some(cid)) = (g.replication_group_id(), m.cache_cluster_id())
                    {
                        primary_of.insert(gid.to_string(), cid.to_string());
                    }
                }
            }
        }
    }
    let arns: Vec<Option<String>> = clusters
        .iter()
        .map(|k| k.arn().map(str::to_string))
        .collect();
    let tag_calls = arns.iter().flatten().count();
    let tags: Vec<BTreeMap<String, String>> = stream::iter(arns)
        .map(|arn| {
            let client = client.clone();
            async move {
                let Some(arn) = arn else {
                    return Ok(BTreeMap::new());
                };
                let out = client
                    .list_tags_for_resource()
                    .resource_name(arn)
                    .send()
                    .await
                    .map_err(|e| Error::from_sdk("ListTagsForResource", e))?;
                Ok::<_, Error>(
                    out.tag_list()
                        .iter()
                        .filter_map(|t| {
                            Some((t.key()?.to_string(), t.value().unwrap_or("").to_string()))
                        })
                        .collect(),
                )
            }
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    let minimum = BTreeMap::from([
        (
            "ElastiCache:DescribeCacheClusters".to_string(),
            pages(clusters.len(), PAGE),
        ),
        (
            "ElastiCache:DescribeReplicationGroups".to_string(),
            pages(groups.len(), PAGE),
        ),
        (
            "ElastiCache:ListTagsForResource".to_string(),
            tag_calls as u64,
        ),
    ]);
    let resources = clusters
        .iter()
        .zip(tags)
        .filter_map(|(k, t)| cluster(c, k, t, &primary_of))
        .collect();
    Ok((resources, minimum))
}

fn cluster(
    c: &UnitClients,
    k: &CacheCluster,
    tags: BTreeMap<String, String>,
    primary_of: &HashMap<String, String>,
) -> Option<Resource> {
    let id = k.cache_cluster_id()?;
    let mut r = c.resource(
        Service::ElastiCache,
        id,
        "elasticache:DescribeCacheClusters",
    );
    r.resource_type = k.cache_node_type().map(str::to_string);
    r.tags = tags;
    let a = &mut r.attributes;
    a.insert("engine".into(), json!(k.engine()));
    a.insert("engineVersion".into(), json!(k.engine_version()));
    a.insert("numCacheNodes".into(), json!(k.num_cache_nodes()));
    a.insert("status".into(), json!(k.cache_cluster_status()));
    let groups: Vec<&str> = k
        .security_groups()
        .iter()
        .filter_map(|g| g.security_group_id())
        .collect();
    a.insert(SECURITY_GROUPS.into(), json!(groups));
    if let Some(group) = k.replication_group_id() {
        a.insert("replicationGroupId".into(), json!(group));
        match primary_of.get(group) {
            Some(primary) if primary != id => r.relations.push(
                Relation::new(relation_kinds::REPLICA_OF, primary.clone()).with_evidence(format!(
                    "DescribeReplicationGroups: {id} is a replica of {primary} in {group}"
                )),
            ),
            _ => {}
        }
    }
    Some(r)
}
