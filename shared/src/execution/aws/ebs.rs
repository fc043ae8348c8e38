//! EBS volumes: a final snapshot, deletion of an unattached volume, a type
//! change (ModifyVolume), and the rollback of a deletion (a new volume from
//! the snapshot). DescribeVolumes is the state.

use super::{
    applied, dry_answer, key_tag, misrouted, output_of, poll_until, state, tag_map, Clients,
    KEY_TAG,
};
use crate::domain::execution::{ResourceDetails, ResourceState, Step, VolumeState};
use crate::execution::{Applied, DryRun, StepCall, Target};
use crate::{Error, Result};
use aws_sdk_ec2::client::Waiters;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{
    Filter, ResourceType, Snapshot, Tag, TagSpecification, Volume, VolumeModificationState,
    VolumeType,
};
use std::collections::BTreeMap;

/// The volume a snapshot was taken of, and which one a new volume replaces.
const SOURCE_TAG: &str = "finops:source-volume";
/// EC2 allows 50 tags a resource.
const MAX_TAGS: usize = 50;

fn not_found(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("InvalidVolume.NotFound" | "InvalidVolume.Malformed")
    )
}

async fn describe(c: &Clients, id: &str) -> Result<Option<Volume>> {
    match c.ec2.describe_volumes().volume_ids(id).send().await {
        Ok(out) => Ok(out
            .volumes()
            .iter()
            .find(|v| v.volume_id() == Some(id))
            .cloned()),
        Err(e) if not_found(e.code()) => Ok(None),
        Err(e) => Err(Error::from_sdk("DescribeVolumes", e)),
    }
}

fn volume_state(s: &aws_sdk_ec2::types::VolumeState) -> Result<VolumeState> {
    use aws_sdk_ec2::types::VolumeState as S;
    Ok(match s {
        S::Available => VolumeState::Available,
        S::Creating => VolumeState::Creating,
        S::Deleted => VolumeState::Deleted,
        S::Deleting => VolumeState::Deleting,
        S::Error => VolumeState::Error,
        S::InUse => VolumeState::InUse,
        other => {
            return Err(Error::Internal(format!(
                "DescribeVolumes: unknown volume state {}",
                other.as_str()
            )))
        }
    })
}

fn tags(list: &[Tag]) -> BTreeMap<String, String> {
    tag_map(list.iter().map(|t| (t.key(), t.value())))
}

fn small(v: Option<i32>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok())
}

pub(super) async fn read_state(c: &Clients, t: &Target) -> Result<Option<ResourceState>> {
    let Some(v) = describe(c, &t.resource_id).await? else {
        return Ok(None);
    };
    let missing = |what: &str| Error::Internal(format!("DescribeVolumes: no {what}"));
    Ok(Some(state(
        t,
        tags(v.tags()),
        ResourceDetails::EbsVolume {
            volume_type: v
                .volume_type()
                .map(|t| t.as_str().to_string())
                .ok_or_else(|| missing("volume type"))?,
            size_gib: small(v.size()).ok_or_else(|| missing("size"))?,
            iops: small(v.iops()),
            throughput: small(v.throughput()),
            state: volume_state(v.state().ok_or_else(|| missing("state"))?)?,
            availability_zone: v
                .availability_zone()
                .ok_or_else(|| missing("availability zone"))?
                .to_string(),
        },
    )))
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

fn spec(kind: ResourceType, tags: Vec<Tag>) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(tags))
        .build()
}

/// The volume's own tags (AWS reserves `aws:`), as many as fit next to `ours`.
fn user_tags(from: &BTreeMap<String, String>, ours: usize) -> Vec<Tag> {
    from.iter()
        .filter(|(k, _)| !k.starts_with("aws:") && !matches!(k.as_str(), KEY_TAG | SOURCE_TAG))
        .take(MAX_TAGS.saturating_sub(ours))
        .map(|(k, v)| tag(k, v))
        .collect()
}

