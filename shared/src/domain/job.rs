use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    OptimizationCycle,
    CostAnalysis,
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
    pub stage: String,
    pub done: u64,
    pub total: u64,
    pub percent: f64,
}

impl Progress {
    pub fn new(stage: impl Into<String>, done: u64, total: u64) -> Self {
        let percent = if total == 0 {
            100.0
        } else {
            (done.min(total) as f64 * 100.0 / total as f64 * 10.0).round() / 10.0
        };
        Progress {
            stage: stage.into(),
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
}
