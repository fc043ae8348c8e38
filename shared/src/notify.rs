//! Events pushed to clients, and the port that delivers them. The WebSocket
//! and Slack/webhook channels implement [`Notifier`]; until they are wired in,
//! [`LogNotifier`] writes events to the log.

use crate::domain::{ApprovalRequest, Decision, Topic};
use crate::Result;
use async_trait::async_trait;
use serde::Serialize;

/// Server -> client frames of SPEC section 4 (the `type` field), plus the
/// operator alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum Event {
    #[serde(rename = "job.progress", rename_all = "camelCase")]
    JobProgress {
        job_id: String,
        stage: crate::domain::Stage,
        done: u64,
        total: u64,
        percent: f64,
    },
    #[serde(rename = "job.completed", rename_all = "camelCase")]
    JobCompleted {
        job_id: String,
        summary: serde_json::Value,
    },
    #[serde(rename = "job.failed", rename_all = "camelCase")]
    JobFailed { job_id: String, error: String },
    #[serde(rename = "approval_request_created", rename_all = "camelCase")]
    ApprovalRequestCreated { request: ApprovalRequest },
    #[serde(rename = "approval_decision_made", rename_all = "camelCase")]
    ApprovalDecisionMade {
        request: ApprovalRequest,
        decision: Decision,
    },
    /// The answer to an `analyzeCosts` job, to `costs` subscribers.
    #[serde(rename = "cost.report", rename_all = "camelCase")]
    CostReport {
        job_id: String,
        report: serde_json::Value,
    },
    /// One step of an execution or rollback, as it finishes.
    #[serde(rename = "execution.progress", rename_all = "camelCase")]
    ExecutionProgress {
        request_id: String,
        resource_id: String,
        phase: crate::domain::execution::Phase,
        /// 1-based position of the step, of `total`.
        step: u32,
        total: u32,
        op: String,
        status: crate::execution::StepStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        aws_request_id: Option<String>,
    },
    #[serde(rename = "optimization_action_executed", rename_all = "camelCase")]
    OptimizationActionExecuted {
        request: ApprovalRequest,
        pre_state: serde_json::Value,
        post_state: serde_json::Value,
    },
    #[serde(rename = "execution.failed", rename_all = "camelCase")]
    ExecutionFailed {
        request_id: String,
        resource_id: String,
        code: String,
        error: String,
    },
    #[serde(rename = "rollback.completed", rename_all = "camelCase")]
    RollbackCompleted {
        request: ApprovalRequest,
        pre_state: serde_json::Value,
        post_state: serde_json::Value,
    },
    #[serde(rename = "operator.alert", rename_all = "camelCase")]
    OperatorAlert {
        stage: crate::domain::Stage,
        consecutive_failures: u64,
        error: String,
    },
}

impl Event {
    /// The topics an event goes to: job events to `jobs`; approval events to
    /// `approvals` and to subscribers of the resource concerned.
    pub fn topics(&self) -> Vec<Topic> {
        match self {
            Event::JobProgress { .. } | Event::JobCompleted { .. } | Event::JobFailed { .. } => {
                vec![Topic::Jobs]
            }
            Event::ApprovalRequestCreated { request }
            | Event::ApprovalDecisionMade { request, .. } => vec![
                Topic::Approvals,
                Topic::Resource(request.recommendation.resource_id.clone()),
            ],
            Event::OptimizationActionExecuted { request, .. }
            | Event::RollbackCompleted { request, .. } => vec![
                Topic::Approvals,
                Topic::Resource(request.recommendation.resource_id.clone()),
            ],
            Event::ExecutionProgress { resource_id, .. }
            | Event::ExecutionFailed { resource_id, .. } => {
                vec![Topic::Approvals, Topic::Resource(resource_id.clone())]
            }
            Event::CostReport { .. } => vec![Topic::Costs],
            Event::OperatorAlert { .. } => vec![Topic::Approvals, Topic::Jobs],
        }
    }

    /// The owner of the resource an event is about (from its owner tag), for
    /// routing Slack and webhook notices; `None` for job and operator events.
    pub fn owner(&self) -> Option<&str> {
        match self {
            Event::ApprovalRequestCreated { request }
            | Event::ApprovalDecisionMade { request, .. }
            | Event::OptimizationActionExecuted { request, .. }
            | Event::RollbackCompleted { request, .. } => request.recommendation.owner.as_deref(),
            _ => None,
        }
    }
}

#[async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers `event` to its topics' subscribers. Delivery problems are the
    /// notifier's to handle; an error means the event could not be sent at all.
    async fn publish(&self, event: &Event) -> Result<()>;
}

/// Logs every event as structured JSON; the default until a channel is configured.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogNotifier;

#[async_trait]
impl Notifier for LogNotifier {
    async fn publish(&self, event: &Event) -> Result<()> {
        tracing::info!(event = %serde_json::to_string(event)?, "notify");
        Ok(())
    }
}
