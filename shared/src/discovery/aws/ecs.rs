//! ECS services (ListClusters, ListServices per cluster, DescribeServices
//! ten at a time with their tags, DescribeTaskDefinition once per task
//! definition for its CPU and memory).

use super::{pages, UnitClients, SECURITY_GROUPS};
use crate::domain::{relation_kinds, Relation, Resource, Service};
use crate::{Error, Result};
use aws_sdk_ecs::types::{Service as EcsService, ServiceField, TaskDefinition};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// ListClusters' and ListServices' maxResults: 1 to 100.
const PAGE: usize = 100;
/// DescribeServices takes at most 10 services a call.
const DESCRIBE_BATCH: usize = 10;
const CONCURRENCY: usize = 8;

/// The last path segment of an ECS ARN (`.../cluster/prod` -> `prod`).
fn name_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

pub(super) async fn discover(c: &UnitClients) -> Result<(Vec<Resource>, BTreeMap<String, u64>)> {
    let config = aws_sdk_ecs::config::Builder::from(&c.config)
        .interceptor(c.counter.clone())
        .build();
    let client = aws_sdk_ecs::Client::from_conf(config);
    let clusters: Vec<String> = client
        .list_clusters()
        .max_results(PAGE as i32)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| Error::from_sdk("ListClusters", e))?;
    let mut min_list_services = 0u64;
    let mut min_describe = 0u64;
    let mut services: Vec<EcsService> = Vec::new();
    for cluster in &clusters {
        let arns: Vec<String> = client
            .list_services()
            .cluster(cluster)
            .max_results(PAGE as i32)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| Error::from_sdk("ListServices", e))?;
        min_list_services += pages(arns.len(), PAGE);
        min_describe += arns.len().div_ceil(DESCRIBE_BATCH) as u64;
        let batches: Vec<Vec<String>> = arns
            .chunks(DESCRIBE_BATCH)
            .map(<[String]>::to_vec)
            .collect();
        let described: Vec<Vec<EcsService>> = stream::iter(batches)
            .map(|batch| {
                let client = client.clone();
                let cluster = cluster.clone();
                async move {
                    let out = client
                        .describe_services()
                        .cluster(cluster)
                        .set_services(Some(batch))
                        .include(ServiceField::Tags)
                        .send()
                        .await
                        .map_err(|e| Error::from_sdk("DescribeServices", e))?;
                    Ok::<_, Error>(out.services.unwrap_or_default())
                }
            })
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        services.extend(described.into_iter().flatten());
    }
    let task_defs: BTreeSet<String> = services
        .iter()
        .filter_map(|s| s.task_definition().map(str::to_string))
        .collect();
    let described: Vec<(String, Option<TaskDefinition>)> = stream::iter(task_defs.clone())
        .map(|arn| {
            let client = client.clone();
            async move {
                let out = client
                    .describe_task_definition()
                    .task_definition(&arn)
                    .send()
                    .await
                    .map_err(|e| Error::from_sdk("DescribeTaskDefinition", e))?;
                Ok::<_, Error>((arn, out.task_definition))
            }
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    let defs: HashMap<String, TaskDefinition> = described
        .into_iter()
        .filter_map(|(arn, d)| Some((arn, d?)))
        .collect();
    let minimum = BTreeMap::from([
        ("ECS:ListClusters".to_string(), pages(clusters.len(), PAGE)),
        ("ECS:ListServices".to_string(), min_list_services),
        ("ECS:DescribeServices".to_string(), min_describe),
        (
            "ECS:DescribeTaskDefinition".to_string(),
            task_defs.len() as u64,
        ),
    ]);
    let resources = services
        .iter()
        .filter_map(|s| service(c, s, &defs))
        .collect();
    Ok((resources, minimum))
}

fn service(
    c: &UnitClients,
    s: &EcsService,
    defs: &HashMap<String, TaskDefinition>,
) -> Option<Resource> {
    let name = s.service_name()?;
    let cluster = name_of(s.cluster_arn()?);
    let id = format!("{cluster}/{name}");
    let mut r = c.resource(Service::Ecs, &id, "ecs:DescribeServices");
    r.tags = s
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect();
    let a = &mut r.attributes;
    a.insert("cluster".into(), json!(cluster));
    a.insert(
        "launchType".into(),
        json!(s.launch_type().map(|l| l.as_str())),
    );
    a.insert("desiredCount".into(), json!(s.desired_count()));
    a.insert("runningCount".into(), json!(s.running_count()));
    a.insert("taskDefinition".into(), json!(s.task_definition()));
    if let Some(def) = s.task_definition().and_then(|t| defs.get(t)) {
        // Task-level CPU units and MiB, as strings in the API ("1024").
        if let Some(cpu) = def.cpu().and_then(|v| v.parse::<u32>().ok()) {
            a.insert("cpu".into(), json!(cpu));
        }
        if let Some(mem) = def.memory().and_then(|v| v.parse::<u32>().ok()) {
            a.insert("memory".into(), json!(mem));
            r.memory_mb = Some(mem);
        }
        if let Some(arch) = def.runtime_platform().and_then(|p| p.cpu_architecture()) {
            r.attributes
                .insert("cpuArchitecture".into(), json!(arch.as_str()));
        }
    }
    let groups: Vec<&str> = s
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration())
        .map(|v| v.security_groups().iter().map(String::as_str).collect())
        .unwrap_or_default();
    r.attributes.insert(SECURITY_GROUPS.into(), json!(groups));
    r.relations.push(
        Relation::new(relation_kinds::MEMBER_OF, cluster).with_evidence(format!(
            "DescribeServices: {name} runs in cluster {cluster}"
        )),
    );
    for lb in s.load_balancers() {
        if let Some(tg) = lb.target_group_arn() {
            r.relations.push(
                Relation::new(relation_kinds::REGISTERED_WITH, tg).with_evidence(format!(
                    "DescribeServices: {name} registers {}:{} with {tg}",
                    lb.container_name().unwrap_or("?"),
                    lb.container_port().unwrap_or_default()
                )),
            );
        }
    }
    Some(r)
}
