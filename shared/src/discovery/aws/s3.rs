//! S3 buckets of the unit's region (ListBuckets filtered by region;
//! GetBucketLocation where the listing does not say; GetBucketTagging and
//! GetBucketLifecycleConfiguration per bucket).

use super::{pages, UnitClients};
use crate::domain::{Resource, Service};
use crate::{Error, Result};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::Bucket;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::json;
use std::collections::BTreeMap;

/// ListBuckets' MaxBuckets: at most 10,000.
const PAGE: usize = 10_000;
const CONCURRENCY: usize = 8;

/// GetBucketLocation's answer as a region name (none is us-east-1, `EU` the
/// legacy name of eu-west-1).
fn location_region(constraint: Option<&str>) -> String {
    match constraint {
        None | Some("") => "us-east-1".into(),
        Some("EU") => "eu-west-1".into(),
        Some(r) => r.into(),
    }
}

struct Facts {
    region: String,
    tags: BTreeMap<String, String>,
    lifecycle: Vec<serde_json::Value>,
}

pub(super) async fn discover(c: &UnitClients) -> Result<(Vec<Resource>, BTreeMap<String, u64>)> {
    let config = aws_sdk_s3::config::Builder::from(&c.config)
        .interceptor(c.counter.clone())
        .build();
    let client = aws_sdk_s3::Client::from_conf(config);
    let region = c.unit.region.clone();
    let buckets: Vec<Bucket> = client
        .list_buckets()
        .max_buckets(PAGE as i32)
        .bucket_region(&region)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| Error::from_sdk("ListBuckets", e))?;
    let listed = buckets.len();
    let facts: Vec<Option<(String, Facts)>> = stream::iter(buckets)
        .map(|b| {
            let client = client.clone();
            let region = region.clone();
            async move {
                let Some(name) = b.name().map(str::to_string) else {
                    return Ok(None);
                };
                let bucket_region = match b.bucket_region() {
                    Some(r) => r.to_string(),
                    None => {
                        let out = client
                            .get_bucket_location()
                            .bucket(&name)
                            .send()
                            .await
                            .map_err(|e| Error::from_sdk("GetBucketLocation", e))?;
                        location_region(out.location_constraint().map(|l| l.as_str()))
                    }
                };
                if bucket_region != region {
                    return Ok(None);
                }
                let tags = match client.get_bucket_tagging().bucket(&name).send().await {
                    Ok(out) => out
                        .tag_set()
                        .iter()
                        .map(|t| (t.key().to_string(), t.value().to_string()))
                        .collect(),
                    Err(e) if e.code() == Some("NoSuchTagSet") => BTreeMap::new(),
                    Err(e) => return Err(Error::from_sdk("GetBucketTagging", e)),
                };
                let lifecycle = match client
                    .get_bucket_lifecycle_configuration()
                    .bucket(&name)
                    .send()
                    .await
                {
                    Ok(out) => out
                        .rules()
                        .iter()
                        .map(|rule| {
                            json!({
                                "id": rule.id(),
                                "enabled": rule.status().as_str() == "Enabled",
                                "transitions": rule
                                    .transitions()
                                    .iter()
                                    .map(|t| json!({
                                        "days": t.days(),
                                        "storageClass": t.storage_class().map(|s| s.as_str()),
                                    }))
                                    .collect::<Vec<_>>(),
                                "expirationDays": rule.expiration().and_then(|e| e.days()),
                            })
                        })
                        .collect(),
                    Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => Vec::new(),
                    Err(e) => return Err(Error::from_sdk("GetBucketLifecycleConfiguration", e)),
                };
                Ok::<_, Error>(Some((
                    name,
                    Facts {
                        region: bucket_region,
                        tags,
                        lifecycle,
                    },
                )))
            }
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    let mine = facts.iter().flatten().count() as u64;
    let minimum = BTreeMap::from([
        ("S3:ListBuckets".to_string(), pages(listed, PAGE)),
        ("S3:GetBucketTagging".to_string(), mine),
        ("S3:GetBucketLifecycleConfiguration".to_string(), mine),
    ]);
    let resources = facts
        .into_iter()
        .flatten()
        .map(|(name, f)| {
            let mut r = c.resource(Service::S3, name, "s3:ListBuckets");
            r.region = f.region;
            r.resource_type = Some("STANDARD".into());
            r.tags = f.tags;
            r.attributes
                .insert("lifecycleRules".into(), json!(f.lifecycle));
            r
        })
        .collect();
    Ok((resources, minimum))
}

#[cfg(test)]
mod tests {
    #[test]
    fn bucket_locations_name_regions() {
        assert_eq!(super::location_region(None), "us-east-1");
        assert_eq!(super::location_region(Some("EU")), "eu-west-1");
        assert_eq!(super::location_region(Some("eu-central-1")), "eu-central-1");
    }
}