async fn snapshot_with_key(c: &Clients, key: &str) -> Result<Option<Snapshot>> {
    let out = c
        .ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            Filter::builder()
                .name(format!("tag:{KEY_TAG}"))
                .values(key)
                .build(),
        )
        .send()
        .await
        .map_err(|e| Error::from_sdk("DescribeSnapshots", e))?;
    Ok(out.snapshots().first().cloned())
}

async fn wait_snapshot(c: &Clients, id: &str) -> Result<()> {
    c.ec2
        .wait_until_snapshot_completed()
        .snapshot_ids(id)
        .wait(c.max_wait)
        .await
        .map(|_| ())
        .map_err(|e| Error::from_waiter("SnapshotCompleted", e))
}

/// A snapshot tagged with the step's key (CreateSnapshot takes no client
/// token: the tag is what a repeat looks up), carrying the volume's tags
/// so that a volume recreated from it gets them back.
async fn snapshot(c: &Clients, call: StepCall<'_>) -> Result<Applied> {
    let id = call.target.resource_id.as_str();
    let key = key_tag(call.key);
    if let Some(found) = snapshot_with_key(c, &key).await? {
        let snap = found.snapshot_id().unwrap_or_default().to_string();
        wait_snapshot(c, &snap).await?;
        return Ok(Applied {
            aws_request_id: None,
            output: Some(snap),
        });
    }
    let volume = describe(c, id)
        .await?
        .ok_or_else(|| Error::not_found("EBS volume", id))?;
    let ours = vec![tag(KEY_TAG, &key), tag(SOURCE_TAG, id)];
    let mut all = user_tags(&tags(volume.tags()), ours.len());
    all.extend(ours);
    let out = c
        .ec2
        .create_snapshot()
        .volume_id(id)
        .description(format!("final snapshot of {id} before its deletion"))
        .tag_specifications(spec(ResourceType::Snapshot, all))
        .send()
        .await
        .map_err(|e| Error::from_sdk("CreateSnapshot", e))?;
    let snap = out
        .snapshot_id()
        .ok_or_else(|| Error::Internal("CreateSnapshot: no snapshot id".into()))?
        .to_string();
    wait_snapshot(c, &snap).await?;
    Ok(applied(&out, Some(snap)))
}

fn modified(s: Option<&VolumeModificationState>) -> Result<bool> {
    match s {
        // AWS bills and serves the new type from `optimizing` on.
        Some(VolumeModificationState::Optimizing | VolumeModificationState::Completed) => Ok(true),
        Some(VolumeModificationState::Failed) => Err(Error::Internal(
            "ModifyVolume: AWS reports the modification failed".into(),
        )),
        _ => Ok(false),
    }
}

/// ModifyVolume, then (it has no waiter) DescribeVolumesModifications
/// until AWS serves the new type. A repeat finds the volume at the type
/// already: AWS refuses a second modification within six hours.
async fn modify_type(c: &Clients, id: &str, to: &str) -> Result<Applied> {
    let (done, answer) = match c
        .ec2
        .modify_volume()
        .volume_id(id)
        .volume_type(VolumeType::from(to))
        .send()
        .await
    {
        Ok(out) => {
            let shown = out
                .volume_modification()
                .and_then(|m| m.modification_state());
            (modified(shown)?, applied(&out, None))
        }
        Err(e) => {
            let at_type = describe(c, id)
                .await?
                .is_some_and(|v| v.volume_type().map(|t| t.as_str()) == Some(to));
            if !at_type {
                return Err(Error::from_sdk("ModifyVolume", e));
            }
            (false, Applied::default())
        }
    };
    if !done {
        poll_until("ModifyVolume", c.max_wait, || async {
            let out = c
                .ec2
                .describe_volumes_modifications()
                .volume_ids(id)
                .send()
                .await
                .map_err(|e| Error::from_sdk("DescribeVolumesModifications", e))?;
            let latest = out
                .volumes_modifications()
                .iter()
                .max_by_key(|m| m.start_time().map(|t| t.secs()));
            match latest {
                Some(m) => modified(m.modification_state()),
                // Nothing in progress: the volume serves its type.
                None => Ok(true),
            }
        })
        .await?;
    }
    Ok(answer)
}

