//! The `scheduler` function: one EventBridge "Scheduled Event" becomes one
//! optimisation-cycle job and one queue message, however often the event
//! is delivered.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::Serialize;
pub use shared::config::{ConfigError, Env};
use shared::domain::{CycleParams, Job, JobSource, Trigger};
use shared::dynamo::DynamoJobs;
use shared::jobs::{scheduled_job_id, submit, Submitted};
use shared::queue::{JobQueue, SqsJobQueue};
use shared::store::JobStore;

/// What the function reads from its environment, once, at start-up.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub jobs_table: String,
    pub jobs_queue_url: String,
    /// With APPROVALS_TABLE (and AUDIT_TABLE), each fire also queues the
    /// execution of `scheduled` requests whose window has opened.
    pub approvals: Option<(String, String)>,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        Ok(Config {
            jobs_table: env.require("JOBS_TABLE")?,
            jobs_queue_url: env.require("JOBS_QUEUE_URL")?,
            approvals: match env.get("APPROVALS_TABLE") {
                Some(t) => Some((t, env.require("AUDIT_TABLE")?)),
                None => None,
            },
        })
    }
}

/// The adapters, built once per process.
pub struct Scheduler {
    pub jobs: DynamoJobs,
    pub queue: SqsJobQueue,
    pub approvals: Option<shared::dynamo::DynamoApprovals>,
}

impl Scheduler {
    pub fn from_env(env: &Env, aws: &aws_config::SdkConfig) -> Result<Scheduler, ConfigError> {
        let config = Config::from_env(env)?;
        let ddb = aws_sdk_dynamodb::Client::new(aws);
        // Listing tokens never leave this process.
        let tokens = shared::store::PageTokenCodec::new(uuid::Uuid::new_v4().as_bytes());
        Ok(Scheduler {
            approvals: config.approvals.as_ref().map(|(t, a)| {
                shared::dynamo::DynamoApprovals::new(ddb.clone(), t, a, tokens.clone())
            }),
            jobs: DynamoJobs::new(ddb, &config.jobs_table),
            queue: SqsJobQueue::new(aws_sdk_sqs::Client::new(aws), &config.jobs_queue_url),
        })
    }

    pub async fn handle(
        &self,
        event: EventBridgeEvent,
        now: DateTime<Utc>,
    ) -> Result<Outcome, SchedulerError> {
        let outcome = handle(&self.jobs, &self.queue, event, now).await?;
        if let Some(approvals) = &self.approvals {
            let tick = outcome.time;
            let due =
                shared::execution::job::resume_due(approvals, &self.jobs, &self.queue, tick, now)
                    .await?;
            if due > 0 {
                tracing::info!(due, "scheduled executions whose window opened were queued");
            }
        }
        Ok(outcome)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The event is not a scheduled event we can act on; retrying won't help.
    #[error("rejected event: {0}")]
    BadEvent(String),
    /// AWS failed; EventBridge's retry of the async invocation may succeed.
    #[error("retryable: {0}")]
    Retryable(String),
    #[error("failed: {0}")]
    Failed(String),
}

impl From<shared::Error> for SchedulerError {
    fn from(e: shared::Error) -> Self {
        if e.is_retryable() {
            SchedulerError::Retryable(e.to_string())
        } else {
            SchedulerError::Failed(e.to_string())
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub job_id: String,
    /// `queued`, or `duplicate` when this event had been handled already.
    pub status: &'static str,
    /// The fire time of the event.
    pub time: DateTime<Utc>,
}

pub async fn handle(
    jobs: &dyn JobStore,
    queue: &dyn JobQueue,
    event: EventBridgeEvent,
    now: DateTime<Utc>,
) -> Result<Outcome, SchedulerError> {
    if event.detail_type != "Scheduled Event" || event.source != "aws.events" {
        return Err(SchedulerError::BadEvent(format!(
            "expected a Scheduled Event from aws.events, got '{}' from '{}'",
            event.detail_type, event.source
        )));
    }
    let rule = event
        .resources
        .as_deref()
        .and_then(|r| r.first())
        .ok_or_else(|| SchedulerError::BadEvent("the event names no rule in 'resources'".into()))?;
    let time = event
        .time
        .ok_or_else(|| SchedulerError::BadEvent("the event has no 'time'".into()))?;
    let id = scheduled_job_id(rule, time);
    let params = CycleParams {
        rule: Some(rule.clone()),
        scheduled_for: Some(time),
        event_id: event.id.clone(),
        ..CycleParams::new(Trigger::Scheduled, JobSource::Schedule, None)
    };
    let job = Job::cycle(id, "scheduler", &params, now);
    let submitted = submit(jobs, queue, job, now).await?;
    let status = match &submitted {
        Submitted::Queued(_) => "queued",
        Submitted::Duplicate(_) => "duplicate",
    };
    tracing::info!(job_id = %submitted.job().id, status, rule = %rule, "scheduled cycle");
    Ok(Outcome {
        job_id: submitted.job().id.clone(),
        status,
        time,
    })
}

/// The edge mapping: the Lambda error type tells retryable from not.
impl From<SchedulerError> for lambda_runtime::Diagnostic {
    fn from(e: SchedulerError) -> Self {
        let error_type = match &e {
            SchedulerError::Config(_) => "Config",
            SchedulerError::BadEvent(_) => "BadEvent",
            SchedulerError::Retryable(_) => "Retryable",
            SchedulerError::Failed(_) => "Failed",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_string(),
            error_message: e.to_string(),
        }
    }
}
