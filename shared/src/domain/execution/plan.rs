//! What an approved recommendation becomes: typed steps against the AWS
//! APIs, planned from the recommendation and the live pre-state, with the
//! post-state each plan intends. Pure: the actuator carries them out.

use super::state::*;
use crate::domain::{Action, Recommendation};
use serde::{Deserialize, Serialize};

/// When an RDS class change takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyAt {
    #[default]
    Now,
    MaintenanceWindow,
}

/// One call (or one waited-for change) against an AWS API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum Step {
    Ec2Stop,
    Ec2Start,
    Ec2ModifyType {
        from: String,
        to: String,
    },
    /// A final image before termination; its id is the step's output.
    Ec2CreateImage {
        name: String,
    },
    Ec2Terminate,
    /// Rollback of a termination: a new instance from the final image.
    Ec2RunFromImage {
        instance_type: String,
    },
    /// Its id is the step's output.
    EbsSnapshot,
    EbsDelete,
    EbsModifyType {
        from: String,
        to: String,
    },
    /// Rollback of a deletion: a new volume from the snapshot.
    EbsCreateFromSnapshot {
        volume_type: String,
        size_gib: u32,
        availability_zone: String,
    },
    RdsStop,
    RdsStart,
    RdsModifyClass {
        from: String,
        to: String,
        apply_at: ApplyAt,
    },
    RdsDeleteWithFinalSnapshot {
        snapshot_id: String,
    },
    RdsRestoreFromSnapshot {
        snapshot_id: String,
        instance_class: String,
    },
    CacheModifyNodeType {
        from: String,
        to: String,
    },
    LambdaSetMemory {
        from: u32,
        to: u32,
    },
    EcsSetDesiredCount {
        cluster: String,
        from: u32,
        to: u32,
    },
    /// A new revision of the service's task definition with another size;
    /// its ARN is the step's output.
    EcsRegisterTaskSize {
        from_task_definition: String,
        cpu: u32,
        memory_mb: u32,
    },
    /// Points the service at the revision the previous step registered, or
    /// at `to` when given (rollback).
    EcsUseTaskDefinition {
        cluster: String,
        from: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    DynamoSetBillingMode {
        to: BillingMode,
        /// Capacity to set when the table goes back to provisioned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        read_capacity: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        write_capacity: Option<u64>,
    },
    DynamoSetCapacity {
        from_read: u64,
        from_write: u64,
        to_read: u64,
        to_write: u64,
    },
    /// Added next to the bucket's own rules, never replacing them.
    S3AddLifecycleRule {
        rule_id: String,
        storage_class: StorageClass,
        transition_days: u32,
    },
    S3RemoveLifecycleRule {
        rule_id: String,
    },
}

impl Step {
    /// Whether carrying the step out changes the resource (a final image or
    /// snapshot does not: it only adds a copy).
    pub fn changes_resource(&self) -> bool {
        !matches!(self, Step::Ec2CreateImage { .. } | Step::EbsSnapshot)
    }

    /// The stable name of the operation, for the audit trail and metrics.
    pub fn op(&self) -> String {
        match serde_json::to_value(self) {
            Ok(v) => v["op"].as_str().unwrap_or_default().to_string(),
            Err(_) => String::new(),
        }
    }
}

/// What the plan expects a field of the post-state to read, or that the
/// resource is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intended {
    /// The resource no longer exists (terminated, deleted).
    pub gone: bool,
    pub fields: StateSnapshot,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionPlan {
    pub request_id: String,
    pub action: Action,
    pub steps: Vec<Step>,
    pub intended: Intended,
}

/// Why an action is not carried out by the system.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", content = "message", rename_all = "snake_case")]
pub enum NotExecutable {
    #[error("{0}")]
    NoAwsAction(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("the recommendation names no target ({0})")]
    NoTarget(String),
    #[error("the target '{0}' cannot be read")]
    BadTarget(String),
    #[error("{0}")]
    Precondition(String),
}

/// Options the caller chooses per execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlanOptions {
    pub rds_apply_at: ApplyAt,
}

/// A deterministic key per step: the same request, phase and step always
/// give the same key, so a redelivered execution finds what it did.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Execute,
    Rollback,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Execute => "execute",
            Phase::Rollback => "rollback",
        }
    }
}

