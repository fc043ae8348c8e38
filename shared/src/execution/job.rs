//! The execution job: what `POST /approval-requests/{id}/execute` (without
//! an outcome), `/rollback` and `/preview` queue, and the processor runs.
//! The job record carries the answer (`GET /jobs/{id}`, `job.completed`);
//! the execution's own events go to `approvals` and `resource:<id>`.

use super::{execute, preview, rollback, Deps, Outcome, Settings};
use crate::domain::{Job, JobKind, JobStatus};
use crate::notify::{Event, Notifier};
use crate::store::{JobOutcome, JobStore};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// What an execution job was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum ExecutionParams {
    Execute { request_id: String },
    Rollback { request_id: String, reason: String },
    Preview { request_id: String },
}

impl ExecutionParams {
    pub fn request_id(&self) -> &str {
        match self {
            ExecutionParams::Execute { request_id }
            | ExecutionParams::Rollback { request_id, .. }
            | ExecutionParams::Preview { request_id } => request_id,
        }
    }

    fn op(&self) -> &'static str {
        match self {
            ExecutionParams::Execute { .. } => "execute",
            ExecutionParams::Rollback { .. } => "rollback",
            ExecutionParams::Preview { .. } => "preview",
        }
    }
}

/// Seconds within which repeated previews of one request share a job.
const PREVIEW_BUCKET_SECONDS: i64 = 10;

/// The job `params` asks for, by `requester`. Its id is derived from the
/// request and its version, so racing callers (20 approvers clicking
/// execute at once, a retried POST) all find one job; a request that moved
/// on (scheduled, then due) gets a new one.
pub fn execution_job(
    params: &ExecutionParams,
    version: u64,
    requester: &str,
    now: DateTime<Utc>,
) -> Job {
    let bucket = match params {
        ExecutionParams::Preview { .. } => now.timestamp() / PREVIEW_BUCKET_SECONDS,
        _ => 0,
    };
    let seed = format!(
        "execution|{}|{}|{version}|{bucket}",
        params.op(),
        params.request_id()
    );
    let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, seed.as_bytes()).to_string();
    let value = serde_json::to_value(params).unwrap_or_default();
    Job::new(id, JobKind::Execution, requester, value, now)
}

/// A due scheduled request's job: one per request, version and tick.
pub fn resume_job(request_id: &str, version: u64, tick: DateTime<Utc>) -> Job {
    let params = ExecutionParams::Execute {
        request_id: request_id.into(),
    };
    let seed = format!(
        "execution|resume|{request_id}|{version}|{}",
        tick.timestamp()
    );
    let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, seed.as_bytes()).to_string();
    let value = serde_json::to_value(&params).unwrap_or_default();
    Job::new(id, JobKind::Execution, "scheduler", value, tick)
}

/// How a delivery of an execution job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ran {
    /// The job finished (succeeded or failed) with this result.
    Finished {
        status: JobStatus,
        summary: String,
    },
    /// A cap or breaker holds it back until then: the caller sends the
    /// message again, delayed (the job stays running).
    Deferred {
        until: DateTime<Utc>,
    },
    /// Another worker holds a step of this execution: let the queue bring
    /// the message back.
    Busy,
    Duplicate,
}

