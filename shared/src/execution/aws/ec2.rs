//! EC2 instances: stop, start, type change (ModifyInstanceAttribute), a
//! final image, termination, and the rollback of a termination (a new
//! instance from that image). DescribeInstances is the state.

use super::{applied, dry_answer, key_tag, misrouted, output_of, state, tag_map, Clients, KEY_TAG};
use crate::domain::execution::{Ec2State, ResourceDetails, ResourceState, Step};
use crate::execution::{Applied, DryRun, StepCall, Target};
use crate::{Error, Result};
use aws_sdk_ec2::client::Waiters;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{
    AttributeValue, Filter, Image, Instance, InstanceStateName, InstanceType, ResourceType, Tag,
    TagSpecification,
};
use std::collections::BTreeMap;

/// Tags the final image carries, so its rollback launches the new instance
/// where the old one ran even once AWS has forgotten the terminated one.
const SOURCE_TAG: &str = "finops:source-instance";
const SUBNET_TAG: &str = "finops:subnet";
const GROUPS_TAG: &str = "finops:security-groups";
/// The instance profile (ARN) and key pair the terminated instance had, so
/// its relaunch keeps its IAM role and its SSH key.
const PROFILE_TAG: &str = "finops:instance-profile";
const KEY_PAIR_TAG: &str = "finops:key-name";
/// EC2 allows 50 tags a resource; ours take four of them.
const MAX_TAGS: usize = 50;

fn not_found(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("InvalidInstanceID.NotFound" | "InvalidInstanceID.Malformed")
    )
}

async fn describe(c: &Clients, id: &str) -> Result<Option<Instance>> {
    match c.ec2.describe_instances().instance_ids(id).send().await {
        Ok(out) => Ok(out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.instance_id() == Some(id))
            .cloned()),
        Err(e) if not_found(e.code()) => Ok(None),
        Err(e) => Err(Error::from_sdk("DescribeInstances", e)),
    }
}

fn ec2_state(name: &InstanceStateName) -> Result<Ec2State> {
    Ok(match name {
        InstanceStateName::Pending => Ec2State::Pending,
        InstanceStateName::Running => Ec2State::Running,
        InstanceStateName::ShuttingDown => Ec2State::ShuttingDown,
        InstanceStateName::Stopped => Ec2State::Stopped,
        InstanceStateName::Stopping => Ec2State::Stopping,
        InstanceStateName::Terminated => Ec2State::Terminated,
        other => {
            return Err(Error::Internal(format!(
                "DescribeInstances: unknown instance state {}",
                other.as_str()
            )))
        }
    })
}

fn tags(list: &[Tag]) -> BTreeMap<String, String> {
    tag_map(list.iter().map(|t| (t.key(), t.value())))
}

