//! Lambda functions (ListFunctions; ListTags per function, as the listing
//! carries none) and their event source mappings (ListEventSourceMappings).

use super::{pages, UnitClients, SECURITY_GROUPS};
use crate::domain::{relation_kinds, Relation, Resource, Service};
use crate::{Error, Result};
use aws_sdk_lambda::types::{EventSourceMappingConfiguration, FunctionConfiguration};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::json;
use std::collections::BTreeMap;

/// ListFunctions returns at most 50 functions a page.
const FUNCTIONS_PAGE: usize = 50;
/// ListEventSourceMappings returns at most 100 a page.
const MAPPINGS_PAGE: usize = 100;
const CONCURRENCY: usize = 8;

pub(super) async fn discover(c: &UnitClients) -> Result<(Vec<Resource>, BTreeMap<String, u64>)> {
    let config = aws_sdk_lambda::config::Builder::from(&c.config)
        .interceptor(c.counter.clone())
        .build();
    let client = aws_sdk_lambda::Client::from_conf(config);
    let functions: Vec<FunctionConfiguration> = client
        .list_functions()
        .max_items(FUNCTIONS_PAGE as i32)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| Error::from_sdk("ListFunctions", e))?;
    let mappings: Vec<EventSourceMappingConfiguration> = client
        .list_event_source_mappings()
        .max_items(MAPPINGS_PAGE as i32)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| Error::from_sdk("ListEventSourceMappings", e))?;
    let arns: Vec<Option<String>> = functions
        .iter()
        .map(|f| f.function_arn().map(str::to_string))
        .collect();
    let tag_calls = arns.iter().flatten().count() as u64;
    let tags: Vec<BTreeMap<String, String>> = stream::iter(arns)
        .map(|arn| {
            let client = client.clone();
            async move {
                let Some(arn) = arn else {
                    return Ok(BTreeMap::new());
                };
                let out = client
                    .list_tags()
                    .resource(arn)
                    .send()
                    .await
                    .map_err(|e| Error::from_sdk("ListTags", e))?;
                Ok::<_, Error>(out.tags.unwrap_or_default().into_iter().collect())
            }
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    let minimum = BTreeMap::from([
        (
            "Lambda:ListFunctions".to_string(),
            pages(functions.len(), FUNCTIONS_PAGE),
        ),
        (
            "Lambda:ListEventSourceMappings".to_string(),
            pages(mappings.len(), MAPPINGS_PAGE),
        ),
        ("Lambda:ListTags".to_string(), tag_calls),
    ]);
    let resources = functions
        .iter()
        .zip(tags)
        .filter_map(|(f, t)| function(c, f, t, &mappings))
        .collect();
    Ok((resources, minimum))
}

/// The inventory id of an event source: a DynamoDB stream's table, an SQS
/// queue's or a Kinesis stream's name; the ARN otherwise.
fn source_id(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match (parts.get(2), parts.get(5)) {
        (Some(&"dynamodb"), Some(rest)) => rest
            .strip_prefix("table/")
            .and_then(|t| t.split('/').next())
            .unwrap_or(rest)
            .to_string(),
        (Some(&"sqs"), Some(name)) => name.to_string(),
        (Some(&"kinesis"), Some(rest)) => rest.strip_prefix("stream/").unwrap_or(rest).to_string(),
        _ => arn.to_string(),
    }
}

fn function(
    c: &UnitClients,
    f: &FunctionConfiguration,
    tags: BTreeMap<String, String>,
    mappings: &[EventSourceMappingConfiguration],
) -> Option<Resource> {
    let name = f.function_name()?;
    let mut r = c.resource(Service::Lambda, name, "lambda:ListFunctions");
    r.memory_mb = f
        .memory_size()
        .and_then(|m| u32::try_from(m).ok())
        .filter(|m| *m > 0);
    r.tags = tags;
    let arch = f.architectures().first().map_or("x86_64", |a| a.as_str());
    let a = &mut r.attributes;
    a.insert("memorySize".into(), json!(f.memory_size()));
    a.insert("architecture".into(), json!(arch));
    a.insert("runtime".into(), json!(f.runtime().map(|r| r.as_str())));
    a.insert("timeout".into(), json!(f.timeout()));
    a.insert(
        "packageType".into(),
        json!(f.package_type().map(|p| p.as_str())),
    );
    let groups: Vec<&str> = f
        .vpc_config()
        .map(|v| v.security_group_ids().iter().map(String::as_str).collect())
        .unwrap_or_default();
    a.insert(SECURITY_GROUPS.into(), json!(groups));
    let arn = f.function_arn().unwrap_or(name);
    for m in mappings {
        let mine = m.function_arn().is_some_and(|fa| {
            fa == arn || fa.rsplit(':').next() == Some(name) || fa.starts_with(&format!("{arn}:"))
        });
        let Some(source) = m.event_source_arn().filter(|_| mine) else {
            continue;
        };
        let target = source_id(source);
        if r.relations.iter().any(|x| x.target_id == target) {
            continue;
        }
        r.relations.push(
            Relation::new(relation_kinds::USES, target).with_evidence(format!(
                "ListEventSourceMappings: {} maps {source} to {name} ({})",
                m.uuid().unwrap_or("?"),
                m.state().unwrap_or("?")
            )),
        );
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::source_id;

    #[test]
    fn event_sources_are_named_as_the_inventory_names_them() {
        assert_eq!(
            source_id("arn:aws:dynamodb:us-east-1:1:table/orders/stream/2024-01-01T00:00:00.000"),
            "orders"
        );
        assert_eq!(source_id("arn:aws:sqs:us-east-1:1:jobs"), "jobs");
        assert_eq!(
            source_id("arn:aws:kinesis:us-east-1:1:stream/clicks"),
            "clicks"
        );
        assert_eq!(source_id("arn:aws:kafka:x"), "arn:aws:kafka:x");
    }
}