/// A new volume from the final snapshot, under the key's client token.
async fn create_from_snapshot(
    c: &Clients,
    call: StepCall<'_>,
    volume_type: &str,
    size_gib: u32,
    zone: &str,
) -> Result<Applied> {
    let snap = output_of(call.executed, |s| matches!(s, Step::EbsSnapshot)).ok_or_else(|| {
        Error::Validation("no final snapshot was recorded: nothing to restore from".into())
    })?;
    let recorded = c
        .ec2
        .describe_snapshots()
        .snapshot_ids(snap)
        .send()
        .await
        .map_err(|e| Error::from_sdk("DescribeSnapshots", e))?
        .snapshots()
        .first()
        .map(|s| tags(s.tags()))
        .ok_or_else(|| Error::not_found("snapshot", snap))?;
    let ours = vec![tag(SOURCE_TAG, &call.target.resource_id)];
    let mut all = user_tags(&recorded, ours.len());
    all.extend(ours);
    let size = i32::try_from(size_gib)
        .map_err(|_| Error::Validation(format!("volume size {size_gib} GiB")))?;
    let out = c
        .ec2
        .create_volume()
        .availability_zone(zone)
        .size(size)
        .volume_type(VolumeType::from(volume_type))
        .snapshot_id(snap)
        .client_token(call.key.client_token())
        .tag_specifications(spec(ResourceType::Volume, all))
        .send()
        .await
        .map_err(|e| Error::from_sdk("CreateVolume", e))?;
    let new_id = out
        .volume_id()
        .ok_or_else(|| Error::Internal("CreateVolume: no volume id".into()))?
        .to_string();
    c.ec2
        .wait_until_volume_available()
        .volume_ids(&new_id)
        .wait(c.max_wait)
        .await
        .map_err(|e| Error::from_waiter("VolumeAvailable", e))?;
    Ok(applied(&out, Some(new_id)))
}

pub(super) async fn apply(c: &Clients, call: StepCall<'_>) -> Result<Applied> {
    let id = call.target.resource_id.as_str();
    match call.step {
        Step::EbsSnapshot => snapshot(c, call).await,
        Step::EbsDelete => {
            if output_of(call.earlier, |s| matches!(s, Step::EbsSnapshot)).is_none() {
                return Err(Error::Validation(format!(
                    "refusing to delete {id}: no final snapshot was taken first"
                )));
            }
            let out = match c.ec2.delete_volume().volume_id(id).send().await {
                Ok(out) => out,
                Err(e) if not_found(e.code()) => return Ok(Applied::default()),
                Err(e) => return Err(Error::from_sdk("DeleteVolume", e)),
            };
            c.ec2
                .wait_until_volume_deleted()
                .volume_ids(id)
                .wait(c.max_wait)
                .await
                .map_err(|e| Error::from_waiter("VolumeDeleted", e))?;
            Ok(applied(&out, None))
        }
        Step::EbsModifyType { to, .. } => modify_type(c, id, to).await,
        Step::EbsCreateFromSnapshot {
            volume_type,
            size_gib,
            availability_zone,
        } => create_from_snapshot(c, call, volume_type, *size_gib, availability_zone).await,
        other => Err(misrouted(other)),
    }
}

pub(super) async fn dry_run(c: &Clients, call: StepCall<'_>) -> Result<DryRun> {
    let id = call.target.resource_id.as_str();
    match call.step {
        Step::EbsSnapshot => dry_answer(
            "CreateSnapshot",
            c.ec2
                .create_snapshot()
                .volume_id(id)
                .dry_run(true)
                .send()
                .await,
        ),
        Step::EbsDelete => dry_answer(
            "DeleteVolume",
            c.ec2
                .delete_volume()
                .volume_id(id)
                .dry_run(true)
                .send()
                .await,
        ),
        Step::EbsModifyType { to, .. } => dry_answer(
            "ModifyVolume",
            c.ec2
                .modify_volume()
                .volume_id(id)
                .volume_type(VolumeType::from(to.as_str()))
                .dry_run(true)
                .send()
                .await,
        ),
        _ => Ok(DryRun::NotOffered),
    }
}
