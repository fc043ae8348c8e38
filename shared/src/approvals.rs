//! Approval use cases: opening a request and deciding on it, each with its
//! audit entry written in the same transaction as the change.

use crate::domain::{
    ApprovalEvent, ApprovalRequest, AuditAction, AuditEntry, Decision, Recommendation,
};
use crate::store::{ApprovalStore, CreateOutcome};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use serde_json::json;

pub const ENTITY: &str = "approval_request";

fn audit_id(seed: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, seed.as_bytes()).to_string()
}

/// Opens a pending request for `recommendation` unless an open one exists
/// for the same resource and action.
pub async fn open(
    store: &dyn ApprovalStore,
    recommendation: Recommendation,
    actor: &str,
    cycle_id: Option<String>,
    ttl: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<(ApprovalRequest, CreateOutcome)> {
    let request = ApprovalRequest::new(recommendation, actor, cycle_id.clone(), now, ttl);
    open_request(store, request, actor, now).await
}

/// Opens `request` (built by the caller, e.g. with the state it was made
/// on) unless an open one exists for the same resource and action.
pub async fn open_request(
    store: &dyn ApprovalStore,
    request: ApprovalRequest,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(ApprovalRequest, CreateOutcome)> {
    let cycle_id = request.cycle_id.clone();
    let audit = AuditEntry {
        id: audit_id(&format!("{}|created", request.id)),
        entity_type: ENTITY.into(),
        entity_id: request.id.clone(),
        action: AuditAction::ApprovalRequested.name(),
        actor: actor.into(),
        at: now,
        outcome: Some("pending".into()),
        reason: Some(request.recommendation.reason.clone()),
        pre_state: None,
        post_state: Some(json!({ "status": request.status, "version": request.version })),
        correlation_id: cycle_id,
    };
    let outcome = store.create(&request, &audit).await?;
    Ok((request, outcome))
}

/// A decision as a caller asks for it.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionInput {
    pub event: ApprovalEvent,
    pub actor: String,
    pub reason: Option<String>,
    pub details: Option<serde_json::Value>,
    pub correlation_id: Option<String>,
    /// With an approval: the window its execution must also wait for (an
    /// auto-approval policy's).
    pub execution_window: Option<crate::domain::execution::Schedule>,
}

impl DecisionInput {
    pub fn new(event: ApprovalEvent, actor: impl Into<String>) -> Self {
        DecisionInput {
            event,
            actor: actor.into(),
            reason: None,
            details: None,
            correlation_id: None,
            execution_window: None,
        }
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
}

/// Applies `event` to request `id` on behalf of `actor`.
///
/// Reads the request, computes the transition in pure code, and records it
/// conditionally on the version read: of two deciders racing, one wins and
/// the other gets `Conflict`. An illegal transition changes nothing.
pub async fn decide(
    store: &dyn ApprovalStore,
    id: &str,
    input: DecisionInput,
    now: DateTime<Utc>,
) -> Result<(ApprovalRequest, Decision)> {
    let DecisionInput {
        event,
        actor,
        reason,
        details,
        correlation_id,
        execution_window,
    } = input;
    let actor = actor.as_str();
    let current = store
        .get(id)
        .await?
        .ok_or_else(|| Error::not_found("approval request", id))?;
    let (mut next, decision) = current.apply(event, actor, reason.clone(), details, now)?;
    if event == ApprovalEvent::Approve {
        next.execution_window = execution_window.filter(|w| !w.0.is_empty());
    }
    let audit = AuditEntry {
        id: audit_id(&format!("{}|{}", current.id, current.status.as_str())),
        entity_type: ENTITY.into(),
        entity_id: current.id.clone(),
        action: AuditAction::Approval(event).name(),
        actor: actor.into(),
        at: now,
        outcome: Some(next.status.as_str().into()),
        reason,
        pre_state: Some(json!({ "status": current.status, "version": current.version })),
        post_state: Some(json!({ "status": next.status, "version": next.version })),
        correlation_id,
    };
    store.record(&current, &next, &decision, &audit).await?;
    Ok((next, decision))
}

/// Records a transition computed by the caller (the execution use case)
/// with its audit entry, as [`decide`] does; `pre` and `post` add the
/// resource's state before and after to the entry.
pub async fn record_transition(
    store: &dyn ApprovalStore,
    current: &ApprovalRequest,
    (next, decision): (ApprovalRequest, Decision),
    pre: Option<serde_json::Value>,
    post: Option<serde_json::Value>,
    now: DateTime<Utc>,
) -> Result<(ApprovalRequest, Decision)> {
    let with = |base: serde_json::Value, extra: Option<serde_json::Value>| match (base, extra) {
        (serde_json::Value::Object(mut m), Some(x)) => {
            m.insert("resource".into(), x);
            serde_json::Value::Object(m)
        }
        (b, _) => b,
    };
    let audit = AuditEntry {
        id: audit_id(&format!("{}|{}", current.id, current.status.as_str())),
        entity_type: ENTITY.into(),
        entity_id: current.id.clone(),
        action: AuditAction::Approval(decision.event).name(),
        actor: decision.actor.clone(),
        at: now,
        outcome: Some(next.status.as_str().into()),
        reason: decision.reason.clone(),
        pre_state: Some(with(
            json!({ "status": current.status, "version": current.version }),
            pre,
        )),
        post_state: Some(with(
            json!({ "status": next.status, "version": next.version }),
            post,
        )),
        correlation_id: Some(current.id.clone()),
    };
    store.record(current, &next, &decision, &audit).await?;
    Ok((next, decision))
}