impl IdempotencyKey {
    pub fn new(request_id: &str, phase: Phase, index: usize) -> Self {
        IdempotencyKey(format!("{request_id}#{}#{index:03}", phase.as_str()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key as an AWS client token: 36 ASCII characters, inside every
    /// API's limit (EC2's is 64), the same for the same key.
    pub fn client_token(&self) -> String {
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, self.0.as_bytes()).to_string()
    }
}

fn target<'a>(r: &'a Recommendation, what: &str) -> Result<&'a str, NotExecutable> {
    r.target_type
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| NotExecutable::NoTarget(what.into()))
}

/// The numbers of a target such as `512 MB`, `desiredCount 3`,
/// `cpu 256 / memory 512 MB`, `10 RCU / 5 WCU`, in order.
fn numbers(t: &str) -> Vec<u64> {
    t.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
}

fn exactly<const N: usize>(t: &str) -> Result<[u64; N], NotExecutable> {
    numbers(t)
        .try_into()
        .map_err(|_| NotExecutable::BadTarget(t.into()))
}

fn small(v: u64, t: &str) -> Result<u32, NotExecutable> {
    u32::try_from(v).map_err(|_| NotExecutable::BadTarget(t.into()))
}

/// Whether an instance type runs on Graviton (arm64): `m6g.large`, `t4g.micro`, `c7gn.xlarge`.
pub fn is_graviton(instance_type: &str) -> bool {
    let family = instance_type
        .trim_start_matches("db.")
        .trim_start_matches("cache.")
        .split('.')
        .next()
        .unwrap_or_default();
    family
        .find(|c: char| c.is_ascii_digit())
        .is_some_and(|i| family[i + 1..].contains('g'))
}

/// A valid EC2 / RDS / ElastiCache type name: `family.size`, ASCII, bounded.
fn type_name(t: &str) -> Result<String, NotExecutable> {
    let ok = t.len() <= 64
        && t.contains('.')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    ok.then(|| t.to_string())
        .ok_or_else(|| NotExecutable::BadTarget(t.into()))
}