/// Runs job `job_id` once per delivery. A job found running (a worker died,
/// or a deferral came back) is resumed: the use cases claim each step, so
/// nothing completed is repeated.
pub async fn run_execution_job(
    jobs: &dyn JobStore,
    deps: &Deps<'_>,
    notifier: &dyn Notifier,
    settings: &Settings,
    job_id: &str,
    last_delivery: bool,
    now: DateTime<Utc>,
) -> Result<Ran> {
    let job = jobs
        .get(job_id, now)
        .await?
        .ok_or_else(|| Error::Validation(format!("job {job_id} does not exist")))?;
    if job.status.is_finished() {
        return Ok(Ran::Duplicate);
    }
    if job.status == JobStatus::Queued {
        match jobs
            .transition(job_id, JobStatus::Running, JobOutcome::default(), now)
            .await
        {
            // Another delivery moved it first: both go on, and the step
            // claims let only one of them act.
            Ok(_) | Err(Error::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let params: ExecutionParams = match serde_json::from_value(job.params.clone()) {
        Ok(p) => p,
        Err(e) => {
            let message = format!("the job's parameters do not parse: {e}");
            return finish(jobs, notifier, job_id, Err(message), now).await;
        }
    };
    let actor = job.requester.as_str();
    let id = params.request_id();
    let result = match &params {
        ExecutionParams::Preview { request_id } => match deps.approvals.get(request_id).await {
            Ok(Some(req)) => preview(deps, &req, None, None, settings, now)
                .await
                .map(|p| Ok(json!({ "op": "preview", "requestId": request_id, "preview": p }))),
            Ok(None) => Ok(Err(format!("approval request {request_id} does not exist"))),
            Err(e) => Err(e),
        },
        ExecutionParams::Execute { .. } => execute(deps, id, None, None, settings, actor, now)
            .await
            .and_then(|o| settle(deps, o, "execute", id)),
        ExecutionParams::Rollback { reason, .. } => {
            rollback(deps, id, reason, settings, actor, now)
                .await
                .and_then(|o| settle(deps, o, "rollback", id))
        }
    };
    let result = match result {
        Ok(Ok(value)) => match value.get("outcome").and_then(|o| o.as_str()) {
            Some("deferred") => {
                let until = value
                    .get("until")
                    .and_then(|u| u.as_str())
                    .and_then(|u| DateTime::parse_from_rfc3339(u).ok())
                    .map(|u| u.with_timezone(&Utc))
                    .unwrap_or(now);
                return Ok(Ran::Deferred { until });
            }
            Some("busy") => return Ok(Ran::Busy),
            _ => Ok(value),
        },
        Ok(Err(message)) => Err(message),
        Err(e) if e.is_retryable() && !last_delivery => return Err(e),
        Err(e) => Err(match &e {
            Error::Conflict(m) | Error::Validation(m) => m.clone(),
            Error::NotFound { .. } | Error::IllegalTransition(_) => e.to_string(),
            _ => crate::cycle::public_error(&e, job_id),
        }),
    };
    if let Ok(value) = &result {
        publish_outcome(deps, notifier, id, value).await;
    } else if let Err(message) = &result {
        if !matches!(params, ExecutionParams::Preview { .. }) {
            publish(
                notifier,
                &Event::ExecutionFailed {
                    request_id: id.into(),
                    resource_id: resource_of(deps, id).await,
                    code: "execution_error".into(),
                    error: message.clone(),
                },
            )
            .await;
        }
    }
    finish(jobs, notifier, job_id, result, now).await
}

/// The job's result for an outcome; `Err` when the job failed.
fn settle(
    _deps: &Deps<'_>,
    outcome: Outcome,
    op: &str,
    id: &str,
) -> Result<std::result::Result<serde_json::Value, String>> {
    Ok(match outcome {
        Outcome::Executed(r) | Outcome::RolledBack(r) => Ok(json!({
            "op": op, "requestId": id, "outcome": if op == "execute" { "executed" } else { "rolled_back" },
            "resourceId": r.target.resource_id, "preState": r.pre_state, "postState": r.post_state,
        })),
        Outcome::Failed(r) | Outcome::RollbackFailed(r) => Err(format!(
            "{} of {} failed: {}",
            op,
            r.target.resource_id,
            r.error
                .clone()
                .unwrap_or_else(|| "the post-state does not match the plan".into())
        )),
        Outcome::Refused(refusal) => {
            let detail = serde_json::to_value(&refusal).unwrap_or_default();
            let code = detail
                .get("code")
                .and_then(|c| c.as_str())
                .unwrap_or("refused")
                .to_string();
            Err(format!("{code}: {detail}"))
        }
        Outcome::Scheduled { opens_at } => Ok(json!({
            "op": op, "requestId": id, "outcome": "scheduled", "opensAt": opens_at,
        })),
        Outcome::Deferred { until, reason } => Ok(json!({
            "op": op, "requestId": id, "outcome": "deferred", "until": until, "reason": reason,
        })),
        Outcome::Busy => Ok(json!({ "op": op, "requestId": id, "outcome": "busy" })),
    })
}

async fn resource_of(deps: &Deps<'_>, id: &str) -> String {
    match deps.approvals.get(id).await {
        Ok(Some(r)) => r.recommendation.resource_id,
        _ => String::new(),
    }
}

async fn publish(notifier: &dyn Notifier, event: &Event) {
    if let Err(e) = notifier.publish(event).await {
        tracing::warn!(error = %e, "an execution event could not be published");
    }
}

async fn publish_outcome(
    deps: &Deps<'_>,
    notifier: &dyn Notifier,
    id: &str,
    value: &serde_json::Value,
) {
    let outcome = value.get("outcome").and_then(|o| o.as_str());
    let request = match outcome {
        Some("executed") | Some("rolled_back") => match deps.approvals.get(id).await {
            Ok(Some(r)) => r,
            _ => return,
        },
        _ => return,
    };
    let pre_state = value.get("preState").cloned().unwrap_or_default();
    let post_state = value.get("postState").cloned().unwrap_or_default();
    let event = if outcome == Some("executed") {
        Event::OptimizationActionExecuted {
            request,
            pre_state,
            post_state,
        }
    } else {
        Event::RollbackCompleted {
            request,
            pre_state,
            post_state,
        }
    };
    publish(notifier, &event).await;
}

async fn finish(
    jobs: &dyn JobStore,
    notifier: &dyn Notifier,
    job_id: &str,
    result: std::result::Result<serde_json::Value, String>,
    now: DateTime<Utc>,
) -> Result<Ran> {
    let (status, outcome, event, summary) = match result {
        Ok(value) => (
            JobStatus::Succeeded,
            JobOutcome {
                result: Some(value.clone()),
                error: None,
            },
            Event::JobCompleted {
                job_id: job_id.into(),
                summary: value.clone(),
            },
            value
                .get("outcome")
                .and_then(|o| o.as_str())
                .unwrap_or("previewed")
                .to_string(),
        ),
        Err(message) => (
            JobStatus::Failed,
            JobOutcome {
                result: None,
                error: Some(message.clone()),
            },
            Event::JobFailed {
                job_id: job_id.into(),
                error: message.clone(),
            },
            message,
        ),
    };
    match jobs.transition(job_id, status, outcome, now).await {
        Ok(_) => {}
        // A concurrent delivery finished it first.
        Err(Error::Conflict(_)) => return Ok(Ran::Duplicate),
        Err(e) => return Err(e),
    }
    publish(notifier, &event).await;
    Ok(Ran::Finished { status, summary })
}

/// Queues an execution job for every `scheduled` request whose window has
/// opened by `tick` (the scheduler's fire time), one per request, version
/// and tick however often the tick is delivered. Returns how many were due.
pub async fn resume_due(
    approvals: &dyn crate::store::ApprovalStore,
    jobs: &dyn JobStore,
    queue: &dyn crate::queue::JobQueue,
    tick: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<usize> {
    use crate::store::ApprovalFilter;
    let filter = ApprovalFilter {
        status: Some(crate::domain::ApprovalStatus::Scheduled),
        service: None,
        resource_id: None,
    };
    let mut due = 0;
    let mut token: Option<String> = None;
    loop {
        let page = approvals.list(&filter, Some(100), token.as_deref()).await?;
        for req in &page.items {
            if req.scheduled_for.is_some_and(|at| at <= tick) {
                crate::jobs::submit(jobs, queue, resume_job(&req.id, req.version, tick), now)
                    .await?;
                due += 1;
            }
        }
        match page.next_token {
            Some(t) => token = Some(t),
            None => return Ok(due),
        }
    }
}
