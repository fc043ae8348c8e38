//! S3 buckets: a lifecycle rule added next to the bucket's own rules, and
//! removed again on rollback. S3 has no call that adds one rule: the
//! configuration is read (GetBucketLifecycleConfiguration; none is
//! NoSuchLifecycleConfiguration) and written back whole with ours added,
//! so the user's rules are always kept. GetBucketTagging and the lifecycle
//! rules are the state.

use super::{applied, misrouted, state, Clients};
use crate::domain::execution::{ResourceDetails, ResourceState, Step, StorageClass};
use crate::execution::{Applied, StepCall, Target};
use crate::{Error, Result};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ExpirationStatus, LifecycleRule, LifecycleRuleFilter, Transition,
    TransitionDefaultMinimumObjectSize, TransitionStorageClass,
};

/// The bucket's lifecycle rules and the default minimum object size they
/// apply to (kept as the user set it when the rules are written back).
struct Lifecycle {
    rules: Vec<LifecycleRule>,
    min_size: Option<TransitionDefaultMinimumObjectSize>,
}

/// `None` when the bucket does not exist.
async fn lifecycle(c: &Clients, bucket: &str) -> Result<Option<Lifecycle>> {
    match c
        .s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => Ok(Some(Lifecycle {
            min_size: out.transition_default_minimum_object_size().cloned(),
            rules: out.rules.unwrap_or_default(),
        })),
        Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => Ok(Some(Lifecycle {
            rules: Vec::new(),
            min_size: None,
        })),
        Err(e) if e.code() == Some("NoSuchBucket") => Ok(None),
        Err(e) => Err(Error::from_sdk("GetBucketLifecycleConfiguration", e)),
    }
}

pub(super) async fn read_state(c: &Clients, t: &Target) -> Result<Option<ResourceState>> {
    let bucket = t.resource_id.as_str();
    let tags = match c.s3.get_bucket_tagging().bucket(bucket).send().await {
        Ok(out) => out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
        Err(e) if e.code() == Some("NoSuchTagSet") => Default::default(),
        Err(e) if e.code() == Some("NoSuchBucket") => return Ok(None),
        Err(e) => return Err(Error::from_sdk("GetBucketTagging", e)),
    };
    let Some(current) = lifecycle(c, bucket).await? else {
        return Ok(None);
    };
    Ok(Some(state(
        t,
        tags,
        ResourceDetails::S3Bucket {
            lifecycle_rule_ids: current
                .rules
                .iter()
                .filter_map(|r| r.id().map(str::to_string))
                .collect(),
        },
    )))
}

fn rule(id: &str, class: StorageClass, days: u32) -> Result<LifecycleRule> {
    let days = i32::try_from(days).map_err(|_| Error::Validation(format!("{days} days")))?;
    LifecycleRule::builder()
        .id(id)
        .status(ExpirationStatus::Enabled)
        // An empty prefix: every object of the bucket.
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .transitions(
            Transition::builder()
                .days(days)
                .storage_class(TransitionStorageClass::from(class.as_str()))
                .build(),
        )
        .build()
        .map_err(|e| Error::Internal(format!("LifecycleRule: {e}")))
}

async fn write(c: &Clients, bucket: &str, l: Lifecycle) -> Result<Applied> {
    if l.rules.is_empty() {
        let out =
            c.s3.delete_bucket_lifecycle()
                .bucket(bucket)
                .send()
                .await
                .map_err(|e| Error::from_sdk("DeleteBucketLifecycle", e))?;
        return Ok(applied(&out, None));
    }
    let config = BucketLifecycleConfiguration::builder()
        .set_rules(Some(l.rules))
        .build()
        .map_err(|e| Error::Internal(format!("BucketLifecycleConfiguration: {e}")))?;
    let out =
        c.s3.put_bucket_lifecycle_configuration()
            .bucket(bucket)
            .lifecycle_configuration(config)
            .set_transition_default_minimum_object_size(l.min_size)
            .send()
            .await
            .map_err(|e| Error::from_sdk("PutBucketLifecycleConfiguration", e))?;
    Ok(applied(&out, None))
}

pub(super) async fn apply(c: &Clients, call: StepCall<'_>) -> Result<Applied> {
    let bucket = call.target.resource_id.as_str();
    let mut current = lifecycle(c, bucket)
        .await?
        .ok_or_else(|| Error::not_found("S3 bucket", bucket))?;
    match call.step {
        Step::S3AddLifecycleRule {
            rule_id,
            storage_class,
            transition_days,
        } => {
            // Present already: a repeat of this step.
            if current.rules.iter().any(|r| r.id() == Some(rule_id)) {
                return Ok(Applied::default());
            }
            current
                .rules
                .push(rule(rule_id, *storage_class, *transition_days)?);
            write(c, bucket, current).await
        }
        Step::S3RemoveLifecycleRule { rule_id } => {
            let before = current.rules.len();
            current.rules.retain(|r| r.id() != Some(rule_id.as_str()));
            if current.rules.len() == before {
                return Ok(Applied::default());
            }
            write(c, bucket, current).await
        }
        other => Err(misrouted(other)),
    }
}
