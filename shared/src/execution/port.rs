//! The ports an execution works through: the `Actuator` (the AWS APIs of
//! one service family, in one account and region) and the `ExecutionStore`
//! (what was planned and done, step by step, in DynamoDB).

use crate::domain::execution::{
    AccountHealth, ChangeCap, ExecutionPlan, HourCounts, IdempotencyKey, Mismatch, Phase,
    ResourceState, Step,
};
use crate::domain::Service;
use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which resource, where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub service: Service,
    pub resource_id: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

/// One step to carry out, with what the earlier steps of the same phase
/// produced (the image a termination's rollback launches from, the revision
/// a task-size change points the service at).
#[derive(Debug, Clone, Copy)]
pub struct StepCall<'a> {
    pub target: &'a Target,
    pub step: &'a Step,
    pub key: &'a IdempotencyKey,
    pub earlier: &'a [StepRecord],
    /// The execute phase's steps, when this is a rollback.
    pub executed: &'a [StepRecord],
}

/// What AWS answered to a step.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    /// AWS's request id of the call that made the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_request_id: Option<String>,
    /// What the step created: an image, snapshot, volume or revision id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// A dry run's answer, where the API offers one (EC2's `DryRun`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "result",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum DryRun {
    /// AWS answered `DryRunOperation`: the call would have been allowed.
    WouldSucceed,
    Refused {
        reason: String,
    },
    NotOffered,
}

/// The AWS side of an execution. Implementations must make `apply`
/// idempotent under `key`: a client token where the API takes one, a
/// look-up of what the key created (a tag, a name derived from it) where it
/// does not, and "set to" semantics otherwise. `apply` returns once AWS
/// reports the change done (the SDK's waiters), or errs.
#[async_trait]
pub trait Actuator: Send + Sync {
    /// The live state; `None` when the resource does not exist.
    async fn read_state(&self, target: &Target) -> Result<Option<ResourceState>>;
    async fn apply(&self, call: StepCall<'_>) -> Result<Applied>;
    async fn dry_run(&self, _call: StepCall<'_>) -> Result<DryRun> {
        Ok(DryRun::NotOffered)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Started,
    Completed,
    Failed,
    /// Nothing to do for this step (a rollback of a copy), or impossible.
    Skipped,
}

/// One step as the store keeps it: recorded `started` before the AWS call
/// and `completed` (or `failed`) after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    pub request_id: String,
    pub phase: Phase,
    pub index: u32,
    pub key: IdempotencyKey,
    pub step: Step,
    pub status: StepStatus,
    /// A started step whose worker vanished may be taken over after this.
    pub lease_until: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub applied: Applied,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What a rollback step cannot restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caveat: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
    RollingBack,
    RolledBack,
    RollbackFailed,
}

/// One request's execution: the plan, the pre-state it was planned on and,
/// once done, the post-state read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRecord {
    pub request_id: String,
    pub target: Target,
    pub plan: ExecutionPlan,
    pub pre_state: ResourceState,
    pub status: ExecutionStatus,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_state: Option<ResourceState>,
    #[serde(default)]
    pub mismatches: Vec<Mismatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// How claiming a step turned out.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// Ours to carry out (new, or taken over from a worker whose lease ran out).
    Claimed(StepRecord),
    /// Done before: never repeated.
    Done(StepRecord),
    /// Another worker holds it now.
    Busy,
}

#[async_trait]
pub trait ExecutionStore: Send + Sync {
    /// Stores the record unless one exists for the request; returns the
    /// stored one either way (a redelivery keeps the first plan).
    async fn begin(&self, record: &ExecutionRecord) -> Result<ExecutionRecord>;
    async fn get(&self, request_id: &str) -> Result<Option<ExecutionRecord>>;
    /// Records the step `started` unless it was completed, failed, skipped
    /// or is held by an unexpired lease.
    async fn claim_step(&self, record: &StepRecord, now: DateTime<Utc>) -> Result<Claim>;
    /// Ends a step this worker holds (`Conflict` if it lost the lease).
    async fn finish_step(&self, record: &StepRecord) -> Result<()>;
    /// Every step of a phase, in order.
    async fn steps(&self, request_id: &str, phase: Phase) -> Result<Vec<StepRecord>>;
    /// Updates status, post-state, mismatches and error from `from` (conditional).
    async fn finish(&self, record: &ExecutionRecord, from: ExecutionStatus) -> Result<()>;
    /// Counts a request as a change of this hour if both caps have room
    /// (or it is counted already: once however often it is claimed), in one
    /// conditional write, so racing workers never pass a cap together.
    /// `None`: a cap is full, nothing was counted.
    async fn claim_change(
        &self,
        account: &str,
        hour: DateTime<Utc>,
        request_id: &str,
        cap: ChangeCap,
    ) -> Result<Option<HourCounts>>;
    async fn hour_counts(&self, account: &str, hour: DateTime<Utc>) -> Result<HourCounts>;
    async fn account_health(&self, account: &str) -> Result<AccountHealth>;
    /// A success resets the account's consecutive failures; a failure adds one.
    async fn record_outcome(&self, account: &str, ok: bool, now: DateTime<Utc>) -> Result<()>;
}

/// The actuator of a process built without one (benchmarks of the cycle):
/// every call is refused, so nothing can change by accident.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoActuator;

#[async_trait]
impl Actuator for NoActuator {
    async fn read_state(&self, _target: &Target) -> Result<Option<ResourceState>> {
        Err(crate::Error::Validation(
            "this process was built without an AWS actuator".into(),
        ))
    }
    async fn apply(&self, _call: StepCall<'_>) -> Result<Applied> {
        Err(crate::Error::Validation(
            "this process was built without an AWS actuator".into(),
        ))
    }
}