/// The plan for `recommendation` on the resource as it is now.
pub fn plan(
    request_id: &str,
    recommendation: &Recommendation,
    pre: &ResourceState,
    options: PlanOptions,
) -> Result<ExecutionPlan, NotExecutable> {
    let action = recommendation.action;
    let unsupported = |why: &str| Err(NotExecutable::Unsupported(why.into()));
    let mut intended = pre.snapshot();
    let mut gone = false;
    if action == Action::InvestigateErrors {
        return Err(NotExecutable::NoAwsAction(
            "investigating errors is work for a person: no AWS call fixes them".into(),
        ));
    }
    let steps = match (&pre.details, action) {
        (ResourceDetails::Ec2Instance { state, .. }, Action::Stop) => {
            if *state != Ec2State::Running {
                return Err(NotExecutable::Precondition(format!(
                    "the instance is {}, not running",
                    text_of(state)
                )));
            }
            intended.insert(Field::State, "stopped".into());
            vec![Step::Ec2Stop]
        }
        (ResourceDetails::Ec2Instance { .. }, Action::Terminate) => {
            gone = true;
            vec![
                Step::Ec2CreateImage {
                    name: format!("finops-final-{}-{request_id}", pre.resource_id),
                },
                Step::Ec2Terminate,
            ]
        }
        (
            ResourceDetails::Ec2Instance {
                instance_type,
                state,
            },
            Action::Rightsize | Action::ScaleUp | Action::MoveToGraviton,
        ) => {
            let to = type_name(target(recommendation, "an instance type")?)?;
            if is_graviton(&to) != is_graviton(instance_type) {
                return unsupported(
                    "moving between x86 and Graviton needs an image built for the other architecture: a new instance, not a type change",
                );
            }
            intended.insert(Field::Type, to.clone());
            let modify = Step::Ec2ModifyType {
                from: instance_type.clone(),
                to,
            };
            match state {
                Ec2State::Running => vec![Step::Ec2Stop, modify, Step::Ec2Start],
                Ec2State::Stopped => vec![modify],
                other => {
                    return Err(NotExecutable::Precondition(format!(
                        "the instance is {}: its type changes only when running or stopped",
                        text_of(other)
                    )))
                }
            }
        }
        (ResourceDetails::EbsVolume { state, .. }, Action::DeleteUnused | Action::Terminate) => {
            if *state != VolumeState::Available {
                return Err(NotExecutable::Precondition(format!(
                    "the volume is {}: only an unattached (available) volume is deleted",
                    text_of(state)
                )));
            }
            gone = true;
            vec![Step::EbsSnapshot, Step::EbsDelete]
        }
        (
            ResourceDetails::EbsVolume { volume_type, .. },
            Action::Rightsize | Action::ChangeStorageClass,
        ) => {
            let to = target(recommendation, "a volume type")?;
            if !matches!(
                to,
                "gp2" | "gp3" | "io1" | "io2" | "st1" | "sc1" | "standard"
            ) {
                return Err(NotExecutable::BadTarget(to.into()));
            }
            intended.insert(Field::Type, to.into());
            vec![Step::EbsModifyType {
                from: volume_type.clone(),
                to: to.into(),
            }]
        }
        (ResourceDetails::RdsInstance { status, .. }, Action::Stop) => {
            if *status != ServiceStatus::Available {
                return Err(NotExecutable::Precondition(format!(
                    "the DB instance is {}, not available",
                    text_of(status)
                )));
            }
            intended.insert(Field::State, "stopped".into());
            vec![Step::RdsStop]
        }
        (
            ResourceDetails::RdsInstance { instance_class, .. },
            Action::Rightsize | Action::ScaleUp | Action::MoveToGraviton,
        ) => {
            let to = type_name(target(recommendation, "a DB instance class")?)?;
            match options.rds_apply_at {
                ApplyAt::Now => intended.insert(Field::Type, to.clone()),
                ApplyAt::MaintenanceWindow => None,
            };
            intended.insert(Field::PendingType, to.clone());
            vec![Step::RdsModifyClass {
                from: instance_class.clone(),
                to,
                apply_at: options.rds_apply_at,
            }]
        }
        (ResourceDetails::RdsInstance { .. }, Action::Terminate | Action::DeleteUnused) => {
            gone = true;
            vec![Step::RdsDeleteWithFinalSnapshot {
                snapshot_id: format!(
                    "finops-final-{}",
                    &uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, request_id.as_bytes())
                        .simple()
                        .to_string()[..16]
                ),
            }]
        }
        (
            ResourceDetails::CacheCluster { node_type, .. },
            Action::Rightsize | Action::ScaleUp | Action::MoveToGraviton,
        ) => {
            let to = type_name(target(recommendation, "a node type")?)?;
            intended.insert(Field::Type, to.clone());
            vec![Step::CacheModifyNodeType {
                from: node_type.clone(),
                to,
            }]
        }
        (ResourceDetails::CacheCluster { .. }, Action::Stop) => {
            return unsupported("an ElastiCache cluster cannot be stopped, only deleted")
        }
        (
            ResourceDetails::LambdaFunction { memory_mb },
            Action::ReduceMemory | Action::IncreaseMemory | Action::Rightsize,
        ) => {
            let t = target(recommendation, "a memory size")?;
            let [mb] = exactly::<1>(t)?;
            let to = small(mb, t)?;
            if !(128..=10_240).contains(&to) {
                return Err(NotExecutable::BadTarget(t.into()));
            }
            intended.insert(Field::MemoryMb, to.to_string());
            vec![Step::LambdaSetMemory {
                from: *memory_mb,
                to,
            }]
        }
        (ResourceDetails::LambdaFunction { .. }, Action::MoveToGraviton) => {
            return unsupported("moving a function to arm64 needs its package built for arm64")
        }
        (ResourceDetails::LambdaFunction { .. }, Action::DeleteUnused) => {
            return unsupported(
                "a deleted function's code and configuration cannot be restored; delete it by hand",
            )
        }
        (
            ResourceDetails::EcsService {
                cluster,
                desired_count,
                ..
            },
            Action::ReduceTaskCount | Action::ScaleUp,
        ) => {
            let t = target(recommendation, "a desired count")?;
            let [n] = exactly::<1>(t)?;
            let to = small(n, t)?;
            intended.insert(Field::Size, to.to_string());
            vec![Step::EcsSetDesiredCount {
                cluster: cluster.clone(),
                from: *desired_count,
                to,
            }]
        }
        (
            ResourceDetails::EcsService {
                cluster,
                task_definition,
                ..
            },
            Action::ShrinkTasks,
        ) => {
            let t = target(recommendation, "a task size")?;
            let [cpu, mem] = exactly::<2>(t)?;
            let (cpu, mem) = (small(cpu, t)?, small(mem, t)?);
            intended.insert(Field::TaskCpu, cpu.to_string());
            intended.insert(Field::MemoryMb, mem.to_string());
            // The new revision's ARN is known only once registered.
            intended.remove(&Field::TaskDefinition);
            vec![
                Step::EcsRegisterTaskSize {
                    from_task_definition: task_definition.clone(),
                    cpu,
                    memory_mb: mem,
                },
                Step::EcsUseTaskDefinition {
                    cluster: cluster.clone(),
                    from: task_definition.clone(),
                    to: None,
                },
            ]
        }
        (ResourceDetails::DynamoDbTable { billing_mode, .. }, Action::SwitchToOnDemand) => {
            if *billing_mode == BillingMode::PayPerRequest {
                return Err(NotExecutable::Precondition(
                    "the table is on demand already".into(),
                ));
            }
            intended.insert(Field::Type, "PAY_PER_REQUEST".into());
            intended.remove(&Field::ReadCapacity);
            intended.remove(&Field::WriteCapacity);
            vec![Step::DynamoSetBillingMode {
                to: BillingMode::PayPerRequest,
                read_capacity: None,
                write_capacity: None,
            }]
        }
        (
            ResourceDetails::DynamoDbTable {
                billing_mode: BillingMode::Provisioned,
                read_capacity,
                write_capacity,
            },
            Action::LowerProvisionedCapacity,
        ) => {
            let t = target(recommendation, "a capacity")?;
            let [r, w] = exactly::<2>(t)?;
            if r == 0 || w == 0 {
                return Err(NotExecutable::BadTarget(t.into()));
            }
            intended.insert(Field::ReadCapacity, r.to_string());
            intended.insert(Field::WriteCapacity, w.to_string());
            vec![Step::DynamoSetCapacity {
                from_read: read_capacity.unwrap_or_default(),
                from_write: write_capacity.unwrap_or_default(),
                to_read: r,
                to_write: w,
            }]
        }
        (
            ResourceDetails::S3Bucket { lifecycle_rule_ids },
            Action::AddLifecycleRule | Action::ChangeStorageClass,
        ) => {
            let t = target(recommendation, "a storage class")?;
            let class = StorageClass::parse(t).ok_or_else(|| NotExecutable::BadTarget(t.into()))?;
            let rule_id = format!("finops-{}", &request_id[..request_id.len().min(36)]);
            let mut ids = lifecycle_rule_ids.clone();
            if !ids.contains(&rule_id) {
                ids.push(rule_id.clone());
            }
            ids.sort();
            intended.insert(Field::LifecycleRules, ids.join(","));
            let days = match class {
                StorageClass::IntelligentTiering => 0,
                c => c.min_transition_days().max(30),
            };
            vec![Step::S3AddLifecycleRule {
                rule_id,
                storage_class: class,
                transition_days: days,
            }]
        }
        (details, action) => {
            return unsupported(&format!(
                "{} is not something the system does to an {}",
                action.as_str(),
                details.kind()
            ))
        }
    };
    if gone {
        intended.clear();
    }
    Ok(ExecutionPlan {
        request_id: request_id.into(),
        action,
        steps,
        intended: Intended {
            gone,
            fields: intended,
        },
    })
}