pub(super) async fn read_state(c: &Clients, t: &Target) -> Result<Option<ResourceState>> {
    let Some(i) = describe(c, &t.resource_id).await? else {
        return Ok(None);
    };
    let instance_type = i
        .instance_type()
        .map(|t| t.as_str().to_string())
        .ok_or_else(|| Error::Internal("DescribeInstances: no instance type".into()))?;
    let st = i
        .state()
        .and_then(|s| s.name())
        .ok_or_else(|| Error::Internal("DescribeInstances: no instance state".into()))?;
    Ok(Some(state(
        t,
        tags(i.tags()),
        ResourceDetails::Ec2Instance {
            instance_type,
            state: ec2_state(st)?,
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

/// The instance's own tags that may be copied (AWS reserves `aws:`), as
/// many as fit next to `ours`.
fn user_tags(from: &BTreeMap<String, String>, ours: usize) -> Vec<Tag> {
    from.iter()
        .filter(|(k, _)| !k.starts_with("aws:"))
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                KEY_TAG | SOURCE_TAG | SUBNET_TAG | GROUPS_TAG | PROFILE_TAG | KEY_PAIR_TAG
            )
        })
        .take(MAX_TAGS.saturating_sub(ours))
        .map(|(k, v)| tag(k, v))
        .collect()
}

async fn image_named(c: &Clients, name: &str) -> Result<Option<Image>> {
    let out = c
        .ec2
        .describe_images()
        .owners("self")
        .filters(Filter::builder().name("name").values(name).build())
        .send()
        .await
        .map_err(|e| Error::from_sdk("DescribeImages", e))?;
    Ok(out.images().first().cloned())
}

async fn wait_image(c: &Clients, image: &str) -> Result<()> {
    c.ec2
        .wait_until_image_available()
        .image_ids(image)
        .wait(c.max_wait)
        .await
        .map(|_| ())
        .map_err(|e| Error::from_waiter("ImageAvailable", e))
}

/// A final image of the instance, named by the step (AMI names are unique
/// per account and region, so the name is the look-up a repeat finds).
/// CreateImage reboots the instance for a consistent file system: it is
/// about to be terminated anyway.
async fn create_image(c: &Clients, call: StepCall<'_>, name: &str) -> Result<Applied> {
    let id = &call.target.resource_id;
    if let Some(found) = image_named(c, name).await? {
        let image = found.image_id().unwrap_or_default().to_string();
        wait_image(c, &image).await?;
        return Ok(Applied {
            aws_request_id: None,
            output: Some(image),
        });
    }
    let instance = describe(c, id)
        .await?
        .ok_or_else(|| Error::not_found("EC2 instance", id.as_str()))?;
    let groups: Vec<&str> = instance
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id())
        .collect();
    let mut ours = vec![
        tag(KEY_TAG, &key_tag(call.key)),
        tag(SOURCE_TAG, id),
        tag(GROUPS_TAG, &groups.join(" ")),
    ];
    if let Some(subnet) = instance.subnet_id() {
        ours.push(tag(SUBNET_TAG, subnet));
    }
    if let Some(profile) = instance.iam_instance_profile().and_then(|p| p.arn()) {
        ours.push(tag(PROFILE_TAG, profile));
    }
    if let Some(key) = instance.key_name() {
        ours.push(tag(KEY_PAIR_TAG, key));
    }
    let mut all = user_tags(&tags(instance.tags()), ours.len());
    all.extend(ours);
    let out = match c
        .ec2
        .create_image()
        .instance_id(id)
        .name(name)
        .description(format!("final image of {id} before its termination"))
        .tag_specifications(spec(ResourceType::Image, all))
        .send()
        .await
    {
        Ok(out) => out,
        // Another worker holding the same step created it meanwhile.
        Err(e) if e.code() == Some("InvalidAMIName.Duplicate") => {
            let image = image_named(c, name)
                .await?
                .and_then(|i| i.image_id().map(str::to_string))
                .ok_or_else(|| Error::from_sdk("CreateImage", e))?;
            wait_image(c, &image).await?;
            return Ok(Applied {
                aws_request_id: None,
                output: Some(image),
            });
        }
        Err(e) => return Err(Error::from_sdk("CreateImage", e)),
    };
    let image = out
        .image_id()
        .ok_or_else(|| Error::Internal("CreateImage: no image id".into()))?
        .to_string();
    wait_image(c, &image).await?;
    Ok(applied(&out, Some(image)))
}

/// A new instance from the final image, in the subnet and security groups
/// the image recorded, under the key's client token (a repeat answers
/// with the instance the first call launched).
async fn run_from_image(c: &Clients, call: StepCall<'_>, instance_type: &str) -> Result<Applied> {
    let image_id = output_of(call.executed, |s| matches!(s, Step::Ec2CreateImage { .. }))
        .ok_or_else(|| {
            Error::Validation("no final image was recorded: nothing to launch from".into())
        })?;
    let image = c
        .ec2
        .describe_images()
        .image_ids(image_id)
        .send()
        .await
        .map_err(|e| Error::from_sdk("DescribeImages", e))?
        .images()
        .first()
        .cloned()
        .ok_or_else(|| Error::not_found("image", image_id))?;
    let recorded = tags(image.tags());
    let groups: Vec<String> = recorded
        .get(GROUPS_TAG)
        .map(|g| g.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let ours = vec![tag(SOURCE_TAG, &call.target.resource_id)];
    let mut instance_tags = user_tags(&recorded, ours.len());
    instance_tags.extend(ours);
    let out = c
        .ec2
        .run_instances()
        .image_id(image_id)
        .instance_type(InstanceType::from(instance_type))
        .min_count(1)
        .max_count(1)
        .client_token(call.key.client_token())
        .set_subnet_id(recorded.get(SUBNET_TAG).cloned())
        .set_security_group_ids((!groups.is_empty()).then_some(groups))
        .set_iam_instance_profile(recorded.get(PROFILE_TAG).map(|arn| {
            aws_sdk_ec2::types::IamInstanceProfileSpecification::builder()
                .arn(arn)
                .build()
        }))
        .set_key_name(recorded.get(KEY_PAIR_TAG).cloned())
        .tag_specifications(spec(ResourceType::Instance, instance_tags))
        .send()
        .await
        .map_err(|e| Error::from_sdk("RunInstances", e))?;
    let new_id = out
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .ok_or_else(|| Error::Internal("RunInstances: no instance".into()))?
        .to_string();
    c.ec2
        .wait_until_instance_running()
        .instance_ids(&new_id)
        .wait(c.max_wait)
        .await
        .map_err(|e| Error::from_waiter("InstanceRunning", e))?;
    Ok(applied(&out, Some(new_id)))
}

pub(super) async fn apply(c: &Clients, call: StepCall<'_>) -> Result<Applied> {
    let id = call.target.resource_id.as_str();
    let now = |s: Option<&aws_sdk_ec2::types::InstanceStateChange>| {
        s.and_then(|s| s.current_state())
            .and_then(|s| s.name())
            .cloned()
    };
    match call.step {
        Step::Ec2Stop => {
            // Stopping a stopped instance is allowed: "set to" semantics.
            let out = c
                .ec2
                .stop_instances()
                .instance_ids(id)
                .send()
                .await
                .map_err(|e| Error::from_sdk("StopInstances", e))?;
            if now(out.stopping_instances().first()) != Some(InstanceStateName::Stopped) {
                c.ec2
                    .wait_until_instance_stopped()
                    .instance_ids(id)
                    .wait(c.max_wait)
                    .await
                    .map_err(|e| Error::from_waiter("InstanceStopped", e))?;
            }
            Ok(applied(&out, None))
        }
        Step::Ec2Start => {
            let out = c
                .ec2
                .start_instances()
                .instance_ids(id)
                .send()
                .await
                .map_err(|e| Error::from_sdk("StartInstances", e))?;
            if now(out.starting_instances().first()) != Some(InstanceStateName::Running) {
                c.ec2
                    .wait_until_instance_running()
                    .instance_ids(id)
                    .wait(c.max_wait)
                    .await
                    .map_err(|e| Error::from_waiter("InstanceRunning", e))?;
            }
            Ok(applied(&out, None))
        }
        Step::Ec2ModifyType { to, .. } => {
            let out = c
                .ec2
                .modify_instance_attribute()
                .instance_id(id)
                .instance_type(AttributeValue::builder().value(to).build())
                .send()
                .await
                .map_err(|e| Error::from_sdk("ModifyInstanceAttribute", e))?;
            Ok(applied(&out, None))
        }
        Step::Ec2CreateImage { name } => create_image(c, call, name).await,
        Step::Ec2Terminate => {
            if output_of(call.earlier, |s| matches!(s, Step::Ec2CreateImage { .. })).is_none() {
                return Err(Error::Validation(format!(
                    "refusing to terminate {id}: no final image was made first"
                )));
            }
            let out = match c.ec2.terminate_instances().instance_ids(id).send().await {
                Ok(out) => out,
                // Terminated long enough ago that AWS no longer lists it.
                Err(e) if not_found(e.code()) => return Ok(Applied::default()),
                Err(e) => return Err(Error::from_sdk("TerminateInstances", e)),
            };
            if now(out.terminating_instances().first()) != Some(InstanceStateName::Terminated) {
                c.ec2
                    .wait_until_instance_terminated()
                    .instance_ids(id)
                    .wait(c.max_wait)
                    .await
                    .map_err(|e| Error::from_waiter("InstanceTerminated", e))?;
            }
            Ok(applied(&out, None))
        }
        Step::Ec2RunFromImage { instance_type } => run_from_image(c, call, instance_type).await,
        other => Err(misrouted(other)),
    }
}

pub(super) async fn dry_run(c: &Clients, call: StepCall<'_>) -> Result<DryRun> {
    let id = call.target.resource_id.as_str();
    match call.step {
        Step::Ec2Stop => dry_answer(
            "StopInstances",
            c.ec2
                .stop_instances()
                .instance_ids(id)
                .dry_run(true)
                .send()
                .await,
        ),
        Step::Ec2Start => dry_answer(
            "StartInstances",
            c.ec2
                .start_instances()
                .instance_ids(id)
                .dry_run(true)
                .send()
                .await,
        ),
        Step::Ec2ModifyType { to, .. } => dry_answer(
            "ModifyInstanceAttribute",
            c.ec2
                .modify_instance_attribute()
                .instance_id(id)
                .instance_type(AttributeValue::builder().value(to).build())
                .dry_run(true)
                .send()
                .await,
        ),
        Step::Ec2CreateImage { name } => dry_answer(
            "CreateImage",
            c.ec2
                .create_image()
                .instance_id(id)
                .name(name)
                .dry_run(true)
                .send()
                .await,
        ),
        Step::Ec2Terminate => dry_answer(
            "TerminateInstances",
            c.ec2
                .terminate_instances()
                .instance_ids(id)
                .dry_run(true)
                .send()
                .await,
        ),
        _ => Ok(DryRun::NotOffered),
    }
}
