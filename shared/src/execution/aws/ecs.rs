//! ECS services: desired count, and task size through a new revision of
//! the service's task definition (a copy with other cpu / memory) that the
//! service is then pointed at. DescribeServices (with tags) and
//! DescribeTaskDefinition are the state; every service change waits for
//! the SDK's ServicesStable waiter.

use super::{applied, key_tag, misrouted, output_of, state, tag_map, Clients, KEY_TAG};
use crate::domain::execution::{ResourceDetails, ResourceState, Step};
use crate::execution::{Applied, StepCall, Target};
use crate::{Error, Result};
use aws_sdk_ecs::client::Waiters;
use aws_sdk_ecs::types::{ServiceField, SortOrder, Tag, TaskDefinition, TaskDefinitionField};

/// Newer revisions of a family looked at for one this step registered
/// before (a redelivery): ListTaskDefinitions' page, newest first.
const LOOKBACK: i32 = 10;

/// `cluster/service` as discovery names a service.
fn names(target: &Target) -> (&str, &str) {
    target
        .resource_id
        .split_once('/')
        .unwrap_or(("default", target.resource_id.as_str()))
}

async fn task_definition(c: &Clients, arn: &str) -> Result<(TaskDefinition, Vec<Tag>)> {
    let out = c
        .ecs
        .describe_task_definition()
        .task_definition(arn)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .map_err(|e| Error::from_sdk("DescribeTaskDefinition", e))?;
    let tags = out.tags().to_vec();
    let def = out
        .task_definition
        .ok_or_else(|| Error::not_found("task definition", arn))?;
    Ok((def, tags))
}

fn units(v: Option<&str>) -> Option<u32> {
    v.and_then(|v| v.trim().parse().ok())
}

pub(super) async fn read_state(c: &Clients, t: &Target) -> Result<Option<ResourceState>> {
    let (cluster, service) = names(t);
    let out = c
        .ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .include(ServiceField::Tags)
        .send()
        .await
        .map_err(|e| Error::from_sdk("DescribeServices", e))?;
    let Some(s) = out
        .services()
        .iter()
        .find(|s| s.status() != Some("INACTIVE"))
    else {
        return Ok(None);
    };
    let task_def = s
        .task_definition()
        .ok_or_else(|| Error::Internal("DescribeServices: no task definition".into()))?
        .to_string();
    let def = c
        .ecs
        .describe_task_definition()
        .task_definition(&task_def)
        .send()
        .await
        .map_err(|e| Error::from_sdk("DescribeTaskDefinition", e))?
        .task_definition;
    Ok(Some(state(
        t,
        tag_map(s.tags().iter().map(|t| (t.key(), t.value()))),
        ResourceDetails::EcsService {
            cluster: cluster.to_string(),
            desired_count: u32::try_from(s.desired_count()).unwrap_or(0),
            task_definition: task_def,
            task_cpu: def.as_ref().and_then(|d| units(d.cpu())),
            task_memory_mb: def.as_ref().and_then(|d| units(d.memory())),
        },
    )))
}

async fn wait_stable(c: &Clients, cluster: &str, service: &str) -> Result<()> {
    c.ecs
        .wait_until_services_stable()
        .cluster(cluster)
        .services(service)
        .wait(c.max_wait)
        .await
        .map(|_| ())
        .map_err(|e| Error::from_waiter("ServicesStable", e))
}

/// `family:revision` of a task definition ARN.
fn family_revision(arn: &str) -> Option<(&str, i32)> {
    let (family, revision) = arn.rsplit('/').next()?.rsplit_once(':')?;
    Some((family, revision.parse().ok()?))
}

/// A revision this step registered before, among the family's newest.
async fn registered_before(
    c: &Clients,
    from: &TaskDefinition,
    key: &str,
) -> Result<Option<String>> {
    let Some(family) = from.family() else {
        return Ok(None);
    };
    let out = c
        .ecs
        .list_task_definitions()
        .family_prefix(family)
        .sort(SortOrder::Desc)
        .max_results(LOOKBACK)
        .send()
        .await
        .map_err(|e| Error::from_sdk("ListTaskDefinitions", e))?;
    for arn in out.task_definition_arns() {
        match family_revision(arn) {
            Some((f, r)) if f == family && r > from.revision() => {}
            Some((f, _)) if f != family => continue,
            _ => break,
        }
        let (_, tags) = task_definition(c, arn).await?;
        if tags
            .iter()
            .any(|t| t.key() == Some(KEY_TAG) && t.value() == Some(key))
        {
            return Ok(Some(arn.clone()));
        }
    }
    Ok(None)
}