fn text_of<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A field of the post-state that does not read as the plan intended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mismatch {
    pub field: Field,
    pub expected: Option<String>,
    pub actual: Option<String>,
}

/// Compares the post-state read back with what the plan intended. `None`
/// means the resource was not found.
pub fn verify(intended: &Intended, post: Option<&ResourceState>) -> Vec<Mismatch> {
    match (intended.gone, post) {
        (true, None) => vec![],
        (true, Some(p)) => {
            let state = p.snapshot().get(&Field::State).cloned();
            if matches!(
                state.as_deref(),
                Some("terminated" | "deleted" | "deleting" | "shutting_down")
            ) {
                vec![]
            } else {
                vec![Mismatch {
                    field: Field::State,
                    expected: Some("gone".into()),
                    actual: state,
                }]
            }
        }
        (false, None) => vec![Mismatch {
            field: Field::State,
            expected: Some("present".into()),
            actual: Some("gone".into()),
        }],
        (false, Some(p)) => {
            let actual = p.snapshot();
            intended
                .fields
                .iter()
                .filter(|(f, v)| actual.get(f) != Some(v))
                .map(|(f, v)| Mismatch {
                    field: *f,
                    expected: Some(v.clone()),
                    actual: actual.get(f).cloned(),
                })
                .collect()
        }
    }
}
