//! DynamoDB tables (ListTables, DescribeTable and ListTagsOfResource per
//! table) and their auto scaling (Application Auto Scaling
//! DescribeScalableTargets, one listing for the whole unit).

use super::{pages, UnitClients};
use crate::domain::{Resource, Service};
use crate::{Error, Result};
use aws_sdk_applicationautoscaling::types::{ScalableTarget, ServiceNamespace};
use aws_sdk_dynamodb::types::{BillingMode, TableDescription};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// ListTables' Limit: at most 100.
const PAGE: usize = 100;
/// DescribeScalableTargets' MaxResults: at most 50.
const TARGETS_PAGE: usize = 50;
const CONCURRENCY: usize = 8;

pub(super) async fn discover(c: &UnitClients) -> Result<(Vec<Resource>, BTreeMap<String, u64>)> {
    let config = aws_sdk_dynamodb::config::Builder::from(&c.config)
        .interceptor(c.counter.clone())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    let scaling_config = aws_sdk_applicationautoscaling::config::Builder::from(&c.config)
        .interceptor(c.counter.clone())
        .build();
    let names: Vec<String> = client
        .list_tables()
        .limit(PAGE as i32)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| Error::from_sdk("ListTables", e))?;
    let targets: Vec<ScalableTarget> =
        aws_sdk_applicationautoscaling::Client::from_conf(scaling_config)
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Dynamodb)
            .max_results(TARGETS_PAGE as i32)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| Error::from_sdk("DescribeScalableTargets", e))?;
    // Tables (not indexes) with a scalable dimension: `table/<name>`.
    let scaled: BTreeSet<String> = targets
        .iter()
        .filter_map(|t| t.resource_id().strip_prefix("table/"))
        .filter(|rest| !rest.contains('/'))
        .map(str::to_string)
        .collect();
    let described: Vec<(Option<TableDescription>, BTreeMap<String, String>)> =
        stream::iter(names.clone())
            .map(|name| {
                let client = client.clone();
                async move {
                    let table = client
                        .describe_table()
                        .table_name(&name)
                        .send()
                        .await
                        .map_err(|e| Error::from_sdk("DescribeTable", e))?
                        .table;
                    let mut tags = BTreeMap::new();
                    if let Some(arn) = table.as_ref().and_then(|t| t.table_arn()) {
                        let out = client
                            .list_tags_of_resource()
                            .resource_arn(arn)
                            .send()
                            .await
                            .map_err(|e| Error::from_sdk("ListTagsOfResource", e))?;
                        tags = out
                            .tags()
                            .iter()
                            .map(|t| (t.key().to_string(), t.value().to_string()))
                            .collect();
                    }
                    Ok::<_, Error>((table, tags))
                }
            })
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
    let minimum = BTreeMap::from([
        ("DynamoDB:ListTables".to_string(), pages(names.len(), PAGE)),
        ("DynamoDB:DescribeTable".to_string(), names.len() as u64),
        (
            "DynamoDB:ListTagsOfResource".to_string(),
            names.len() as u64,
        ),
        (
            "Application Auto Scaling:DescribeScalableTargets".to_string(),
            pages(targets.len(), TARGETS_PAGE),
        ),
    ]);
    let resources = described
        .into_iter()
        .filter_map(|(t, tags)| table(c, t?, tags, &scaled))
        .collect();
    Ok((resources, minimum))
}

fn table(
    c: &UnitClients,
    t: TableDescription,
    tags: BTreeMap<String, String>,
    scaled: &BTreeSet<String>,
) -> Option<Resource> {
    let name = t.table_name()?.to_string();
    let mut r = c.resource(Service::DynamoDb, &name, "dynamodb:DescribeTable");
    // A table created before billing modes existed reports no summary: it
    // is provisioned.
    let mode = t
        .billing_mode_summary()
        .and_then(|b| b.billing_mode())
        .cloned()
        .unwrap_or(BillingMode::Provisioned);
    r.resource_type = Some(mode.as_str().to_string());
    r.tags = tags;
    let a = &mut r.attributes;
    if mode == BillingMode::Provisioned {
        let p = t.provisioned_throughput();
        a.insert(
            "provisionedReadCapacityUnits".into(),
            json!(p.and_then(|p| p.read_capacity_units())),
        );
        a.insert(
            "provisionedWriteCapacityUnits".into(),
            json!(p.and_then(|p| p.write_capacity_units())),
        );
    }
    a.insert("autoScaling".into(), json!(scaled.contains(&name)));
    a.insert("sizeBytes".into(), json!(t.table_size_bytes()));
    a.insert("itemCount".into(), json!(t.item_count()));
    a.insert(
        "tableClass".into(),
        json!(t
            .table_class_summary()
            .and_then(|s| s.table_class())
            .map_or("STANDARD", |c| c.as_str())),
    );
    Some(r)
}