/// A copy of the `from` revision with another task size, tagged with the
/// step's key (RegisterTaskDefinition takes no client token).
async fn register_size(
    c: &Clients,
    call: StepCall<'_>,
    from: &str,
    cpu: u32,
    memory: u32,
) -> Result<Applied> {
    let key = key_tag(call.key);
    let (def, tags) = task_definition(c, from).await?;
    if let Some(arn) = registered_before(c, &def, &key).await? {
        return Ok(Applied {
            aws_request_id: None,
            output: Some(arn),
        });
    }
    let mut tags: Vec<Tag> = tags
        .into_iter()
        .filter(|t| {
            !t.key()
                .is_some_and(|k| k.starts_with("aws:") || k == KEY_TAG)
        })
        .collect();
    tags.push(Tag::builder().key(KEY_TAG).value(key).build());
    let out = c
        .ecs
        .register_task_definition()
        .set_family(def.family.clone())
        .set_task_role_arn(def.task_role_arn.clone())
        .set_execution_role_arn(def.execution_role_arn.clone())
        .set_network_mode(def.network_mode.clone())
        .set_container_definitions(def.container_definitions.clone())
        .set_volumes(def.volumes.clone())
        .set_placement_constraints(def.placement_constraints.clone())
        .set_requires_compatibilities(def.requires_compatibilities.clone())
        .cpu(cpu.to_string())
        .memory(memory.to_string())
        .set_tags(Some(tags))
        .set_pid_mode(def.pid_mode.clone())
        .set_ipc_mode(def.ipc_mode.clone())
        .set_proxy_configuration(def.proxy_configuration.clone())
        .set_ephemeral_storage(def.ephemeral_storage.clone())
        .set_runtime_platform(def.runtime_platform.clone())
        .set_enable_fault_injection(def.enable_fault_injection)
        .send()
        .await
        .map_err(|e| Error::from_sdk("RegisterTaskDefinition", e))?;
    let arn = out
        .task_definition()
        .and_then(|d| d.task_definition_arn())
        .ok_or_else(|| Error::Internal("RegisterTaskDefinition: no ARN".into()))?
        .to_string();
    Ok(applied(&out, Some(arn)))
}

pub(super) async fn apply(c: &Clients, call: StepCall<'_>) -> Result<Applied> {
    let (_, service) = names(call.target);
    match call.step {
        Step::EcsSetDesiredCount { cluster, to, .. } => {
            let count =
                i32::try_from(*to).map_err(|_| Error::Validation(format!("desired count {to}")))?;
            let out = c
                .ecs
                .update_service()
                .cluster(cluster)
                .service(service)
                .desired_count(count)
                .send()
                .await
                .map_err(|e| Error::from_sdk("UpdateService", e))?;
            wait_stable(c, cluster, service).await?;
            Ok(applied(&out, None))
        }
        Step::EcsRegisterTaskSize {
            from_task_definition,
            cpu,
            memory_mb,
        } => register_size(c, call, from_task_definition, *cpu, *memory_mb).await,
        Step::EcsUseTaskDefinition { cluster, to, .. } => {
            let arn = match to {
                Some(arn) => arn.as_str(),
                None => output_of(call.earlier, |s| {
                    matches!(s, Step::EcsRegisterTaskSize { .. })
                })
                .ok_or_else(|| {
                    Error::Validation("no new task definition revision was registered".into())
                })?,
            };
            let out = c
                .ecs
                .update_service()
                .cluster(cluster)
                .service(service)
                .task_definition(arn)
                .send()
                .await
                .map_err(|e| Error::from_sdk("UpdateService", e))?;
            wait_stable(c, cluster, service).await?;
            Ok(applied(&out, Some(arn.to_string())))
        }
        other => Err(misrouted(other)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn revisions_are_read_from_arns() {
        assert_eq!(
            super::family_revision("arn:aws:ecs:us-east-1:1:task-definition/web:12"),
            Some(("web", 12))
        );
        assert_eq!(super::family_revision("web"), None);
    }
}
