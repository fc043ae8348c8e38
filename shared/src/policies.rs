//! Applying auto-approval policies to a pending request: the first enabled
//! policy (by id) that matches approves it as `policy:<id>`, with the
//! policy's window as one its execution waits for, or, in dry-run mode,
//! only records in the audit trail what it would have approved. The cycle's
//! final stage applies them to every pending request (`cycle::finalize`).

use crate::approvals::{self, DecisionInput};
use crate::domain::{
    ApprovalEvent, ApprovalRequest, ApprovalStatus, AuditAction, AuditEntry, Decision, Policy,
    ResourceFacts,
};
use crate::store::{ApprovalStore, AuditStore};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use serde_json::json;

#[derive(Debug, Clone, PartialEq)]
pub enum PolicyOutcome {
    NoMatch,
    /// A dry-run policy matched; nothing changed.
    WouldApprove {
        policy_id: String,
    },
    Approved {
        policy_id: String,
        request: Box<ApprovalRequest>,
        decision: Box<Decision>,
    },
}

pub async fn apply(
    approvals: &dyn ApprovalStore,
    audit: &dyn AuditStore,
    policies: &[Policy],
    request: &ApprovalRequest,
    facts: &ResourceFacts,
    now: DateTime<Utc>,
) -> Result<PolicyOutcome> {
    if request.status != ApprovalStatus::Pending || request.is_past_expiry(now) {
        return Ok(PolicyOutcome::NoMatch);
    }
    let mut sorted: Vec<&Policy> = policies.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let Some(policy) = sorted
        .into_iter()
        .find(|p| p.matches(&request.recommendation, facts))
    else {
        return Ok(PolicyOutcome::NoMatch);
    };
    let reason = format!("matched policy {} version {}", policy.id, policy.version);
    if policy.dry_run {
        let entry = AuditEntry {
            id: format!(
                "{}|{}|v{}|dry_run",
                policy.actor(),
                request.id,
                policy.version
            ),
            entity_type: approvals::ENTITY.into(),
            entity_id: request.id.clone(),
            action: AuditAction::PolicyDryRun.name(),
            actor: policy.actor(),
            // The instant this version of the policy met this version of
            // the request: the same for every cycle that finds the match
            // again, so the entry (keyed by its time) is written once.
            at: request.updated_at.max(policy.updated_at),
            outcome: Some("would_approve".into()),
            reason: Some(reason),
            pre_state: Some(json!({ "status": request.status, "version": request.version })),
            post_state: None,
            correlation_id: None,
        };
        return match audit.append(&entry).await {
            Ok(()) | Err(Error::AlreadyExists { .. }) => Ok(PolicyOutcome::WouldApprove {
                policy_id: policy.id.clone(),
            }),
            Err(e) => Err(e),
        };
    }
    let mut input = DecisionInput::new(ApprovalEvent::Approve, policy.actor())
        .reason(reason)
        .details(json!({ "policyId": policy.id, "policyVersion": policy.version }));
    input.execution_window = Some(policy.window.clone());
    let (request, decision) = approvals::decide(approvals, &request.id, input, now).await?;
    Ok(PolicyOutcome::Approved {
        policy_id: policy.id.clone(),
        request: Box::new(request),
        decision: Box::new(decision),
    })
}
