use super::cost_query::CostQuery;
use super::cycle::{Stage, Trigger};
use super::service::Service;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    OptimizationCycle,
    CostAnalysis,
    /// Execute, roll back or preview one approval request.
    Execution,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    /// Another cycle held the lease; nothing was done.
    Skipped,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Skipped => "skipped",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Skipped
        )
    }

    /// The statuses a job may move to this one from.
    pub fn allowed_from(self) -> &'static [JobStatus] {
        match self {
            JobStatus::Queued => &[],
            JobStatus::Running => &[JobStatus::Queued],
            JobStatus::Succeeded => &[JobStatus::Running],
            JobStatus::Failed => &[JobStatus::Queued, JobStatus::Running],
            JobStatus::Skipped => &[JobStatus::Queued, JobStatus::Running],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub stage: Stage,
    pub done: u64,
    pub total: u64,
    pub percent: f64,
}

impl Progress {
    pub fn new(stage: Stage, done: u64, total: u64) -> Self {
        let percent = if total == 0 {
            100.0
        } else {
            (done.min(total) as f64 * 100.0 / total as f64 * 10.0).round() / 10.0
        };
        Progress {
            stage,
            done,
            total,
            percent,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: String,
    pub kind: JobKind,
    pub status: JobStatus,
    pub requester: String,
    /// What was asked: services, dryRun, cost query, ...
    #[serde(default)]
    pub params: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Set once the job's queue message was sent, so a replayed trigger does
    /// not send a second one.
    #[serde(default)]
    pub enqueued: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

impl Job {
    /// An optimisation-cycle job.
    pub fn cycle(
        id: impl Into<String>,
        requester: impl Into<String>,
        params: &CycleParams,
        now: DateTime<Utc>,
    ) -> Self {
        let params = serde_json::to_value(params).unwrap_or_default();
        Job::new(id, JobKind::OptimizationCycle, requester, params, now)
    }

    /// A cost-analysis job: its params are the validated question.
    pub fn cost_analysis(
        id: impl Into<String>,
        requester: impl Into<String>,
        query: &CostQuery,
        now: DateTime<Utc>,
    ) -> Self {
        Job::new(id, JobKind::CostAnalysis, requester, query.to_params(), now)
    }

    pub fn new(
        id: impl Into<String>,
        kind: JobKind,
        requester: impl Into<String>,
        params: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Self {
        Job {
            id: id.into(),
            kind,
            status: JobStatus::Queued,
            requester: requester.into(),
            params,
            progress: None,
            result: None,
            error: None,
            enqueued: false,
            created_at: now,
            updated_at: now,
            started_at: None,
            finished_at: None,
        }
    }
}

/// Where a job was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobSource {
    Schedule,
    Rest,
    Websocket,
}

/// What an optimisation cycle was asked to do: the params every edge that
/// creates a cycle job writes (scheduler, REST trigger, WebSocket
/// `runCycle`) and the cycle reads back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CycleParams {
    pub trigger: Trigger,
    /// Never empty: an edge refuses an empty list, and absent means all.
    #[serde(default = "all_services")]
    pub services: Vec<Service>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<JobSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// The EventBridge rule and fire time of a scheduled cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

fn all_services() -> Vec<Service> {
    Service::ALL.to_vec()
}

impl CycleParams {
    /// A cycle over `services` (sorted, without repeats; all when `None`
    /// or empty).
    pub fn new(trigger: Trigger, source: JobSource, services: Option<Vec<Service>>) -> Self {
        let mut services = services
            .filter(|s| !s.is_empty())
            .unwrap_or_else(all_services);
        services.sort();
        services.dedup();
        CycleParams {
            trigger,
            services,
            dry_run: false,
            source: Some(source),
            requested_by: None,
            rule: None,
            scheduled_for: None,
            event_id: None,
        }
    }

    /// The params of a job, read the way every edge wrote them. A job
    /// written before params were typed, or by hand, falls back field by
    /// field to the defaults of a manual cycle over every service.
    pub fn of(job: &Job) -> CycleParams {
        serde_json::from_value(job.params.clone()).unwrap_or_else(|_| CycleParams {
            trigger: match job.params.get("trigger").and_then(|t| t.as_str()) {
                Some("scheduled") => Trigger::Scheduled,
                _ => Trigger::Manual,
            },
            ..CycleParams::new(Trigger::Manual, JobSource::Rest, None)
        })
    }
}

/// The message put on the jobs queue; the job record is the source of truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobMessage {
    pub job_id: String,
    pub kind: JobKind,
    /// Set on the messages of a sharded cycle: which slice of the estate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardRef>,
}

/// One slice of a sharded cycle, sized so its metrics fit a few GetMetricData
/// calls and its message stays well under SQS's 256 KB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardRef {
    pub index: u32,
    pub of: u32,
    /// The slice, whole (inventory facts included), so a worker needs no
    /// discovery or inventory reads of its own.
    pub resources: Vec<crate::domain::Resource>,
    /// The lease owner of the cycle this shard belongs to.
    pub lease_owner: String,
    /// The (account, region) the slice belongs to: its metrics are read from
    /// that unit's CloudWatch. `None`: the deployment's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<crate::domain::Unit>,
    /// The shard is the unit's whole work: discover it, then analyse what
    /// was found (`resources` is then empty).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub discover: bool,
}
